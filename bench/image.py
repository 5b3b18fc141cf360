"""Benchmark: offsite image create/consolidate against the raw limits, side by side.

    python bench/image.py [--size 2G] [--runs 5] [--big 8G] [--workdir DIR]
                          [--only consolidate|create]

Builds a volume of --size (1 MiB blocks: 15% zero, 45% compressible text,
40% random), images it, then makes 3 incrementals, each rewriting 10-30% of
the blocks at random (so they overlap). In one run it then times, alternating
the order every round:

* ``offsite image consolidate i1 i2 i3 -o out`` against ``cat i1 i2 i3 > out``
  (the raw copy limit), and against ``cat … > out && sync out``, since offsite
  fsyncs what it writes and cat does not; then the same for the full and the
  three incrementals (``consolidate full i1 i2 i3``, a synthetic full: the
  case issue 21 names). The inputs are in the page cache (just written) for
  every command alike, and the page cache is written back (untimed) before
  each, so no command pays for what an earlier one left dirty;
* ``offsite image create vol dest`` (a full image) against ``zstd -3`` of the
  same volume, ``zstd -3 && sync`` (offsite fsyncs its image) and
  ``zstd -3 -T2``, which uses both cores as offsite does.

It prints medians, ratios and each command's peak RSS; with --big it repeats
create and consolidate once on a larger volume to show that peak RSS does not
grow with the volume. Needs Debian's zstd (installed when missing and root).
Timings are wall-clock on whatever else the machine is doing: quote medians.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import measure

MiB = measure.MiB
Row = measure.Row
OFFSITE = measure.OFFSITE


size = measure.size


def ensure_zstd() -> None:
    if shutil.which("zstd"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "zstd"], check=True)
    else:
        sys.exit("this benchmark needs zstd: sudo apt-get install zstd")


def run(cmd: list[str] | str, *, shell: bool = False) -> tuple[float, int]:
    """Run a command through :mod:`measure`'s launcher: (seconds, its own peak RSS in MiB)."""
    log = Path(tempfile.gettempdir()) / f"offsite-bench-image-{os.getpid()}.log"
    if shell:
        assert isinstance(cmd, str)
        return measure.shell(cmd, log=log)
    assert isinstance(cmd, list)
    return measure.run(cmd, log=log)


def make_volume(path: Path, total: int, seed: int) -> None:
    rnd = random.Random(seed)
    words = [rnd.randbytes(rnd.randrange(3, 9)).hex().encode() for _ in range(2000)]
    with open(path, "wb") as f:
        for _ in range(total // MiB):
            f.write(block(rnd, words))


def block(rnd: random.Random, words: list[bytes]) -> bytes:
    kind = rnd.random()
    if kind < 0.15:
        return bytes(MiB)
    if kind < 0.60:
        text = b" ".join(rnd.choices(words, k=MiB // 8))
        return (text * 2)[:MiB]
    return rnd.randbytes(MiB)


def change(path: Path, fraction: float, seed: int) -> None:
    rnd = random.Random(seed)
    words = [rnd.randbytes(5).hex().encode() for _ in range(500)]
    blocks = path.stat().st_size // MiB
    with open(path, "r+b") as f:
        for b in rnd.sample(range(blocks), int(blocks * fraction)):
            f.seek(b * MiB)
            f.write(block(rnd, words))


def drop(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def median_table(title: str, results: dict[str, list[tuple[float, int]]], base: str) -> None:
    print(f"\n{title}")
    ref = statistics.median(t for t, _ in results[base])
    for name, rows in results.items():
        times = [t for t, _ in rows]
        med = statistics.median(times)
        print(f"  {name:34} median {med:6.2f} s  (min {min(times):5.2f}, max {max(times):5.2f})"
              f"  x{med / ref:4.2f} of {base:10}  peak RSS {max(r for _, r in rows):4d} MiB")


def bench(work: Path, total: int, runs: int, only: str = "") -> None:
    vol = work / "volume.raw"
    dest = work / "dest"
    print(f"building a {total / 2**30:.1f} GiB volume in {work} …", flush=True)
    make_volume(vol, total, seed=1)
    dest.mkdir()
    run([OFFSITE, "image", "create", str(vol), str(dest), "--label", "vol"])
    for i, fraction in enumerate((0.30, 0.10, 0.20), start=1):
        change(vol, fraction, seed=10 + i)
        run([OFFSITE, "image", "create", str(vol), str(dest), "--label", "vol"])
    incs = [dest / f"vol-b001-i00{i}.ofi" for i in (1, 2, 3)]
    sizes = ", ".join(f"{p.stat().st_size / MiB:.0f}" for p in incs)
    print(f"incrementals: {sizes} MiB")

    out = work / "out"
    cons: dict[str, list[tuple[float, int]]] = {"cat": [], "cat + sync": [],
                                                "offsite image consolidate": []}
    with_full = [dest / "vol-b001.ofi", *incs]
    synth: dict[str, list[tuple[float, int]]] = {"cat": [], "cat + sync": [],
                                                 "offsite image consolidate": []}
    create: dict[str, list[tuple[float, int]]] = {
        "zstd -3": [], "zstd -3 + sync": [], "zstd -3 -T2": [],
        "offsite image create (full)": []}
    full_dest = work / "full"
    for r in range(runs):
        for inputs, results in ((incs, cons), (with_full, synth)) if only != "create" else ():
            steps = consolidate_steps(inputs, out)
            for name, step in steps if r % 2 == 0 else reversed(steps):
                drop(out)
                os.sync()  # untimed: no write-back left over from before (the volume's, a cat's)
                results[name].append(step())
        if only == "consolidate":
            print(f"  round {r + 1}/{runs} done", flush=True)
            continue
        csteps = [
            ("zstd -3", lambda: run(["zstd", "-3", "-q", "-f", str(vol), "-o", str(out)])),
            ("zstd -3 + sync",
             lambda: run(f"zstd -3 -q -f {vol} -o {out} && sync {out}", shell=True)),
            ("zstd -3 -T2",
             lambda: run(["zstd", "-3", "-T2", "-q", "-f", str(vol), "-o", str(out)])),
            ("offsite image create (full)",
             lambda: run([OFFSITE, "image", "create", str(vol), str(full_dest), "--label", "v"])),
        ]
        for name, step in csteps if r % 2 == 0 else reversed(csteps):
            drop(full_dest if name.startswith("offsite") else out)
            full_dest.mkdir(exist_ok=True)
            create[name].append(step())
        print(f"  round {r + 1}/{runs} done", flush=True)
    drop(out)
    if only != "create":
        outputs = []
        for inputs in (incs, with_full):
            run([OFFSITE, "image", "consolidate", *map(str, inputs), "-o", str(out)])
            outputs.append(f"{out.stat().st_size / MiB:.0f}")
            drop(out)
        print(f"consolidations: {' and '.join(outputs)} MiB"
              f" (the full: {with_full[0].stat().st_size / MiB:.0f} MiB)")
        median_table(f"consolidate 3 incrementals ({runs} runs)", cons, "cat")
        median_table(f"consolidate the full and 3 incrementals ({runs} runs)", synth, "cat")
        for title, results in (("3 incrementals", cons), ("full + 3", synth)):
            med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
            off = med["offsite image consolidate"]
            print(f"  {title}: offsite/cat {off / med['cat']:.2f},"
                  f" offsite/(cat + sync) {off / med['cat + sync']:.2f}  (goal <= 1.2)")
    if only != "consolidate":
        full = next(full_dest.glob("*.ofi"))
        print(f"full image {full.stat().st_size / MiB:.0f} MiB of a {total / MiB:.0f} MiB volume")
        median_table(f"create a full image of {total / 2**30:.1f} GiB ({runs} runs)", create,
                     "zstd -3")


def consolidate_steps(inputs: list[Path], out: Path) -> list[tuple[str, Callable[[], Row]]]:
    """``offsite image consolidate`` of ``inputs``, and cat with and without sync."""
    quoted = " ".join(map(str, inputs))
    return [
        ("cat", lambda: run(f"cat {quoted} > {out}", shell=True)),
        ("cat + sync", lambda: run(f"cat {quoted} > {out} && sync {out}", shell=True)),
        ("offsite image consolidate",
         lambda: run([OFFSITE, "image", "consolidate", *map(str, inputs), "-o", str(out)])),
    ]


def rss_only(work: Path, total: int) -> None:
    vol = work / "big.raw"
    dest = work / "bigdest"
    print(f"\npeak RSS on a {total / 2**30:.1f} GiB volume (one run each) …", flush=True)
    make_volume(vol, total, seed=2)
    dest.mkdir()
    t, rss = run([OFFSITE, "image", "create", str(vol), str(dest), "--label", "big"])
    print(f"  offsite image create (full)   {t:6.2f} s  peak RSS {rss} MiB")
    for i in (1, 2, 3):
        change(vol, 0.1 * i, seed=20 + i)
        run([OFFSITE, "image", "create", str(vol), str(dest), "--label", "big"])
    incs = sorted(dest.glob("big-b001-i*.ofi"))
    t, rss = run([OFFSITE, "image", "consolidate", *map(str, incs), "-o", str(work / "bo")])
    print(f"  offsite image consolidate     {t:6.2f} s  peak RSS {rss} MiB")
    drop(vol, dest, work / "bo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="2G", type=size)
    parser.add_argument("--runs", default=5, type=int)
    parser.add_argument("--big", default="", help="also show peak RSS at this volume size")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", choices=("consolidate", "create"), default="",
                        help="time only consolidate (or create) against its raw limit")
    args = parser.parse_args()
    ensure_zstd()
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-", dir=args.workdir))
    try:
        bench(work, args.size, args.runs, args.only)
        if args.big:
            rss_only(work, size(args.big))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What the benchmarks share: running a command and reading its own peak RSS,
sizes, statistics lines, and the destination that the job benchmarks replicate.

Imported by the scripts beside it (``python bench/X.py`` puts this folder on
``sys.path``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

MiB = 1 << 20
OFFSITE = str(Path(sys.executable).with_name("offsite"))

Row = tuple[float, int]  # (seconds, peak RSS in MiB)
Step = tuple[str, Callable[[], Row]]


def size(text: str) -> int:
    """``"1G"`` → bytes (K/M/G in powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.upper().rstrip("B").rstrip("I")
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def human(n: float) -> str:
    return f"{n / MiB:.1f} MiB" if n < 1 << 30 else f"{n / (1 << 30):.2f} GiB"


# Peak RSS through a lean launcher: a child started straight from a benchmark
# reports at least the benchmark's own peak in ru_maxrss (Linux records the
# spawning process's memory high-water mark at exec, and vfork/fork share or
# copy it), which would inflate every number by the heavy parent's. The
# launcher, a bare `python -S`, is what spawns and os.wait4s the command; its
# own small footprint is the floor that `true` shows.
LAUNCHER = """\
import os, sys, time
result, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(result, "w") as f:
    f.write(f"{seconds!r} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(cmd: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None,
        log: Path) -> Row:
    """Run a command; return (seconds, peak RSS in MiB of the command's own process).

    Timed and waited for by the launcher; its output goes to ``log``, shown if it fails.
    """
    result = log.with_suffix(".rusage")
    with open(log, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(result), *cmd],
            env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
            input=stdin.encode() if stdin is not None else None,
            stdin=subprocess.DEVNULL if stdin is None else None, check=False)
    if proc.returncode != 0:
        sys.exit(f"failed (rc={proc.returncode}): {cmd[:4]} …\n{log.read_text(errors='replace')}")
    seconds, maxrss_kib = result.read_text().split()
    return float(seconds), int(maxrss_kib) // 1024


def shell(command: str, *, log: Path) -> Row:
    """:func:`run` for a shell command line (``cat a b > c``)."""
    return run(["/bin/sh", "-c", command], log=log)


def empty(folder: Path) -> None:
    """Remove ``folder``, then write the page cache back, untimed."""
    shutil.rmtree(folder, ignore_errors=True)
    os.sync()


def tree_bytes(folder: Path) -> tuple[int, list[str]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in files), [str(p.relative_to(folder)) for p in files]


def write_random(path: Path, total: int, seed: int) -> None:
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = total
        while left:
            n = min(left, 4 * MiB)
            f.write(rnd.randbytes(n))
            left -= n


def stats_line(name: str, rows: list[Row], nbytes: int | None = None) -> str:
    times = [t for t, _ in rows]
    med = statistics.median(times)
    rate = f"  {nbytes / MiB / med:7.1f} MiB/s" if nbytes is not None else ""
    return (f"  {name:42} median {med:7.2f} s  (min {min(times):6.2f}, max {max(times):6.2f})"
            f"{rate}  peak RSS {max(r for _, r in rows):4d} MiB")


def alternate(r: int, steps: list[Step]) -> list[Step]:
    """Every other round in reverse order, so no tool always goes first."""
    return steps if r % 2 == 0 else steps[::-1]


#: The share of a volume's blocks each of the job's three incrementals
#: rewrites. offsite sends the full and one consolidation, (1 + h) volumes,
#: where rclone sends (1 + 3h): the bytes ratio is fixed by h alone.
HOT_FRACTION = 0.25


def sizes(text: str) -> list[int]:
    """A comma-separated list of sizes, e.g. ``256M,1G``."""
    return [size(part) for part in text.split(",") if part.strip()]


def build_destination(work: Path, vol_size: int, hot_fraction: float = HOT_FRACTION) -> Path:
    """A full image and three incrementals rewriting the same hot blocks."""
    vol, dest = work / "volume.raw", work / "dest"
    dest.mkdir()
    log = work / "cmd.log"
    blocks = vol_size // MiB
    print(f"\n[job] building a {human(vol_size)} volume (1 MiB blocks) and its images …",
          flush=True)
    write_random(vol, blocks * MiB, seed=2)
    create = [OFFSITE, "image", "create", str(vol), str(dest), "--label", "vol",
              "--block-size", "1M"]
    run(create, log=log)
    rnd = random.Random(3)
    hot = sorted(rnd.sample(range(blocks), int(blocks * hot_fraction)))
    for _ in range(3):
        with open(vol, "r+b") as f:
            for b in hot:
                f.seek(b * MiB)
                f.write(rnd.randbytes(MiB))
        run(create, log=log)
    vol.unlink()
    listing = ", ".join(f"{p.name} {p.stat().st_size / MiB:.1f} MiB"
                        for p in sorted(dest.iterdir()) if p.is_file())
    print(f"  {len(hot)} hot blocks of {blocks}; destination: {listing}")
    return dest


#: The job scenarios: what the target holds before the timed run.
SCENARIOS = {
    "empty": "an empty target (first replication: the full and the incrementals)",
    "pending": "a target holding the full from an earlier run (three incrementals pending)",
}


@contextlib.contextmanager
def incrementals_held(dest: Path) -> Iterator[None]:
    """The destination as it was before its incrementals were written."""
    held = dest.parent / "held"
    held.mkdir(exist_ok=True)
    moved = [p for p in dest.iterdir() if re.search(r"-i\d+\.ofi$", p.name)]
    for p in moved:
        p.rename(held / p.name)  # a rename keeps the mtime rclone compares
    try:
        yield
    finally:
        for p in moved:
            (held / p.name).rename(p)


def job_rounds(steps: list[Step], runs: int, *, clear: Callable[[], None],
               at_target: Callable[[], tuple[int, list[str]]],
               prepare: Mapping[str, Callable[[], object]] | None = None,
               ) -> tuple[dict[str, list[Row]], dict[str, tuple[int, list[str]]]]:
    """Run each tool's job ``runs`` times, alternating order: clear the target,
    ``prepare[tool]()`` it and write the page cache back (untimed), then the
    timed step.

    The write-back matters: a run leaves hundreds of MiB of dirty pages (the
    server's files), which the kernel writes back about 30 s later, in the
    middle of whichever run is timed then (measured: the same 1 GiB job took
    6.0 s or 9.5 s).

    :returns: the rows per tool, and what each tool's timed step added at the
        target (bytes, files), which must be the same every round.
    """
    results: dict[str, list[Row]] = {name: [] for name, _ in steps}
    sent: dict[str, tuple[int, list[str]]] = {}
    for r in range(runs):
        for name, step in alternate(r, steps):
            clear()
            if prepare and name in prepare:
                prepare[name]()
            os.sync()
            before_bytes, before_files = at_target()
            results[name].append(step())
            after_bytes, after_files = at_target()
            there = (after_bytes - before_bytes, sorted(set(after_files) - set(before_files)))
            if name in sent and sent[name] != there:
                sys.exit(f"{name}: the target differs between runs: {there} vs {sent[name]}")
            sent[name] = there
        order = " → ".join(k for k, _ in alternate(r, steps))
        print(f"  round {r + 1}/{runs} done ({order})", flush=True)
    clear()
    return results, sent


def job_report(results: dict[str, list[Row]], sent: dict[str, tuple[int, list[str]]],
               expected: tuple[int, list[str]], *, runs: int, where: str, rclone: str,
               time_goal: float, bytes_goal: float, waits: list[float],
               ) -> tuple[float, float, int]:
    """Print the job comparison; return (time ratio, bytes ratio, offsite's peak RSS).

    rclone copies every file the target lacks, so what it added must be
    ``expected`` (the destination, less what the target held); anything
    else means the comparison is not fair. ``waits``: per timed offsite run,
    the seconds it waited for the target to finish its uploads
    (:meth:`OffsiteJob.run`).
    """
    dest_bytes, dest_files = expected
    if sent["rclone"] != expected:
        sys.exit(f"rclone's copy {sent['rclone']} differs from what it lacked {expected}")
    print(f"\n[job] replicate the destination to {where} ({runs} runs)")
    print(stats_line("offsite run", results["offsite"]))
    print(stats_line(rclone, results["rclone"]))
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    time_ratio = med["offsite"] / med["rclone"]
    bytes_ratio = sent["offsite"][0] / dest_bytes
    rss = max(r for _, r in results["offsite"])
    print(f"  time ratio offsite/rclone:  {time_ratio:.2f}  (goal <= {time_goal})")
    wait = statistics.median(waits)
    print(f"    offsite waited {wait:.2f} s (median) for the target to finish its uploads"
          f" (last byte sent → upload done);"
          f" without that wait: {(med['offsite'] - wait) / med['rclone']:.2f}")
    print(f"  bytes sent offsite: {sent['offsite'][0] / MiB:8.1f} MiB"
          f"  ({', '.join(sent['offsite'][1])})")
    print(f"  bytes sent rclone:  {dest_bytes / MiB:8.1f} MiB  ({', '.join(dest_files)})")
    print(f"  bytes ratio offsite/rclone: {bytes_ratio:.2f}  (goal <= {bytes_goal})")
    print(f"  offsite run peak RSS: {rss} MiB")
    return time_ratio, bytes_ratio, rss


def compare_jobs(job: OffsiteJob, rclone_step: Callable[[], Row], runs: int, *,
                 clear: Callable[[], None], at_target: Callable[[], tuple[int, list[str]]],
                 rclone: str, time_goal: float, bytes_goal: float,
                 ) -> dict[str, tuple[float, float, int]]:
    """Both job scenarios (:data:`SCENARIOS`): ``job.run`` against ``rclone_step``.

    ``clear`` empties the target and offsite's journal. For "pending", each
    tool first replicates the destination as it was before its incrementals
    (untimed), so the timed run sends what piled up since.

    :returns: per scenario (time ratio, bytes ratio, offsite's peak RSS).
    """
    dest = job.dest
    steps: list[Step] = [("offsite", job.run), ("rclone", rclone_step)]

    def earlier(step: Callable[[], object]) -> Callable[[], None]:
        def seed() -> None:
            with incrementals_held(dest):
                step()
        return seed

    ratios = {}
    for scenario, where in SCENARIOS.items():
        prepare = None
        expected = tree_bytes(dest)
        job.waits.clear()
        if scenario == "pending":
            prepare = {"offsite": earlier(job.seed), "rclone": earlier(rclone_step)}
            with incrementals_held(dest):
                held = tree_bytes(dest)
            expected = (expected[0] - held[0], sorted(set(expected[1]) - set(held[1])))
        results, sent = job_rounds(steps, runs, clear=clear, at_target=at_target,
                                   prepare=prepare)
        ratios[scenario] = job_report(results, sent, expected, runs=runs, where=where,
                                      rclone=rclone, time_goal=time_goal,
                                      bytes_goal=bytes_goal, waits=job.waits)
    return ratios


def arguments(doc: str, *, tls: bool = False) -> argparse.Namespace:
    """The options every rclone benchmark takes (and ``--tls`` if asked);
    exits if rclone is missing."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    if tls:
        parser.add_argument("--tls", action="store_true",
                            help="everything over HTTPS, with a throw-away CA")
    parser.add_argument("--size", default="1G", type=size, help="throughput file size (1G)")
    parser.add_argument("--volumes", default="256M,1G", type=sizes,
                        help="job volume sizes, comma-separated (256M,1G)")
    parser.add_argument("--runs", default=5, type=int, help="rounds per part (5)")
    parser.add_argument("--skip-put", action="store_true", help="only the job part")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the files and the server's folders go (default: a folder"
                             " under /work, else the system's temporary folder); a tmpfs such"
                             " as /dev/shm takes the disk's write-back out of the timings")
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        sys.exit("this benchmark needs rclone: apt-get install rclone")
    return args


def workdir(args: argparse.Namespace, prefix: str) -> Path:
    """A fresh folder for one benchmark run: under ``--workdir`` if given,
    else under /work when that exists (a disk, not a small tmpfs /tmp)."""
    base = getattr(args, "workdir", None) or (Path("/work") if Path("/work").is_dir() else None)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def rss_floor(log: Path) -> None:
    """Say what the launcher's own peak RSS is, so readers can subtract it."""
    _t, floor = run(["true"], log=log)
    print(f"peak RSS below is each command's own, through a launcher whose floor"
          f" (`true`) is {floor} MiB", flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def job_summary(jobs: Mapping[int, Mapping[str, tuple[float, float, int]]], *,
                time_goal: float, bytes_goal: float) -> None:
    """One summary line per job volume and scenario (from :func:`compare_jobs`)."""
    for volume, per in jobs.items():
        for scenario, (time_ratio, bytes_ratio, rss) in per.items():
            print(f"  job on a {human(volume)} volume, {scenario} target:"
                  f" time offsite/rclone {time_ratio:.2f}"
                  f" (goal <= {time_goal}: {verdict(time_ratio <= time_goal)}),"
                  f" bytes {bytes_ratio:.2f}"
                  f" (goal <= {bytes_goal}: {verdict(bytes_ratio <= bytes_goal)}),"
                  f" offsite peak RSS {rss} MiB")


class OffsiteJob:
    """A job with one target, in its own folder: the destination, a config
    folder and stored credentials, as a benchmark's ``offsite run`` uses them.

    :param url: the target URL; ``options`` its ``[job.target.options]``;
        ``credentials`` what ``offsite credentials set --stdin`` stores.
    """

    NAME = "bench"

    def __init__(self, work: Path, volume: int, target: str, url: str,
                 options: Mapping[str, str], credentials: Mapping[str, str]) -> None:
        self.work = work / f"job-{volume // MiB}M"
        self.work.mkdir()
        self.dest = build_destination(self.work, volume)
        self.cfgdir = self.work / "config"
        self.cfgdir.mkdir(mode=0o700)
        self.cfg = self.cfgdir / "offsite.toml"
        self.log = self.work / "cmd.log"
        self.waits: list[float] = []  # see run()
        # json.dumps gives valid TOML basic strings for these values.
        opts = "".join(f"  {key} = {json.dumps(value)}\n" for key, value in options.items())
        self.cfg.write_text(
            f"[[job]]\nname = {json.dumps(self.NAME)}\n"
            f"destination = {json.dumps(str(self.dest))}\n\n"
            f"  [[job.target]]\n  name = {json.dumps(target)}\n"
            f"  url = {json.dumps(url)}\n  retries = 0\n"
            f"  [job.target.options]\n{opts}")
        run([OFFSITE, "--config", str(self.cfg), "credentials", "set",
             f"{self.NAME}.{target}", "--stdin"], stdin=json.dumps(dict(credentials)),
            log=self.log)
        print(f"  {self.log.read_text().strip()}")

    def run(self) -> Row:
        """One ``offsite run``, timed; adds to :attr:`waits` what it waited for
        the target to finish its uploads: per upload, from its last byte's
        progress event to its done event (``run --json``), which is the
        server's part (an S3 store assembling a multipart object, an SFTP
        server's fsync and rename) and the plugin's final look at the file."""
        row = self.seed()
        last: dict[str, float] = {}
        wait = 0.0
        for line in self.log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["event"] == "bytes-progressed" and event["done"] == event["size"]:
                last[event["remote"]] = event["time"]
            elif event["event"] == "upload-done":
                wait += event["time"] - last.pop(event["remote"])
        self.waits.append(wait)
        return row

    def seed(self) -> Row:
        """One ``offsite run`` (with ``--json`` events, in :attr:`log`), untimed."""
        return run([OFFSITE, "--config", str(self.cfg), "run", "--json"], log=self.log)

    def forget(self) -> None:
        """Delete the journal: the next run knows nothing of earlier ones."""
        for suffix in ("", "-wal", "-shm"):
            (self.cfgdir / f"journal.sqlite{suffix}").unlink(missing_ok=True)

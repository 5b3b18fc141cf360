"""Benchmark: ``offsite restore`` of a chain straight from a target (local folder, SFTP).

    python bench/restore.py [--volume 256M] [--runs 3]

Needs root and Debian's openssh-server for the SFTP target (the server comes
from ``offsite_sftp.testserver.run_sshd()``, stopped and removed at exit).
Everything is written to a temporary folder under /work when that exists,
never to a tmpfs /tmp, and removed at exit.

Builds the job benchmarks' destination (:func:`measure.build_destination`: a
full image of --volume random bytes in 1 MiB blocks and three incrementals
that rewrite the same 25% of the blocks), replicates it once with ``offsite
run`` to a job with two targets, a local folder and an SFTP folder (each then
holds the full image and incrementals 1..3 consolidated into one), then times
``offsite restore bench TARGET vol-b001-i003.ofi OUT`` --runs times per
target, alternating the order. OUT is removed and the page cache written back
between runs (untimed); the first restored OUT is compared with ``offsite
image restore`` of the destination. Reports medians and each restore's own
peak RSS, and what was left beside OUT (a restore leaves nothing but OUT).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from measure import (
    OFFSITE,
    Row,
    Step,
    alternate,
    build_destination,
    human,
    rss_floor,
    run,
    size,
    stats_line,
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volume", default="256M", type=size, help="volume size (256M)")
    parser.add_argument("--runs", default=3, type=int, help="restores per target (3)")
    args = parser.parse_args()

    from offsite_sftp.testserver import run_sshd

    base = Path("/work") if Path("/work").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-restore-", dir=base))
    try:
        work.chmod(0o755)  # the server's folder is inside: its user must traverse
        with run_sshd(base=work) as sshd:
            log = work / "cmd.log"
            rss_floor(log)
            dest = build_destination(work, args.volume)
            local = work / "local-target"
            cfgdir = work / "config"
            cfgdir.mkdir(mode=0o700)
            cfg = cfgdir / "offsite.toml"
            cfg.write_text(
                f"[[job]]\nname = \"bench\"\ndestination = {json.dumps(str(dest))}\n"
                f"  [[job.target]]\n  name = \"local\"\n"
                f"  url = {json.dumps(local.as_uri())}\n"
                f"  [[job.target]]\n  name = \"sftp\"\n"
                f"  url = {json.dumps(sshd.url('restore-target'))}\n"
                f"  [job.target.options]\n"
                f"  known_hosts = {json.dumps(str(sshd.known_hosts))}\n")
            offsite = [OFFSITE, "--config", str(cfg)]
            run([*offsite, "credentials", "set", "bench.sftp", "--stdin"],
                stdin=json.dumps({"password": sshd.password}), log=log)
            run([*offsite, "run"], log=log)
            held = ", ".join(f"{p.name} {human(p.stat().st_size)}"
                             for p in sorted(local.iterdir()))
            print(f"  each target holds: {held}", flush=True)

            reference = work / "reference.raw"
            run([OFFSITE, "image", "restore", str(dest / "vol-b001-i003.ofi"), str(reference)],
                log=log)
            expected = sha256(reference)
            reference.unlink()

            out_dir = work / "out"
            out_dir.mkdir()
            out = out_dir / "vol-at-3.raw"

            def restore(target: str) -> Step:
                def step() -> Row:
                    shutil.rmtree(out_dir)
                    out_dir.mkdir()
                    os.sync()
                    row = run([*offsite, "restore", "bench", target, "vol-b001-i003.ofi",
                               str(out)], log=log)
                    left = sorted(p.name for p in out_dir.iterdir())
                    if left != [out.name]:
                        sys.exit(f"{target}: the restore left {left} beside OUT")
                    if sha256(out) != expected:
                        sys.exit(f"{target}: the restored volume differs from the destination's")
                    return row
                return target, step

            steps = [restore("local"), restore("sftp")]
            results: dict[str, list[Row]] = {name: [] for name, _ in steps}
            for r in range(args.runs):
                for name, step in alternate(r, steps):
                    results[name].append(step())
            print(f"\n[restore] point 3 of a {human(args.volume)} volume "
                  f"({args.runs} runs each)")
            for name, rows in results.items():
                print(stats_line(f"offsite restore from {name}", rows, args.volume))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

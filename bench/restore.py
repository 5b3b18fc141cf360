"""Benchmark: ``offsite restore`` of a chain straight from a target, local folder and SFTP.

    python bench/restore.py [--volume 256M] [--runs 3] [--workdir DIR]

A thin wrapper: the restore part of bench/driver.py (against ``rclone
copy`` of the same chain, OUT checked against ``offsite image restore``,
nothing left beside OUT) for a local-folder target (bench/local.py) and an
SFTP target (bench/sftp.py, needs root and Debian's openssh-server).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from protocol import PYTHON, script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volume", default="256M", help="volume size (256M)")
    parser.add_argument("--runs", default="3", help="restores per target (3)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    more = ["--workdir", str(args.workdir)] if args.workdir else []
    for name in ("local.py", "sftp.py"):
        done = subprocess.run([PYTHON, script(name), "--parts", "restore", "--volumes",
                               args.volume, "--runs", args.runs, *more], check=False)
        if done.returncode:
            sys.exit(done.returncode)


if __name__ == "__main__":
    main()

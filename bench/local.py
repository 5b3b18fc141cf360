"""Benchmark: offsite's local-folder target (``file://``) against rclone.

    python bench/local.py [--parts put,get,job,restore,idle] [--size 1G]
                          [--volumes 256M,1G] [--runs 5] [--skip-put] [--json FILE]

No server: the target is a folder beside the benchmark's files, which
rclone reaches as a local path and ``cp`` as the limit. The parts and their
goals are bench/driver.py's. What it shows is offsite's own cost (start-up,
planning, checksums, the journal) with no network or server in the way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import driver
from protocol import Protocol


class Local(Protocol):
    label = "local"
    target = "local"
    root: Path

    @contextmanager
    def serve(self, work: Path) -> Iterator[object]:
        self.root = work / "target"
        self.root.mkdir()
        yield self.root

    def describe(self) -> str:
        return f"a local folder, {self.root}"

    def url(self, folder: str) -> str:
        return (self.root / folder).as_uri()

    def server_folder(self, folder: str) -> Path:
        return self.root / folder

    def rclone_remote(self, path: str) -> str:
        return str(self.root / path)

    def rclone_env(self) -> dict[str, str]:
        return {"RCLONE_CONFIG": os.devnull}


def main() -> None:
    args = driver.arguments(__doc__)
    driver.main(args, [Local()], "local")


if __name__ == "__main__":
    main()

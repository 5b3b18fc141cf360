"""Benchmark: offsite's SFTP plugin against rclone, on a real sshd on loopback.

    python bench/sftp.py [--parts put,get,job,restore,idle] [--size 1G]
                         [--volumes 256M,1G] [--runs 5] [--skip-put] [--json FILE]

Needs root, Debian's openssh-server and rclone: the server comes from
``offsite_sftp.testserver.run_sshd()`` (a throw-away sshd with a Unix test
user, stopped and removed at exit). The parts and their goals are
bench/driver.py's: put and get of one file (against ``rclone copyto`` and
``cp`` into the server's folder, the local limit), the two job scenarios,
restore from the target, and the idle run.

rclone reaches the server through an on-the-fly remote from environment
variables (password obscured, host key pinned, ``shell_type=none`` and
``disable_hashcheck``: no exec probing for a nologin user). An idle offsite
run takes about 0.16 s (Python start-up, imports, SSH login), rclone about
0.12 s; per byte offsite sends less and about as fast, so the job's time
ratio depends on scale: two volume sizes by default.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs: quote medians.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import driver
from protocol import Protocol

if TYPE_CHECKING:
    from offsite_sftp.testserver import SshdInfo


class Sftp(Protocol):
    label = "sftp"
    target = "sftp"
    sshd: SshdInfo

    @contextmanager
    def serve(self, work: Path) -> Iterator[object]:
        from offsite_sftp.testserver import run_sshd

        with run_sshd(base=work) as self.sshd:
            yield self.sshd

    def describe(self) -> str:
        return (f"sshd on {self.sshd.host}:{self.sshd.port}, folder {self.sshd.root};"
                f" paramiko {importlib.metadata.version('paramiko')}")

    def url(self, folder: str) -> str:
        return self.sshd.url(folder)

    def options(self) -> dict[str, str]:
        return {"known_hosts": str(self.sshd.known_hosts)}

    def credentials(self) -> dict[str, str]:
        return {"password": self.sshd.password}

    def server_folder(self, folder: str) -> Path:
        return self.sshd.root / folder

    def rclone_remote(self, path: str) -> str:
        return f":sftp:{self.sshd.root}/{path}"

    def rclone_env(self) -> dict[str, str]:
        env = self.sshd.rclone_env()
        assert env is not None
        return env


def main() -> None:
    args = driver.arguments(__doc__)
    driver.main(args, [Sftp()], "sftp")


if __name__ == "__main__":
    main()

"""Benchmark: offsite's WebDAV plugin against rclone, on wsgidav on loopback.

    python bench/webdav.py [--parts put,get,job,restore,idle] [--size 1G]
                           [--volumes 256M,1G] [--runs 5] [--skip-put] [--tls] [--json FILE]

Needs wsgidav, cheroot (offsite-webdav's ``test`` extra) and rclone: the
server comes from ``offsite_webdav.testserver.run_wsgidav()`` (wsgidav on
cheroot, threads of this process, on a free 127.0.0.1 port; every offsite
and rclone command runs as a process of its own, so this process's CPU
seconds during a timed step are the server's, printed beside each tool).
With ``--tls`` it serves HTTPS with a certificate of a throw-away CA, which
offsite gets as its ``ca_file`` option and rclone as ``--ca-cert``. The
parts and their goals are bench/driver.py's (``cp`` into the server's folder
is the local limit of put and get); offsite's put is a PUT to a partial
name, a PROPFIND and a MOVE.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs (wsgidav, pure Python, is the slowest part):
quote medians.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import driver
from protocol import Protocol

if TYPE_CHECKING:
    from offsite_webdav.testserver import DavInfo


class WebDav(Protocol):
    target = "dav"
    notes = ("server CPU: this process's (wsgidav's threads)",)
    dav: DavInfo

    def __init__(self, tls: bool) -> None:
        self.tls = tls
        self.label = "webdavs" if tls else "webdav"

    @contextmanager
    def serve(self, work: Path) -> Iterator[object]:
        from offsite.testing.certs import make_certs
        from offsite_webdav.testserver import run_wsgidav

        certs = make_certs(work / "tls") if self.tls else None
        with run_wsgidav(work / "server", certs=certs) as self.dav:
            yield self.dav

    def describe(self) -> str:
        libs = ", ".join(f"{p} {importlib.metadata.version(p)}"
                         for p in ("wsgidav", "cheroot", "webdavclient3", "requests"))
        return f"wsgidav at {self.dav.base_url}, folder {self.dav.root}; {libs}"

    def url(self, folder: str) -> str:
        return self.dav.url(folder)

    def options(self) -> dict[str, str]:
        return {"ca_file": str(self.dav.ca_file)} if self.dav.ca_file else {}

    def credentials(self) -> dict[str, str]:
        return {"password": self.dav.password}

    def server_folder(self, folder: str) -> Path:
        return self.dav.root / folder

    def server_cpu(self) -> float:
        t = os.times()
        return t.user + t.system

    def rclone_remote(self, path: str) -> str:
        return f":webdav:{path}"

    def rclone_env(self) -> dict[str, str]:
        env = self.dav.rclone_env()
        assert env is not None
        return env

    def rclone_flags(self) -> list[str]:
        return [*super().rclone_flags(), *self.dav.rclone_flags()]


def main() -> None:
    args = driver.arguments(__doc__, tls=True)
    driver.main(args, [WebDav(args.tls)], "webdav")


if __name__ == "__main__":
    main()

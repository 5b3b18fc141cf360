"""Benchmark: offsite's FTP plugin against rclone, on a pyftpdlib server on loopback.

    python bench/ftp.py [--parts put,get,job,restore,idle] [--size 1G]
                        [--volumes 256M,1G] [--runs 5] [--skip-put] [--modes ftp,ftps]
                        [--json FILE]

Needs rclone and the FTP plugin's test extra (pyftpdlib, pyOpenSSL). The
server is ``python -m offsite_ftp.testserver`` (1 MiB buffers) in a process of
its own, one per mode: plain FTP, then explicit FTPS (TLS required on
control and data connections, a throw-away CA that both clients are told to
trust: offsite through ``ca_file``, rclone through ``SSL_CERT_FILE``, as its
FTP backend ignores --ca-cert; rclone needs ``disable_tls13`` or its uploads
arrive cut short, and ``disable_mlsd``: pyftpdlib answers MLSD of a missing
folder with 501, which rclone 1.60 does not take for "not found").
pyftpdlib is one Python process serving everything: it is often the
bottleneck, so the CPU seconds it spent are printed beside each tool's time.
The parts and their goals are bench/driver.py's (``cp`` into the server's
folder is the local limit of put and get).

Timings are wall-clock with client and server on the same CPUs, on a machine
shared with other work: quote medians.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import driver
from measure import MiB
from protocol import PYTHON, Protocol, process_cpu

if TYPE_CHECKING:
    from offsite_ftp.testserver import FtpdInfo

MODES = ("ftp", "ftps")


class Ftp(Protocol):
    target = "ftp"
    notes = ("server CPU: pyftpdlib's, one Python process serving everything",)
    ftpd: FtpdInfo
    pid: int
    obscured: str

    def __init__(self, mode: str) -> None:
        self.label = mode

    @contextmanager
    def serve(self, work: Path) -> Iterator[object]:
        from offsite_ftp.testserver import FtpdInfo

        home = work / "home"
        home.mkdir()
        cmd = [PYTHON, "-m", "offsite_ftp.testserver", str(home), "--buffer", str(MiB)]
        proc = subprocess.Popen(cmd + (["--tls"] if self.label == "ftps" else []),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()
            if not line:
                sys.exit("the test server did not start")
            i = json.loads(line)
            self.ftpd = FtpdInfo(i["host"], i["port"], Path(i["root"]), i["user"],
                                 i["password"], i["tls"], i["ca_file"])
            self.pid = proc.pid
            self.obscured = subprocess.run(["rclone", "obscure", "-"], input=i["password"],
                                           capture_output=True, text=True,
                                           check=True).stdout.strip()
            yield self.ftpd
        finally:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(30)

    def describe(self) -> str:
        return (f"pyftpdlib {importlib.metadata.version('pyftpdlib')} on {self.ftpd.host}:"
                f"{self.ftpd.port} (pid {self.pid}), folder {self.ftpd.root}")

    def url(self, folder: str) -> str:
        return self.ftpd.url(folder)

    def options(self) -> dict[str, str]:
        return self.ftpd.options()

    def credentials(self) -> dict[str, str]:
        return {"password": self.ftpd.password}

    def server_folder(self, folder: str) -> Path:
        return self.ftpd.root / folder

    def server_cpu(self) -> float:
        return process_cpu(self.pid)

    def rclone_remote(self, path: str) -> str:
        # disable_mlsd, and disable_tls13 over TLS: see FtpdInfo.rclone_remote.
        return self.ftpd.rclone_remote(path)

    def rclone_env(self) -> dict[str, str]:
        return self.ftpd.rclone_env(self.obscured)

    def rclone_flags(self) -> list[str]:
        # rclone 1.60 downloads a file over 250 MiB in ranges on several
        # connections, each cut off at its range's end: pyftpdlib answers that
        # with 426 and rclone fails the copy. One stream, as offsite reads.
        return [*super().rclone_flags(), "--multi-thread-streams", "0"]


def main() -> None:
    args = driver.arguments(__doc__, modes=MODES)
    driver.main(args, [Ftp(mode) for mode in args.modes], "ftp")


if __name__ == "__main__":
    main()

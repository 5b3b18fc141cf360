"""Benchmark: offsite's SMB plugin against Samba's smbclient and rclone, on a real smbd on loopback.

    python bench/cifs.py [--parts put,get,job,restore,idle] [--size 1G] [--volumes 1G]
                         [--runs 3] [--skip-put] [--skip-job] [--modes signed,encrypted]
                         [--json FILE]

Needs root, Debian's samba, smbclient and rclone: the server comes from
``offsite_cifs.testserver.run_smbd()`` (a throw-away smbd with a Unix test
user, stopped and removed at exit), one per mode:

* "signed" (share ``backup``): offsite always signs, smbclient is told to
  with ``--client-protection=sign``; rclone 1.60 does NOT sign: it fails its
  writes with "signing required" against a server that mandates signing, so
  this server (``server signing = default``) lets it go unsigned, which
  favours rclone. That is why smbclient, Samba's C client, is the second
  reference of put and get (``smbclient //HOST/SHARE -c 'put FILE NAME'``,
  ``get``; password in $PASSWD): the goal there is offsite's time at most
  the faster of smbclient and rclone.
* "encrypted" (share ``sealed``, ``smb encrypt = required``): the server
  makes every client encrypt, so all three tools pay for the same thing.

The parts and their goals are otherwise bench/driver.py's (``cp`` into the
share's folder is the local limit of put and get; job, restore and idle
compare with rclone).

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs: quote medians.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import driver
from measure import Row, run
from protocol import Extra, Protocol

if TYPE_CHECKING:
    from offsite_cifs.testserver import SmbdInfo

#: mode → the share it writes to, and smbclient's --client-protection.
MODES = {"signed": ("backup", "sign"), "encrypted": ("sealed", "encrypt")}
NOTES = {
    "signed": ("rclone 1.60 cannot sign: this smbd lets it go unsigned (server signing ="
               " default), which favours it; offsite and smbclient sign",),
    "encrypted": ("smb encrypt = required: every client encrypts",),
}


class Cifs(Protocol):
    target = "smb"
    smbd: SmbdInfo

    def __init__(self, mode: str) -> None:
        self.label = f"smb-{mode}"
        self.share, self.protection = MODES[mode]
        self.notes = NOTES[mode]

    @contextmanager
    def serve(self, work: Path) -> Iterator[object]:
        from offsite_cifs.testserver import run_smbd

        # Signing as the client asks: rclone's SMB client (go-smb2) fails its
        # writes with "signing required" where the server mandates it.
        with run_smbd(base=work, signing="default") as self.smbd:
            yield self.smbd

    def describe(self) -> str:
        versions = [subprocess.run([tool, "--version"], capture_output=True, text=True,
                                   check=True).stdout.splitlines()[0]
                    for tool in ("smbclient",)]
        return (f"smbd on {self.smbd.host}:{self.smbd.port}, share {self.share}, folder"
                f" {self.smbd.root}; {'; '.join(versions)};"
                f" smbprotocol {importlib.metadata.version('smbprotocol')}")

    def url(self, folder: str) -> str:
        return self.smbd.url(folder, share=self.share)

    def credentials(self) -> dict[str, str]:
        return {"password": self.smbd.password}

    def server_folder(self, folder: str) -> Path:
        return self.smbd.root / folder

    def rclone_remote(self, path: str) -> str:
        return f":smb:{self.share}/{path}"

    def rclone_env(self) -> dict[str, str]:
        env = self.smbd.rclone_env()
        assert env is not None
        return env

    def smbclient(self, command: str, log: Path) -> Row:
        return run(["smbclient", f"//{self.smbd.host}/{self.share}", "-p", str(self.smbd.port),
                    "-U", self.smbd.user, "-s", "/dev/null", "-m", "SMB3",
                    f"--client-protection={self.protection}", "-c", command],
                   env={"PASSWD": self.smbd.password}, log=log)

    def extras(self, log: Path) -> list[Extra]:
        def put(file: Path, folder: str, name: str) -> Row:
            # smbclient cannot make the folder and put in one go without
            # noise: the folder is made (untimed) beforehand, for the user.
            path = self.server_folder(folder)
            path.mkdir(exist_ok=True)
            shutil.chown(path, self.smbd.user)
            return self.smbclient(f"put {file} {folder}/{name}", log)

        def get(folder: str, name: str, file: Path) -> Row:
            return self.smbclient(f"get {folder}/{name} {file}", log)

        return [*super().extras(log),
                Extra("smbclient", "smbclient (Samba's C client)", put, get, rival=True)]


def main() -> None:
    args = driver.arguments(__doc__, modes=tuple(MODES), volumes="1G", runs=3,
                            tools=("rclone", "smbclient"))
    driver.main(args, [Cifs(mode) for mode in args.modes], "cifs")


if __name__ == "__main__":
    main()

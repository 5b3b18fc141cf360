"""The adapter each protocol benchmark (``bench/sftp.py`` …) fills in, so that
one driver (``bench/driver.py``) runs every part against every protocol.

An adapter starts its server, says how offsite reaches a folder there (URL,
options, credentials) and how rclone does, where the server keeps a folder
on this machine (to empty it and count its bytes), and which further tools
the single-file parts compare with (``cp`` as the local limit, smbclient,
boto3).
"""

from __future__ import annotations

import abc
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NamedTuple

from measure import Row, empty, run, tree_bytes
from transfer import ENDPOINT_ENV

#: Fail fast: rclone's defaults retry for about 11 s per failure.
RCLONE_FLAGS = ("--retries", "1", "--low-level-retries", "1")
TICK = os.sysconf("SC_CLK_TCK")


class Extra(NamedTuple):
    """One more tool in the put and get parts.

    :ivar put: ``(FILE, FOLDER, NAME)`` → upload FILE as FOLDER/NAME, timed
        (what the callable does before its :func:`~measure.run` is untimed).
    :ivar get: ``(FOLDER, NAME, FILE)`` → download FOLDER/NAME into FILE, timed.
    :ivar rival: the goal compares offsite with the fastest of rclone and
        every rival (smbclient); other extras are the local limit (cp) or a
        reference only (boto3).
    """

    key: str
    label: str
    put: Callable[[Path, str, str], Row]
    get: Callable[[str, str, Path], Row]
    rival: bool = False


class Protocol(abc.ABC):
    """A protocol's server and its clients, as the driver uses them.

    A folder is a path relative to the server's root, e.g. ``put-offsite``.
    :meth:`serve` is entered before any other method is called.
    """

    #: In reports and the --json file: ``sftp``, ``ftps``, ``smb-signed``.
    label: str = ""
    #: The target's name in the benchmark's job.
    target: str = "target"
    #: offsite's peak RSS in the put and get parts must stay below it (MiB).
    rss_goal: int = 100
    #: Printed under the header: what is particular about this comparison.
    notes: tuple[str, ...] = ()

    @abc.abstractmethod
    def serve(self, work: Path) -> AbstractContextManager[object]:
        """Start the server, its files under ``work``; stop it on exit."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The server, where it listens, and the versions that matter."""

    # -- offsite ------------------------------------------------------------

    @abc.abstractmethod
    def url(self, folder: str) -> str:
        """The target URL of ``folder``."""

    def options(self) -> dict[str, str]:
        """The target's options (``[job.target.options]``)."""
        return {}

    def credentials(self) -> dict[str, str]:
        """What ``offsite credentials set --stdin`` stores for the target."""
        return {}

    def endpoint_env(self, folder: str) -> dict[str, str]:
        """The environment of a ``bench/transfer.py`` process for ``folder``."""
        spec = {"url": self.url(folder), "options": self.options(),
                "credentials": self.credentials()}
        return {ENDPOINT_ENV: json.dumps(spec)}

    # -- the server's side --------------------------------------------------

    def server_folder(self, folder: str) -> Path | None:
        """Where the server keeps ``folder`` on this machine; None if it keeps
        no files (S3: override :meth:`clear` and :meth:`at_target`)."""
        return None

    def clear(self, folder: str) -> None:
        """Remove ``folder`` and everything in it, untimed."""
        path = self.server_folder(folder)
        assert path is not None, f"{type(self).__name__} must override clear()"
        empty(path)

    def at_target(self, folder: str) -> tuple[int, list[str]]:
        """The bytes and the relative paths of the files in ``folder``."""
        path = self.server_folder(folder)
        assert path is not None, f"{type(self).__name__} must override at_target()"
        return tree_bytes(path)

    def server_cpu(self) -> float | None:
        """CPU seconds the server has used so far, if they can be read."""
        return None

    def warm_up(self, work: Path, log: Path) -> None:
        """Untimed, before the job parts: bring the server to a steady state
        (by default nothing)."""
        return

    # -- the references -----------------------------------------------------

    @abc.abstractmethod
    def rclone_remote(self, path: str) -> str:
        """rclone's name of ``path`` (a folder, or a folder's file)."""

    @abc.abstractmethod
    def rclone_env(self) -> dict[str, str]:
        """rclone's environment (its on-the-fly remote, secrets obscured)."""

    def rclone_flags(self) -> list[str]:
        return list(RCLONE_FLAGS)

    def rclone(self, *args: str, log: Path) -> Row:
        """``rclone ARGS… FLAGS…``, timed."""
        return run(["rclone", *args, *self.rclone_flags()], env=self.rclone_env(), log=log)

    def extras(self, log: Path) -> list[Extra]:
        """The put and get parts' further tools: by default ``cp`` into and
        out of the server's folder, the local limit."""
        if self.server_folder("") is None:
            return []

        def put(file: Path, folder: str, name: str) -> Row:
            path = self.server_folder(folder)
            assert path is not None
            path.mkdir(exist_ok=True)
            return run(["cp", str(file), str(path / name)], log=log)

        def get(folder: str, name: str, file: Path) -> Row:
            path = self.server_folder(folder)
            assert path is not None
            return run(["cp", str(path / name), str(file)], log=log)

        return [Extra("cp", "cp, the server's folder (local limit)", put, get)]


def process_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` and its waited-for children have used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def script(name: str) -> str:
    """The path of a script beside this module, for ``sys.executable SCRIPT``."""
    return str(Path(__file__).with_name(name).resolve())


PYTHON = sys.executable

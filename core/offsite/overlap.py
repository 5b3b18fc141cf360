"""Folders that must not overlap: destinations, and the targets that write.

A target whose folder is, holds, or lies inside a destination would write
into the backups offsite protects, and a mirror target there would delete
them. Two targets sharing a folder while one of them mirrors would fight over
its files. :func:`problems` finds both, for the configuration loader (which
refuses such a file) and for the engine (which checks again before each job:
a symlink may have changed since the file was loaded).

Local folders are compared as the operating system will see them: ``~``
expanded, ``..`` and symlinks resolved (:func:`os.path.realpath`, which
resolves the part of a path that exists and keeps the rest). Folders on
other machines are compared by protocol family, host, port and path, with
default ports filled in. A target on this machine over a network protocol
(``sftp://localhost/…``) is compared as a local folder too: it may well be
one.

:class:`Guard` is the last line: before each write or delete at a target on
this machine, the engine asks it whether the real path lies under a
destination.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from offsite.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from offsite.config import Job
    from offsite.transport import Endpoint

#: Host names that always mean this machine.
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost", "localhost6"})
#: Schemes that reach a folder through a server, which may run on this machine.
_SERVED_LOCAL = frozenset({"sftp", "ftp", "ftps"})
#: Schemes that name the same server and folder under two names.
_FAMILY = {"ftps": "ftp", "webdavs": "webdav", "cifs": "smb"}
_DEFAULT_PORT = {"sftp": 22, "ftp": 21, "ftps": 21, "webdav": 80, "webdavs": 443,
                 "smb": 445, "cifs": 445}


def real(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` expanded and ``..`` and symlinks resolved."""
    return Path(os.path.realpath(os.path.expanduser(path)))


def local_folder(endpoint: Endpoint) -> Path | None:
    """The folder on this machine a target writes to, or None if it is elsewhere.

    ``file://`` targets, and servers on a loopback address (their path may
    be a chroot's, so this errs on the side of refusing).
    """
    if endpoint.scheme == "file" and endpoint.host in ("", "localhost"):
        return Path(endpoint.path) if os.path.isabs(endpoint.path) else None
    if (endpoint.scheme in _SERVED_LOCAL and endpoint.host.lower() in LOOPBACK
            and endpoint.path.startswith("/") and not endpoint.path.startswith("/~")):
        return Path(endpoint.path)
    return None


def _within(inner: Sequence[str], outer: Sequence[str]) -> bool:
    return len(inner) >= len(outer) and tuple(inner[: len(outer)]) == tuple(outer)


def _parts(path: str, *, casefold: bool = False) -> tuple[str, ...]:
    normal = posixpath.normpath("/" + path).strip("/")
    parts = tuple(p for p in normal.split("/") if p)
    return tuple(p.casefold() for p in parts) if casefold else parts


@attrs.frozen
class Folder:
    """Where one destination or target is, in a form that compares.

    :ivar key: the key path in the configuration (``job[0].target[1].url``).
    :ivar what: how a message names it (``job 'nightly' target 'usb'``).
    :ivar shown: the folder as the operator wrote it, for messages.
    :ivar local: the real folder on this machine, if it is on this machine.
    :ivar remote: protocol family, host, port (and what else tells servers
        apart), then the path's parts, for a folder elsewhere.
    """

    key: str
    what: str
    shown: str
    target: bool
    mirror: bool = False
    local: tuple[str, ...] | None = None
    remote: tuple[str, ...] | None = None
    job: str = ""

    @classmethod
    def of_destination(cls, job: Job, index: int) -> Folder:
        return cls(f"job[{index}].destination", f"the destination of job '{job.name}'",
                   str(job.destination), False, local=real(job.destination).parts,
                   job=job.name)

    @classmethod
    def of_target(cls, job: Job, index: int, number: int) -> Folder:
        t = job.targets[number]
        e = t.endpoint
        key = f"job[{index}].target[{number}].url"
        what = f"target '{t.name}' of job '{job.name}'"
        folder = local_folder(e)
        if folder is not None:
            return cls(key, what, t.url, True, t.mirror, local=real(folder).parts, job=job.name)
        family = _FAMILY.get(e.scheme, e.scheme)
        port = str(e.port or _DEFAULT_PORT.get(e.scheme) or "")
        # A path under "~" depends on who logs in; an S3 bucket on which store.
        extra = e.username if e.path.startswith("/~") else ""
        if family == "s3":
            extra = str(e.options.get("endpoint_url") or "").rstrip("/").lower()
        server = (family, e.host.lower(), port, extra)
        return cls(key, what, t.url, True, t.mirror,
                   remote=server + _parts(e.path, casefold=family == "smb"), job=job.name)

    def relation(self, other: Folder) -> str | None:
        """``is``, ``lies inside``, ``holds`` (this one relative to ``other``), or None."""
        mine, theirs = (self.local, other.local) if self.local is not None else (
            self.remote, other.remote)
        if mine is None or theirs is None:
            return None
        if self.remote is not None and mine[:4] != theirs[:4]:
            return None  # another server
        if mine == theirs:
            return "is"
        if _within(mine, theirs):
            return "lies inside"
        if _within(theirs, mine):
            return "holds"
        return None


def folders(jobs: Sequence[Job]) -> list[Folder]:
    """Every destination and target folder of ``jobs``, in file order."""
    found: list[Folder] = []
    for index, job in enumerate(jobs):
        found.append(Folder.of_destination(job, index))
        found += [Folder.of_target(job, index, n) for n in range(len(job.targets))]
    return found


@attrs.frozen
class Overlap:
    """Two folders that must not overlap, and why."""

    key: str
    message: str
    jobs: frozenset[str]


def problems(jobs: Sequence[Job]) -> tuple[list[Overlap], list[str]]:
    """The overlaps that refuse a configuration, and those worth a warning.

    Refused: a target folder that is, holds or lies inside a destination (of
    any job); two targets whose folders are the same or nested when either
    mirrors. Warned about: two targets without mirror sharing one folder
    (files of the same name overwrite each other).
    """
    refused: list[Overlap] = []
    warned: list[str] = []
    every = folders(jobs)
    destinations = [f for f in every if not f.target]
    targets = [f for f in every if f.target]
    for t in targets:
        for d in destinations:
            how = t.relation(d)
            if how is not None:
                refused.append(Overlap(t.key, (
                    f"the folder of {t.what} ({t.shown}) {how} {d.what} ({d.key} = {d.shown}): "
                    "a target must never touch a destination, or offsite would write into "
                    "(and a mirror delete) the backups it protects; choose a target folder "
                    "outside every destination"), frozenset({t.job, d.job})))
    for i, a in enumerate(targets):
        for b in targets[i + 1:]:
            how = b.relation(a)
            if how is None:
                continue
            if a.mirror or b.mirror:
                mirror = a if a.mirror else b
                refused.append(Overlap(b.key, (
                    f"the folder of {b.what} ({b.shown}) {how} the folder of {a.what} "
                    f"({a.key} = {a.shown}), and {mirror.what} mirrors: targets that share "
                    "a folder would replace and delete each other's files; give each target "
                    "a folder of its own"), frozenset({a.job, b.job})))
            elif how == "is":
                warned.append(
                    f"{b.what} ({b.key}) writes into the same folder as {a.what} ({a.key}): "
                    "files of the same name at both replace each other")
    return refused, warned


def check_job(jobs: Sequence[Job], job: Job, file: str | os.PathLike[str]) -> None:
    """Refuse to work ``job`` if its folders overlap another's where that
    could lose data: checked at load, and again before work that writes, as
    a symlink may have changed since.

    :param file: the configuration file, for the message.
    :raises ConfigError: naming the target and what it overlaps.
    """
    refused, _ = problems(jobs)
    for problem in refused:
        if job.name in problem.jobs:
            raise ConfigError(problem.message, file=file, key=problem.key)


class Guard:
    """Refuses a write or delete whose real path lies under a destination.

    :param destinations: every destination of the configuration.
    """

    def __init__(self, destinations: Iterable[Path]) -> None:
        self._destinations = [real(d).parts for d in destinations]

    def check(self, root: Path, remote: str, action: str) -> None:
        """:raises UsageError: ``root/remote`` (its folder, really) is under a destination."""
        place = real(root / remote)
        folder = real((root / remote).parent)
        for dest in self._destinations:
            if _within(folder.parts, dest) or _within(place.parts, dest):
                raise UsageError(
                    f"refused to {action} {place}: it lies under a destination "
                    f"({Path(*dest)}), which offsite never changes",
                    fix="a symlink at the target leads into a destination: remove it")


__all__ = ["Folder", "Guard", "Overlap", "check_job", "folders", "local_folder", "problems",
           "real"]

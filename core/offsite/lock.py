"""One process works a job at a time: a lock per job that dies with its process.

Two ``offsite run`` processes on one job would take over each other's
uploads (one cutting the other's partial file back to its resume point
while the other goes on writing), so every command that works a job (``run``,
``verify``, the replicator) holds the job's lock while it does. The lock is an
``flock`` on ``locks/JOB.lock`` in the config folder: the kernel releases it
when its process ends in any way, kill -9 and power cuts included, so a lock
is never stale and never needs removing by hand.

The file also says who holds it (process id, host, command, start time), for
the message a second process gives and for ``offsite status``. It is emptied
on a clean release, so a lock that is free but still names a process tells
that this process died while working the job.

``offsite status`` asks whether a lock is held by taking it shared for an
instant; a process that wants it meanwhile retries for up to
:data:`GRACE` seconds rather than failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from offsite.errors import Locked

#: The folder in the config folder that holds the lock files.
FOLDER = "locks"
#: How long taking a lock retries before it reports the job as busy.
GRACE = 2.0
#: How often a waiting process tries again.
POLL = 0.2


@attrs.frozen
class Holder:
    """Who holds (or last held) a job's lock."""

    pid: int
    host: str
    command: str
    started: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"process {self.pid} on {self.host} ({self.command}, since {when})"


def lock_path(folder: Path, job: str) -> Path:
    """The lock file of ``job`` in the config folder ``folder``."""
    return Path(folder) / FOLDER / f"{job}.lock"


def _read(fd: int) -> Holder | None:
    data = os.pread(fd, 4096, 0)
    if not data.strip():
        return None
    try:
        doc = json.loads(data)
        return Holder(int(doc["pid"]), str(doc["host"]), str(doc["command"]),
                      float(doc["started"]))
    except (ValueError, KeyError, TypeError):
        return None  # written by something else, or cut short: says nothing


def _open(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@attrs.frozen
class LockState:
    """What a job's lock says: held now, or free (and who held it last if
    that process ended without releasing it)."""

    held: bool
    holder: Holder | None = None

    @property
    def died(self) -> bool:
        """The last holder ended without a clean release (killed, crashed)."""
        return not self.held and self.holder is not None


def state(folder: Path, job: str) -> LockState:
    """Whether ``job``'s lock is held, and by whom. Never waits."""
    path = lock_path(folder, job)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LockState(False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockState(True, _read(fd))
        try:
            return LockState(False, _read(fd))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class JobLock:
    """The lock of one job; use as a context manager around the work.

    :param folder: the config folder.
    :param command: what this process does, for the other processes' messages.
    """

    def __init__(self, folder: Path, job: str, command: str = "offsite run") -> None:
        self.path = lock_path(folder, job)
        self.job = job
        self.command = command
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False, cancel: threading.Event | None = None) -> None:
        """Take the lock.

        :param wait: wait for as long as another process holds it.
        :param cancel: stop waiting when this is set (raises :class:`Locked`).
        :raises Locked: another process holds it (after :data:`GRACE`
            seconds, unless ``wait``), naming that process.
        """
        fd = _open(self.path)
        deadline = time.monotonic() + GRACE
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    stop = cancel is not None and cancel.is_set()
                    if stop or (not wait and time.monotonic() >= deadline):
                        raise self._busy(fd) from None
                    time.sleep(POLL)
            # uname, not socket.gethostname: the same name, without importing socket
            me = Holder(os.getpid(), os.uname().nodename, self.command, time.time())
            text = json.dumps(attrs.asdict(me)).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, text + b"\n", 0)
        except BaseException:
            os.close(fd)  # also releases the lock if it was taken
            raise
        self._fd = fd

    def _busy(self, fd: int) -> Locked:
        holder = _read(fd)
        who = holder.describe() if holder is not None else "another process"
        return Locked(f"job '{self.job}' is being worked by {who}", job=self.job,
                      holder=holder)

    def release(self) -> None:
        """Release the lock, saying it was released cleanly (emptying the file)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


__all__ = ["FOLDER", "GRACE", "Holder", "JobLock", "LockState", "lock_path", "state"]

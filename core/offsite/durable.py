"""Making files durable and publishing them atomically, on local file systems.

Shared by the image writer and the local-folder target: fsync a folder so
a rename in it survives a power cut, move a finished file into place
without ever replacing an existing one, and have the disk write a large
file while it is still being written (:class:`WriteBehind`), so that its
final fsync has little left to wait for.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from pathlib import Path

#: How far a :class:`WriteBehind` lets written bytes pile up before it
#: starts the disk on them (measured: 2 to 32 MiB all alike, 64 MiB left
#: more to the final fsync).
WRITE_BEHIND_STEP = 16 << 20

_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start write-out, do not wait


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` from the C library (``os`` lacks it), or None."""
    try:
        # The running program's symbols, libc's among them (find_library would
        # start ldconfig in a subprocess).
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):  # not Linux, or a C library without it
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


class WriteBehind:
    """Starts the disk writing a file's bytes soon after they are written.

    Without it the page cache holds a whole output until its fsync, which
    then waits for all of it: the copy and the disk take turns. With it the
    disk writes while the copy goes on, and the fsync waits for the last
    step only. It only *starts* write-out (``sync_file_range`` with
    ``SYNC_FILE_RANGE_WRITE``, which neither waits nor flushes metadata or
    the disk's cache): the caller's ``fsync`` is still what makes the file
    durable, and it reports any error the early write-out met (the kernel
    keeps a file's write-back errors for the next fsync of the file). Where
    ``sync_file_range`` is missing it does nothing.

    :param fd: the file being written, front to back.
    :param offset: how many bytes it holds already.
    :param step: bytes between two starts (:data:`WRITE_BEHIND_STEP`).
    """

    def __init__(self, fd: int, offset: int = 0, step: int | None = None) -> None:
        self._fd = fd
        self._call = _sync_file_range()
        self._started = offset  # everything before this is written out or under way
        self._end = offset
        self._step = WRITE_BEHIND_STEP if step is None else step

    def wrote(self, length: int) -> None:
        """``length`` more bytes were appended to the file."""
        self._end += length
        if self._end - self._started >= self._step and self._call is not None:
            # Advisory: a failure here changes nothing the fsync does not catch.
            self._call(self._fd, self._started, self._end - self._started,
                       _SYNC_FILE_RANGE_WRITE)
            self._started = self._end


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Move a finished, fsynced file into place without replacing anything.

    :raises FileExistsError: ``final`` exists already.
    """
    try:
        os.link(tmp, final)  # fails if final exists: never replaces a file
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        # A file system without hard links: check, then rename.
        if final.exists():
            raise FileExistsError(f"{final} exists") from None
        os.rename(tmp, final)
    else:
        os.unlink(tmp)
    fsync_dir(final.parent)

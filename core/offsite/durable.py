"""Making files durable and publishing them atomically, on local file systems.

Shared by the image writer and the local-folder target: fsync a folder so
a rename in it survives a power cut, and move a finished file into place
without ever replacing an existing one.
"""

from __future__ import annotations

import os
from pathlib import Path


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

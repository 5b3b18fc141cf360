"""Folders on the server: the target folder a URL names, and ``mkdir -p``.

``sftp://user@host/srv/offsite`` is the absolute ``/srv/offsite``;
``sftp://user@host/~/offsite`` is relative to the folder the server starts
the user in (the home folder, or a chroot's start). Either is created, with
its parents, when missing; a file in the way is refused.
"""

from __future__ import annotations

import posixpath
import stat

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from offsite.errors import Fatal


def target_root(sftp: paramiko.SFTPClient, path: str) -> str:
    """The absolute folder the URL path ``path`` names, created if missing.

    :raises Fatal: a relative path, or a file where the folder should be.
    """
    # sftp://host/~/folder: relative to where the server starts us (home).
    if path in ("/~", "~") or path.startswith(("/~/", "~/")):
        path = path.split("~", 1)[1].lstrip("/")
        base = sftp.normalize(".")
        path = posixpath.join(base, path) if path else base
    if not path.startswith("/"):
        raise Fatal(f"'{path}' is not an absolute path",
                    fix="write sftp://user@host/absolute/path or sftp://user@host/~/folder")
    makedirs(sftp, path)
    if not stat.S_ISDIR(sftp.stat(path).st_mode or 0):
        raise Fatal(f"'{path}' is a file where a folder is needed",
                    fix="point the target URL at a folder, or move the file away")
    return path.rstrip("/") or "/"


def makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    """mkdir -p over SFTP: stat down from the top, create what is missing.

    :raises Fatal: a file where a folder is needed.
    :raises OSError: the server refused a folder (permission denied, say).
    """
    if folder in ("", "/"):
        return
    try:
        if stat.S_ISDIR(sftp.stat(folder).st_mode or 0):
            return
        raise Fatal(f"'{folder}' is a file where a folder is needed",
                    fix="move the file away at the target")
    except FileNotFoundError:
        pass
    makedirs(sftp, posixpath.dirname(folder))
    try:
        sftp.mkdir(folder)
    except OSError as refused:
        # Another writer may have made it meanwhile; otherwise the refusal
        # (permission denied, say) is the error, not what a stat says after.
        try:
            made = stat.S_ISDIR(sftp.stat(folder).st_mode or 0)
        except OSError:
            made = False
        if not made:
            raise refused from None


__all__ = ["makedirs", "target_root"]

"""paramiko's and the socket layer's exceptions → offsite's error tree: the one
place that maps them (the ``translate_error`` hook calls :func:`translate`).

SFTP version 3, which OpenSSH speaks, has few status codes: paramiko turns
"no such file" and "permission denied" into ``FileNotFoundError`` and
``PermissionError`` and everything else into an ``OSError`` without an
errno, with the server's text ("Failure"). So:

* a host key paramiko itself rejected: :class:`~offsite.errors.HostKeyRejected`;
* credentials refused: :class:`~offsite.errors.AuthError`, but a connection
  that closed during the login is :class:`~offsite.errors.Transient` (no
  verdict on the credentials, and the server may be restarting);
* ENOENT: :class:`~offsite.errors.NotFound`; EACCES:
  :class:`~offsite.errors.PermissionDenied`; ENOSPC/EDQUOT:
  :class:`~offsite.errors.StorageFull`;
* timeouts, resets, a closed channel, other SSH trouble:
  :class:`~offsite.errors.Transient`; a handshake that cannot succeed (not an
  SSH server, no common algorithm) and any other failure:
  :class:`~offsite.errors.Fatal`.

A full disk arrives as a bare "Failure" like any other: :func:`out_of_space`
asks the server (``statvfs@openssh.com``) whether that is what it meant, for
``put`` to raise :class:`~offsite.errors.StorageFull` itself.
"""

from __future__ import annotations

import errno
import socket

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from offsite.errors import (
    AuthError,
    Fatal,
    HostKeyRejected,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    Transient,
)
from offsite_sftp.hostkeys import fingerprint
from offsite_sftp.wire import MAX_REQUEST


def translate(exc: Exception) -> TargetError | None:
    """What the ``translate_error`` hook returns for ``exc`` (None: unknown)."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyRejected(host=exc.hostname, reason="CHANGED",
                               fingerprint=fingerprint(exc.key))
    if isinstance(exc, paramiko.AuthenticationException):
        if "transport shut down or saw EOF" in str(exc):
            # The connection went during the login: no verdict on the
            # credentials, and worth a retry (the server may be restarting).
            return Transient("the connection closed during authentication")
        return AuthError(str(exc) or "authentication failed")
    if isinstance(exc, FileNotFoundError) or getattr(exc, "errno", None) == errno.ENOENT:
        return NotFound()
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EACCES:
        return PermissionDenied(str(exc.args[-1] if exc.args else exc) or "denied")
    if isinstance(exc, (socket.timeout, TimeoutError, EOFError, ConnectionError)):
        return Transient(f"{type(exc).__name__}: {exc}".rstrip(": "))
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        if "Error reading SSH protocol banner" in text or "Negotiation failed" in text:
            return Fatal(f"SSH handshake failed: {text}",
                         fix="check that the port is an SSH server and that it accepts "
                         "modern algorithms")
        return Transient(f"SSH: {text}")
    if isinstance(exc, OSError) and exc.errno is None and "closed" in str(exc).lower():
        # paramiko's "Socket is closed": the SSH channel went away under us.
        return Transient(f"the SSH connection closed: {exc}")
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(exc.strerror or "no space left on the server")
        if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT):
            return Transient(str(exc))
        return Fatal(f"SFTP: {exc.strerror or exc}")
    return None


def out_of_space(sftp: paramiko.SFTPClient, folder: str) -> bool:
    """Whether the server's file system under ``folder`` is full, by OpenSSH's
    ``statvfs@openssh.com``: SFTP version 3 reports a full disk as a bare
    "Failure", like any other failure. False when the server cannot tell."""
    try:
        kind, msg = sftp._request(CMD_EXTENDED, "statvfs@openssh.com", folder or ".")
        if kind != CMD_EXTENDED_REPLY or msg is None:
            return False
        _bsize, frsize, _blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
    except Exception:  # an old server: no verdict, the failure stands
        return False
    # Less free than one write request: the write that failed did not fit.
    return bool(bavail * frsize < MAX_REQUEST)


__all__ = ["out_of_space", "translate"]

"""smbprotocol's exceptions → offsite's error tree: the one place that maps them.

SMB answers every failure with an NTSTATUS code; smbprotocol raises a
:class:`~smbprotocol.exceptions.SMBResponseException` subclass carrying it
(``exc.status``). A dropped connection, a dead receiving thread or an
answer that never came are plain ``SMBException``\\ s (or ``OSError``\\ s from
the socket) and are worth a retry; everything the server refused on purpose
is not.
"""

from __future__ import annotations

import errno
import socket

from cryptography.exceptions import InvalidTag
from smbprotocol.exceptions import (
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBResponseException,
)

from offsite.errors import (
    AuthError,
    ConnectFailed,
    Fatal,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    Transient,
)

#: The credentials were refused (wrong password, unknown user, locked account …).
AUTH = {
    0xC000006D: "the user name or password is wrong (STATUS_LOGON_FAILURE)",
    0xC000006A: "the password is wrong (STATUS_WRONG_PASSWORD)",
    0xC0000064: "no such user (STATUS_NO_SUCH_USER)",
    0xC000006E: "the account may not log in (STATUS_ACCOUNT_RESTRICTION)",
    0xC000006F: "outside the account's logon hours (STATUS_INVALID_LOGON_HOURS)",
    0xC0000070: "the account may not log in from this machine (STATUS_INVALID_WORKSTATION)",
    0xC0000071: "the password has expired (STATUS_PASSWORD_EXPIRED)",
    0xC0000072: "the account is disabled (STATUS_ACCOUNT_DISABLED)",
    0xC0000224: "the password must be changed (STATUS_PASSWORD_MUST_CHANGE)",
    0xC0000234: "the account is locked out (STATUS_ACCOUNT_LOCKED_OUT)",
}
#: Nothing by that name.
MISSING = {
    0xC0000034: "STATUS_OBJECT_NAME_NOT_FOUND",
    0xC000003A: "STATUS_OBJECT_PATH_NOT_FOUND",
    0xC000000F: "STATUS_NO_SUCH_FILE",
    0xC0000225: "STATUS_NOT_FOUND",
    0xC0000056: "STATUS_DELETE_PENDING",
    0xC00000BA: "a folder, not a file (STATUS_FILE_IS_A_DIRECTORY)",
}
#: Authenticated, but not allowed.
DENIED = {
    0xC0000022: "STATUS_ACCESS_DENIED",
    0xC00000CA: "STATUS_NETWORK_ACCESS_DENIED",
    0xC00000A2: "STATUS_MEDIA_WRITE_PROTECTED",
    0xC0000121: "STATUS_CANNOT_DELETE",
    0xC0000061: "STATUS_PRIVILEGE_NOT_HELD",
}
#: No space, or over quota.
FULL = {
    0xC000007F: "STATUS_DISK_FULL",
    0xC0000044: "STATUS_QUOTA_EXCEEDED",
}
#: May cure itself: the session or connection went, the server is busy.
PASSING = {
    0xC00000C9: "STATUS_NETWORK_NAME_DELETED",
    0xC0000203: "STATUS_USER_SESSION_DELETED",
    0xC00000B5: "STATUS_IO_TIMEOUT",
    0xC0000205: "STATUS_INSUFF_SERVER_RESOURCES",
    0xC000009A: "STATUS_INSUFFICIENT_RESOURCES",
    0xC0000466: "STATUS_SERVER_UNAVAILABLE",
    0xC000020C: "STATUS_CONNECTION_DISCONNECTED",
    0xC000020D: "STATUS_CONNECTION_RESET",
    0xC0000043: "STATUS_SHARING_VIOLATION",
    0xC0000120: "STATUS_CANCELLED",
}
BAD_NETWORK_NAME = 0xC00000CC

SHARE_FIX = "check the share's name in the target URL (smb://host/SHARE/folder)"
READ_ONLY_FIX = ("give the user write access to the share and the folder on the server "
                 "(a share exported 'read only = yes' refuses every write)")


def _status(exc: SMBResponseException) -> int:
    try:
        return int(exc.status)
    except Exception:  # a response too short to carry one
        return 0


INTEGRITY_FIX = ("none needed if a retry succeeds; if it keeps happening, something between "
                 "this machine and the server alters the traffic (a proxy, a faulty network "
                 "card or cable): check the network path")


def translate(exc: Exception) -> TargetError | None:
    """The offsite error for one of smbprotocol's (or the socket's) exceptions, or None."""
    if isinstance(exc, SMBResponseException):
        return _response(exc, _status(exc))
    if isinstance(exc, SMBAuthenticationError):
        return AuthError(str(exc) or "the server refused the log-in")
    if isinstance(exc, SMBConnectionClosed):
        return Transient(f"the SMB connection closed: {exc}")
    if isinstance(exc, InvalidTag) or (isinstance(exc, SMBException)
                                       and "signature could not be verified" in str(exc)):
        # smbprotocol's check of an answer's signature, or of its seal's tag.
        what = "encryption tag" if isinstance(exc, InvalidTag) else "signature"
        return Transient(f"an answer from the server failed its integrity check (its {what} "
                         "does not match): it was damaged or altered on the way",
                         fix=INTEGRITY_FIX)
    if isinstance(exc, SMBException):
        text = str(exc)
        if "encryption is required" in text:
            return Fatal("the server does not offer SMB3 encryption",
                         fix="turn the target option encrypt off, or enable SMB3 encryption on "
                         "the server (smb encrypt = desired)")
        # A timed-out answer, a dead receiving thread, credits that never came.
        return Transient(f"SMB: {text}")
    if isinstance(exc, ValueError) and str(exc).startswith("Failed to connect to"):
        # smbprotocol's TCP connect (the plugin's own connect step ran before it).
        return ConnectFailed(str(exc), address=str(exc).split("'")[1] if "'" in str(exc) else "?")
    if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError, EOFError)):
        return Transient(f"{type(exc).__name__}: {exc}".rstrip(": "))
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(exc.strerror or "no space left on the server")
        if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT, errno.ECONNABORTED):
            return Transient(str(exc))
        if exc.errno in (errno.EBADF, errno.ENOTCONN, errno.ESHUTDOWN):
            # smbprotocol's receiving thread saw the connection end and closed
            # the socket while this thread was sending on it.
            return Transient(f"the SMB connection closed: {exc.strerror or exc}")
        return Fatal(f"SMB: {exc.strerror or exc}")
    return None


def _response(exc: SMBResponseException, status: int) -> TargetError:
    name = f"0x{status:08X}"
    if status in AUTH:
        return AuthError(AUTH[status])
    if status == BAD_NETWORK_NAME:
        return NotFound("no such share on the server (STATUS_BAD_NETWORK_NAME)", fix=SHARE_FIX)
    if status in MISSING:
        return NotFound(MISSING[status])
    if status in DENIED:
        return PermissionDenied(DENIED[status])
    if status in FULL:
        return StorageFull(f"the server says {FULL[status]}")
    if status in PASSING:
        return Transient(f"the server says {PASSING[status]}")
    return Fatal(f"the server answered {name}: {exc.message}")


__all__ = ["INTEGRITY_FIX", "READ_ONLY_FIX", "SHARE_FIX", "translate"]

"""The one place where ftplib's and the socket layer's exceptions become the
core's error tree (the ``translate_error`` hook calls :func:`translate`).

FTP says what went wrong in a three-digit reply code and a line of free
text. The code alone is too coarse: 550 is "no such file" on one server and
"permission denied" on the next, and pyftpdlib answers an ``MLSD`` of a
missing folder with 501. So the text decides where it is clear (full disk,
missing file, refused access), then the code:

* 530: the credentials were refused (:class:`~offsite.errors.AuthError`);
* 552, 452, or a text about space or quota: :class:`~offsite.errors.StorageFull`;
* 550/553/501 about a missing file: :class:`~offsite.errors.NotFound`;
  any other 550/553: :class:`~offsite.errors.PermissionDenied`;
* 421 (the server closes the session) and every other 4xx, timeouts, resets,
  a control connection that closed: :class:`~offsite.errors.Transient`;
* other 5xx: :class:`~offsite.errors.Fatal`, naming the server's answer.
"""

from __future__ import annotations

import ftplib
import re
import socket
import ssl

from offsite.errors import (
    AuthError,
    Fatal,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    TLSFailed,
    Transient,
)

#: Server texts that mean no space is left (ENOSPC, EDQUOT, RFC 959's 452/552 wording).
_FULL = re.compile(r"no space|disk full|quota|insufficient storage|storage (space )?exceeded|"
                   r"exceeded storage|file too large", re.I)
#: Texts that mean the file or folder is not there.
_MISSING = re.compile(r"no such|not found|does not exist|doesn't exist|cannot find|"
                      r"can't find|not exist|unknown file", re.I)
#: Texts that mean the server refuses this user the operation.
_DENIED = re.compile(r"permission|denied|privilege|not allowed|forbidden|access|"
                     r"read-only|read only", re.I)
#: Texts that mean the server wants TLS before it goes on.
_TLS_WANTED = re.compile(r"SSL|TLS", re.I)


def reply_code(exc: ftplib.Error) -> str:
    """The three-digit reply code at the start of an ftplib error ('' if none)."""
    text = str(exc)
    return text[:3] if text[:3].isdigit() else ""


def reply_text(exc: ftplib.Error) -> str:
    """The server's words after the reply code, for a message."""
    text = str(exc).strip()
    return text[4:].strip() if text[:3].isdigit() else text


def is_missing(exc: ftplib.Error) -> bool:
    """Whether a refusal says that the file or folder is not there."""
    return reply_code(exc) in ("550", "553", "501", "450") and bool(_MISSING.search(str(exc)))


def is_denied(exc: ftplib.Error) -> bool:
    """Whether a refusal says that the user may not do this."""
    return bool(_DENIED.search(reply_text(exc))) and not is_missing(exc)


def translate_reply(exc: ftplib.Error) -> TargetError:
    """An FTP error reply as a :class:`TargetError` (see the module doc)."""
    code, text = reply_code(exc), reply_text(exc)
    said = f"the FTP server answered {code} {text}".rstrip()
    if code == "530":
        return AuthError(said)
    if code in ("552", "452") or _FULL.search(text):
        return StorageFull(said)
    if isinstance(exc, ftplib.error_temp) or code.startswith("4"):
        return Transient(said)
    if code in ("550", "553", "501", "450") and _MISSING.search(text):
        return NotFound(said)
    if code in ("550", "553", "532") and _DENIED.search(text):
        return PermissionDenied(said)
    if code == "550" and _TLS_WANTED.search(text):
        return Fatal(said, fix="the server wants TLS: use an ftps:// URL")
    if code in ("550", "553"):
        return PermissionDenied(said)
    if isinstance(exc, (ftplib.error_reply, ftplib.error_proto)):
        # An answer out of step with the request: the session is confused,
        # a new one is not.
        return Transient(f"unexpected FTP answer: {str(exc)[:200]}")
    return Fatal(said, fix="see what the server said; the server or the account may lack "
                 "a feature offsite needs (binary mode, SIZE, REST, RNFR/RNTO)")


def translate(exc: Exception) -> TargetError | None:
    """What the ``translate_error`` hook returns for ``exc`` (None: unknown)."""
    if isinstance(exc, ftplib.Error):
        return translate_reply(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSFailed(f"certificate verify failed: {exc.verify_message or exc.reason}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Transient(f"the FTP server did not answer in time ({exc or 'timeout'})")
    if isinstance(exc, EOFError):
        # ftplib's getline(): the server closed the control connection.
        return Transient("the FTP server closed the connection")
    if isinstance(exc, ssl.SSLError):
        return Transient(f"TLS: {exc.reason or exc}")
    if isinstance(exc, OSError):
        return Transient(f"the connection failed: {exc.strerror or exc}")
    if isinstance(exc, ValueError) and "newline" in str(exc):
        # ftplib refuses a command with CR or LF in it (the core refuses such
        # names first; this is the last line of defence).
        return Fatal(f"a name with a line break cannot be sent over FTP: {exc}")
    return None


__all__ = ["is_denied", "is_missing", "reply_code", "reply_text", "translate", "translate_reply"]

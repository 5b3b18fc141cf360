"""The one place where HTTP, requests and webdavclient3 failures become offsite errors.

HTTP status codes (RFC 9110, RFC 4918):

* 401 → :class:`~offsite.errors.AuthError` (the credentials were refused);
* 403 → :class:`~offsite.errors.PermissionDenied` (logged in, not allowed);
* 404, 409 (a parent folder is missing), 410 → :class:`~offsite.errors.NotFound`;
* 507 Insufficient Storage (and 413 with a quota) → :class:`~offsite.errors.StorageFull`;
* 408, 423 (locked by another client), 429, and every 5xx but 501/505/507
  → :class:`~offsite.errors.Transient`;
* the rest → :class:`~offsite.errors.Fatal`, naming the status.

Connection failures (refused, reset, a timeout, a body cut short) are
Transient; a certificate that is not trusted is
:class:`~offsite.errors.TLSFailed`. A server that answers with an HTML
page (a proxy's, a login portal's) is named by the page's title, never
by a parser's traceback; an answer that is not WebDAV XML is Fatal with
a hint to check the URL.
"""

from __future__ import annotations

import socket

import requests
import urllib3.exceptions
from webdav3 import exceptions as dav

from offsite.errors import (
    AuthError,
    ConnectFailed,
    Fatal,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    TLSFailed,
    Transient,
)
from offsite_webdav.propfind import NotWebDAV, describe_body

#: What no retry can cure: not implemented, HTTP version not supported.
_FATAL_5XX = {501, 505}
_TRANSIENT = {408, 423, 425, 429}


class HTTPStatus(Exception):
    """An HTTP answer the plugin did not want, with what came with it.

    :param status: the status code.
    :param what: the request, e.g. ``PUT /backups/x.ofi``.
    :param body: the start of the answer's body (an error page).
    """

    def __init__(self, status: int, what: str, body: bytes = b"", content_type: str = "",
                 reason: str = "") -> None:
        self.status, self.what, self.reason = status, what, reason
        self.body, self.content_type = body, content_type
        super().__init__(f"HTTP {status} {reason}".rstrip() + f" for {what}")

    @property
    def page(self) -> str:
        """The error page, described in a few words ('' when it is empty)."""
        return describe_body(self.body, self.content_type) if self.body.strip() else ""


def from_status(status: int, detail: str) -> TargetError:
    """The error for an HTTP status code, with ``detail`` as its message."""
    if status == 401:
        return AuthError(detail, fix="check the user name in the URL and the stored password "
                         "(offsite credentials set {name}), and the target option auth "
                         "(basic or digest)")
    if status == 403:
        return PermissionDenied(detail, fix="give the user write access to the folder on the "
                                "WebDAV server, or choose a folder it may write")
    if status in (404, 409, 410):
        return NotFound(detail)
    if status == 507 or (status == 413 and "quota" in detail.lower()):
        return StorageFull(detail)
    if status in _TRANSIENT or (status >= 500 and status not in _FATAL_5XX):
        return Transient(detail)
    return Fatal(detail, fix="check that the URL points to a folder of a WebDAV server")


def _detail(status: int, text: str, page: str) -> str:
    return f"HTTP {status} {text}" + (f": the server sent {page}" if page else "")


def translate(exc: BaseException) -> TargetError | None:
    """``exc`` as an offsite error, or None for what this plugin does not know."""
    if isinstance(exc, HTTPStatus):
        return from_status(exc.status, _detail(exc.status, f"{exc.reason} for {exc.what}".strip(),
                                               exc.page))
    if isinstance(exc, NotWebDAV):
        return Fatal(str(exc), fix="check that the URL points to a folder of a WebDAV server "
                     "(not a web page, a proxy's login or a server without WebDAV)")
    if isinstance(exc, dav.WebDavException):
        return _from_webdav3(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSFailed(_reason(exc), host=_host(exc))
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ConnectionError)) \
            and isinstance(_root_cause(exc), (ConnectionRefusedError, socket.gaierror)):
        return ConnectFailed(_reason(exc), address=_host(exc))
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError,
                        urllib3.exceptions.HTTPError, ConnectionError, TimeoutError,
                        socket.timeout)):
        return Transient(f"the connection failed: {_reason(exc)}")
    if isinstance(exc, requests.exceptions.RequestException):
        return Fatal(f"HTTP request failed: {_reason(exc)}")
    return None


def _from_webdav3(exc: dav.WebDavException) -> TargetError:
    # execute_request raises these for status codes it knows by name.
    if isinstance(exc, dav.RemoteResourceNotFound | dav.RemoteParentNotFound):
        return NotFound()
    if isinstance(exc, dav.NotEnoughSpace):
        return StorageFull("HTTP 507 Insufficient Storage")
    if isinstance(exc, dav.ResourceLocked):
        return Transient("HTTP 423 Locked: another client holds a lock on it")
    if isinstance(exc, dav.MethodNotSupported):
        return Fatal(f"HTTP 405 Method Not Allowed: the server refuses {exc.name}",
                     fix="check that the URL points to a folder of a WebDAV server")
    if isinstance(exc, dav.ResponseErrorCode):
        body = exc.message if isinstance(exc.message, bytes) else str(exc.message).encode()
        page = describe_body(body) if body.strip() else ""
        return from_status(int(exc.code), _detail(int(exc.code), "", page))
    if isinstance(exc, dav.NoConnection | dav.ConnectionException):
        return Transient(f"the connection failed: {exc}")
    return Fatal(f"WebDAV: {type(exc).__name__}: {exc}")


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        reason = getattr(exc, "reason", None)
        if inner is None and isinstance(reason, BaseException):
            inner = reason
        if inner is None:
            break
        exc = inner
    return exc


def _reason(exc: BaseException) -> str:
    """The innermost cause in words: 'Connection reset by peer', not three
    layers of urllib3's reprs."""
    cause = _root_cause(exc)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    text = str(cause) or type(cause).__name__
    return text.split(": ", 1)[-1] if text.startswith("<") else text


def _host(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or ""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] if parts.netloc else "the server"


__all__ = ["HTTPStatus", "from_status", "translate"]

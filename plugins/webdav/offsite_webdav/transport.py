"""The WebDAV transport: the hook implementations (see :mod:`offsite.hookspecs`).

webdavclient3 holds the connection settings (server URL, timeout, the CA
in ``client.verify``, the only place it takes one) and its requests
session, and sends the small requests through ``execute_request``:
PROPFIND, MKCOL, MOVE, DELETE and the streamed GET. The upload is the
one place that goes to the session directly: webdavclient3's
``upload_iter`` is broken (it hands a callable to requests), and
``upload_to`` wants a file it can ``fstat`` for the length, not the
source's stream, read chunk by chunk with progress, the bandwidth limit
and Ctrl-C. See :class:`_Body`.

Paths: every request names the resource by its full path from the
server's root, percent-encoded here (:func:`~offsite_webdav.propfind.quote_path`),
with the client's own root left empty, because webdavclient3 quotes a
root itself and collapses ``/./`` and ``/.../`` in it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import socket
import ssl
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import certifi
import requests
import urllib3
from webdav3 import exceptions as dav
from webdav3.client import Client

from offsite import hookimpl, paths
from offsite.checks import Steps, open_tcp
from offsite.errors import (
    AuthError,
    Fatal,
    NotFound,
    TargetError,
    TLSFailed,
    Transient,
)
from offsite.transport import (
    CHUNK_SIZE,
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    SourceReader,
    Transfer,
    owned_partial,
    pump,
)
from offsite_webdav import errors
from offsite_webdav.errors import HTTPStatus
from offsite_webdav.propfind import (
    PROPFIND_BODY,
    Entry,
    NotWebDAV,
    describe_body,
    parse_multistatus,
    quote_path,
)

log = logging.getLogger("offsite_webdav")

DEFAULT_TIMEOUT = 30.0
#: ``Server`` headers of wsgidav's usual HTTP servers (see :func:`_destination`).
WSGIDAV_SERVERS = ("wsgidav", "cheroot")


@attrs.define
class DavConnection:
    """One WebDAV target: the client, its folder, the folders known to exist."""

    endpoint: Endpoint = attrs.field(repr=lambda e: e.url)
    client: Client = attrs.field(repr=False)
    #: The target folder, from the server's root, normalised ("" for the root).
    base: str
    timeout: float
    #: Folders (absolute paths) seen or made during one makedirs (a put
    #: starts it afresh).
    folders: set[str] = attrs.field(factory=set, repr=False)
    #: The server's ``Server`` header, for the quirks of known servers.
    server: str = ""

    def remote(self, path: str = "") -> str:
        """The absolute, decoded server path of ``path`` (relative to the folder)."""
        return "/" + "/".join(p for p in (self.base, path) if p)

    def url(self, absolute: str) -> str:
        return f"{self.client.webdav.hostname}{quote_path(absolute)}"

    def relative(self, absolute: str) -> str | None:
        """``absolute`` relative to the target folder, or None when outside it."""
        prefix = self.remote().rstrip("/") + "/"
        return absolute[len(prefix):] if absolute.startswith(prefix) else None


def _options(endpoint: Endpoint) -> tuple[float, str, str | None, bool]:
    """(timeout, auth, ca_file, tls_verify) from the target options.

    :raises Fatal: a value that makes no sense, naming the option.
    """
    options = endpoint.options
    raw = options.get("timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(raw)
    except (TypeError, ValueError):
        timeout = 0.0
    if not timeout > 0:
        raise Fatal(f"timeout must be a positive number of seconds, not {raw!r}",
                    fix="set the target option timeout to e.g. 30")
    auth = str(options.get("auth", "basic")).lower()
    if auth not in ("basic", "digest"):
        raise Fatal(f"auth must be \"basic\" or \"digest\", not {options.get('auth')!r}",
                    fix="set the target option auth to basic or digest")
    ca_file = options.get("ca_file")
    verify = options.get("tls_verify", True)
    if not isinstance(verify, bool):
        raise Fatal(f"tls_verify must be true or false, not {verify!r}",
                    fix="remove the option tls_verify (certificates are then verified)")
    if (ca_file or not verify) and endpoint.scheme != "webdavs":
        name = "ca_file" if ca_file else "tls_verify"
        raise Fatal(f"the option {name} applies to webdavs:// only",
                    fix="write the URL as webdavs:// for a server with TLS, or remove the option")
    return timeout, auth, os.path.expanduser(str(ca_file)) if ca_file else None, verify


def _trusted(ca_file: str | None) -> str:
    """The CA bundle the requests will be verified against, so that the
    ``tls`` step trusts exactly what the transfers will: ``ca_file``, else
    what requests itself would read (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
    certifi's bundle)."""
    return (ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or certifi.where())


def _tls_step(steps: Steps, sock: socket.socket, host: str, trust: str, verify: bool) -> None:
    """The ``tls`` step: a handshake on its own connection, to say what failed."""
    with steps.step("tls", host if verify else f"{host} (certificate NOT verified)"):
        try:
            try:
                context = ssl.create_default_context(cafile=trust if verify else None)
            except (OSError, ssl.SSLError) as exc:
                raise TLSFailed(f"cannot load the CA file {trust}: {exc}", host=host) from None
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            try:
                context.wrap_socket(sock, server_hostname=host).close()
            except ssl.SSLCertVerificationError as exc:
                raise TLSFailed(f"certificate verify failed: {exc.verify_message or exc.reason}",
                                host=host) from None
            except ssl.SSLError as exc:
                # WRONG_VERSION_NUMBER: plain HTTP answered the handshake.
                raise TLSFailed(f"{exc.reason or exc}: the server does not speak TLS on this "
                                "port", host=host,
                                fix="write the URL as webdav:// for a server without TLS, or "
                                "give the port of its HTTPS service") from None
            except OSError as exc:
                raise TLSFailed(f"the connection broke during the handshake "
                                f"({exc.strerror or exc})", host=host) from None
        finally:
            sock.close()


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` completes a TLS handshake (certificate unchecked:
    this only tells an HTTPS port from a broken one)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False


# -- requests ---------------------------------------------------------------


def _call(conn: DavConnection, action: str, absolute: str, *, headers: Sequence[str] = (),
          data: Any = None) -> requests.Response:
    """One request through webdavclient3 (``action``: its name for the method).

    It raises its own exceptions for 4xx and 5xx answers (errors.py
    translates them); the answer streams, so the caller closes it.
    """
    response: requests.Response = conn.client.execute_request(
        action, quote_path(absolute), data=data, headers_ext=list(headers))
    # Known from the first answer (connect's), for the quirks a put must
    # know of before it sends anything.
    conn.server = response.headers.get("Server", conn.server)
    return response


def propfind(conn: DavConnection, absolute: str, depth: int) -> list[Entry] | None:
    """The entries PROPFIND reports at ``absolute`` (None: nothing is there)."""
    try:
        response = _call(conn, "info", absolute, data=PROPFIND_BODY,
                         headers=[f"Depth: {depth}", "Content-Type: application/xml"])
    except dav.RemoteResourceNotFound:
        return None
    with contextlib.closing(response):
        body = response.content
        kind = response.headers.get("Content-Type", "")
        if response.status_code != 207:
            # A web server without WebDAV answers 200 with a page.
            raise NotWebDAV(f"the server answered PROPFIND with HTTP {response.status_code} "
                            f"and {describe_body(body, kind)}, not WebDAV XML")
    return parse_multistatus(body, kind)


def stat(conn: DavConnection, absolute: str) -> Entry | None:
    """What is at ``absolute``: a file or folder entry, or None."""
    entries = propfind(conn, absolute, 0)
    if not entries:
        return None
    return next((e for e in entries if e.path == absolute.rstrip("/") or
                 (absolute == "/" and e.path == "/")), entries[0])


def makedirs(conn: DavConnection, folder: str) -> None:
    """MKCOL ``folder`` (absolute) and its missing parents; a file in the way is Fatal."""
    if folder in conn.folders or folder == "/":
        return
    found = stat(conn, folder)
    if found is None:
        makedirs(conn, posixpath.dirname(folder))
        try:
            _call(conn, "mkdir", folder + "/").close()
        except (dav.MethodNotSupported, dav.ResponseErrorCode):
            # 405: something is there now (another writer made it): see
            # what. wsgidav answers a MKCOL that races another for the same
            # folder with a 500 (its FileExistsError), so any refusal is
            # looked at before it is believed.
            found = stat(conn, folder)
            if found is None:
                raise
    if found is not None and not found.folder:
        raise Fatal(f"'{folder}' is a file where a folder is needed",
                    fix="point the target URL at a folder, or move the file away on the server")
    conn.folders.add(folder)


def _remote_file(conn: DavConnection, path: str, entry: Entry) -> RemoteFile:
    return RemoteFile(path, entry.size, entry.mtime,
                      f"etag:{entry.etag}" if entry.etag else None)


class _Body:
    """The body of an upload: the source's chunks, read as requests sends them.

    requests iterates it in the calling thread (the engine's): each chunk is
    read through ``transfer.open`` (what the bandwidth limit throttles) and
    handed to ``sendall``; when requests asks for the next one, the last is
    in the socket, and its progress is reported (a cancel raises there, and
    ends the request). This is :func:`~offsite.transport.pump` turned
    inside out for a library that pulls its body, with nothing in between:
    no thread and no queue (a thread and a queue of 1 MiB chunks cost a
    third of the client's CPU, measured).

    It has a length, so requests sends a ``Content-Length`` and streams the
    chunks (no ``Transfer-Encoding: chunked``, which some servers refuse for
    PUT). It can be read once only: an authentication handler that resends
    a request (digest's answer to a stale nonce) gets an error, not half a
    body.
    """

    def __init__(self, reader: SourceReader, transfer: Transfer) -> None:
        self._reader = reader
        self._transfer = transfer
        self._read = False

    def __len__(self) -> int:
        return self._transfer.size

    def __iter__(self) -> Iterator[bytes]:
        if self._read:
            raise Transient("the upload's body cannot be sent twice (the server asked to "
                            "authenticate again mid-way)")
        self._read = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        reader, transfer = self._reader, self._transfer
        done = reader.position
        transfer.progress(done)
        while True:
            chunk = reader.read(CHUNK_SIZE)
            if not chunk:  # the reader raises SourceError for a short source
                return
            yield chunk
            done += len(chunk)
            transfer.progress(done)


def _send(conn: DavConnection, absolute: str, transfer: Transfer) -> None:
    """PUT the source to ``absolute`` with a Content-Length, in this thread.

    The body is a :class:`_Body`: requests pulls the chunks from the
    source as it sends them, reporting progress, so the bandwidth limit
    and a cancel act as for every other plugin. A server that answers
    before the body is all sent (a refusal) stops the sending: urllib3
    then reads its answer, which is raised below.
    """
    client = conn.client
    if isinstance(client.session.auth, requests.auth.HTTPDigestAuth):
        # Digest keeps its nonce per thread: learn it here with a body-less
        # request, or the PUT is answered 401 and its body, already
        # streamed, cannot be sent again.
        client.session.request("OPTIONS", conn.url(posixpath.dirname(absolute)),
                               timeout=conn.timeout, verify=client.verify).close()
    with transfer.open(0) as reader:
        body: _Body | bytes = _Body(reader, transfer)
        if transfer.size == 0:
            # requests sends an empty *iterable* body chunked: send b"" instead.
            pump(reader, lambda chunk: None, transfer)
            body = b""
        # Through the session, not webdavclient3: see the module's docstring.
        response = client.session.put(
            conn.url(absolute), data=body, timeout=conn.timeout, verify=client.verify,
            headers={"Content-Type": "application/octet-stream"})
    with contextlib.closing(response):
        if response.status_code not in (200, 201, 204):
            raise HTTPStatus(response.status_code, f"PUT {absolute}", response.content[:4096],
                             response.headers.get("Content-Type", ""), response.reason or "")


class _Stream:
    """A GET's body as a :class:`~offsite.transport.Readable` (urllib3's
    stream: nothing is held but what it reads)."""

    def __init__(self, response: requests.Response, skip: int = 0) -> None:
        self._response = response
        while skip > 0:  # the server ignored the Range header: drop what came before
            got = self._response.raw.read(min(skip, CHUNK_SIZE))
            if not got:
                break
            skip -= len(got)

    def read(self, size: int = -1, /) -> bytes:
        data: bytes = self._response.raw.read(None if size is None or size < 0 else size)
        return data

    def close(self) -> None:
        self._response.close()


class _Empty:
    def read(self, size: int = -1, /) -> bytes:
        return b""

    def close(self) -> None:
        pass


class WebdavTransport:
    """The ``webdav`` and ``webdavs`` schemes' transport (see :mod:`offsite.hookspecs`)."""

    @hookimpl
    def options(self) -> Mapping[str, str]:
        return {
            "ca_file": "the CA that signed the server's certificate (webdavs; default: "
                       "the system's CAs)",
            "auth": "HTTP authentication: basic (the default) or digest",
            "timeout": f"seconds to wait for the server (default {DEFAULT_TIMEOUT:.0f})",
            "tls_verify": "false turns certificate verification off (webdavs; insecure, "
                          "logged as a warning on every connect)",
        }

    @hookimpl
    def capabilities(self) -> Mapping[str, bool]:
        # WebDAV has no standard partial PUT: an interrupted upload starts again.
        return {"resume": False}

    # -- connection --------------------------------------------------------------

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> DavConnection:
        if not endpoint.host:
            raise Fatal("a WebDAV URL needs a host", fix="write it as webdav://user@host/folder")
        tls = endpoint.scheme == "webdavs"
        timeout, auth, ca_file, verify = _options(endpoint)
        host, port = endpoint.host, endpoint.port or (443 if tls else 80)
        trust = _trusted(ca_file)
        sock = open_tcp(steps, host, port, timeout)
        if tls:
            _tls_step(steps, sock, host, trust, verify)
        else:
            sock.close()
        if not verify:
            log.warning("%s: TLS certificate verification is OFF (tls_verify = false): anyone "
                        "on the way to %s can read and change the backups", endpoint.label,
                        host)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        client = Client({"webdav_hostname": f"{'https' if tls else 'http'}://{netloc}",
                         "webdav_timeout": timeout})
        client.verify = trust if verify else False  # the only place webdavclient3 takes a CA
        password = endpoint.credentials.get("password", "")
        if endpoint.username:
            client.session.auth = (requests.auth.HTTPDigestAuth(endpoint.username, password)
                                   if auth == "digest" else
                                   requests.auth.HTTPBasicAuth(endpoint.username, password))
        if not verify:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        conn = DavConnection(endpoint, client, paths.normalise(endpoint.path), timeout)
        try:
            with steps.step("auth", endpoint.username or "(no user name)"):
                self._login(conn, tls, host, port, bool(password))
            with steps.step("folder", conn.remote()):
                makedirs(conn, conn.remote())
        except BaseException:
            client.session.close()
            raise
        return conn

    @staticmethod
    def _login(conn: DavConnection, tls: bool, host: str, port: int, password: bool) -> None:
        """Ask for the target folder: 401 is the credentials; 403 and 404
        came after them (the folder step sorts those out)."""
        try:
            propfind(conn, conn.remote(), 0)
        except requests.ConnectionError:
            if not tls and _speaks_tls(host, port, min(conn.timeout, 5.0)):
                raise Fatal(f"the server at {host}:{port} speaks HTTPS (TLS), not plain HTTP",
                            fix="write the URL as webdavs://") from None
            raise
        except dav.ResponseErrorCode as exc:
            if exc.code == 401:
                raise AuthError("the server refused the user name or password (HTTP 401)"
                                if password else "the server wants a password (HTTP 401) and "
                                "none is stored") from None
            if exc.code != 403:
                raise
        except NotWebDAV:
            pass  # a folder the server shows as a web page: the folder step says so

    @hookimpl
    def check(self, conn: DavConnection, steps: Steps) -> bool:
        # The core's probe then writes (PUT, MOVE), lists, reads and deletes.
        with steps.step("dav", "OPTIONS: the server speaks WebDAV"):
            response = _call(conn, "options", conn.remote() + "/")
            with contextlib.closing(response):
                classes = response.headers.get("DAV", "")
            if "1" not in classes.replace(" ", "").split(","):
                raise Fatal("the server does not announce WebDAV (no DAV header in its answer "
                            "to OPTIONS)", fix="check that the URL points to a WebDAV folder")
        return True

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        return errors.translate(exc)

    # -- transfer -------------------------------------------------------------------

    @hookimpl
    def put(self, conn: DavConnection, path: str, transfer: Transfer) -> RemoteFile:
        final = conn.remote(path)
        partial_rel = paths.partial_path(path)
        partial = conn.remote(partial_rel)
        # First: a name the server cannot move into place is refused before
        # any folder is made or byte sent.
        destination = _destination(conn, final)
        # Asked afresh for every put (one PROPFIND): a folder removed on the
        # server since the last put is made again, not a 409 for the engine.
        conn.folders.clear()
        makedirs(conn, posixpath.dirname(final))
        # WebDAV has no standard partial PUT: an upload always starts at 0
        # (the capabilities hook says so, and the engine tells the operator).
        # The token still names the partial file, for discard to find it.
        transfer.save_partial(partial_rel, 0)
        _send(conn, partial, transfer)
        held = stat(conn, partial)
        if held is None or held.size != transfer.size:
            # Trust only what the server holds: never move a short file into place.
            raise Transient(f"the server holds {held.size if held else 'no'} bytes of the "
                            f"{transfer.size} sent to '{partial_rel}'")
        _call(conn, "move", partial, headers=[f"Destination: {destination}",
                                              "Overwrite: T"]).close()
        placed = stat(conn, final)
        if placed is None or placed.folder:
            raise Transient(f"'{path}' is not there after the MOVE into place")
        return _remote_file(conn, path, placed)

    @hookimpl
    def discard(self, conn: DavConnection, path: str, resume: ResumeToken) -> bool:
        partial_rel = owned_partial(path, resume)
        if partial_rel is not None:  # never anything but our own partial file
            with contextlib.suppress(NotFound):
                self.delete(conn, partial_rel)
        return True

    @hookimpl
    def get(self, conn: DavConnection, path: str, offset: int) -> Readable:
        # identity: a compressed answer would be decompressed by nobody.
        headers = ["Accept-Encoding: identity"]
        if offset:
            headers.append(f"Range: bytes={offset}-")
        try:
            response = _call(conn, "download", conn.remote(path), headers=headers)
        except dav.ResponseErrorCode as exc:
            if exc.code == 416:  # Range Not Satisfiable: at or past the end
                return _Empty()
            raise
        if response.status_code == 206:
            return _Stream(response)
        if response.status_code == 200:
            return _Stream(response, skip=offset)
        with contextlib.closing(response):
            raise HTTPStatus(response.status_code, f"GET {conn.remote(path)}",
                             response.content[:4096], response.headers.get("Content-Type", ""),
                             response.reason or "")

    # -- listing ---------------------------------------------------------------------

    @hookimpl
    def list(self, conn: DavConnection, folder: str) -> Sequence[RemoteFile]:
        # Depth 1, folder by folder: many servers refuse Depth: infinity.
        start = conn.remote(folder)
        found: list[RemoteFile] = []
        pending = [start]
        while pending:
            current = pending.pop()
            entries = propfind(conn, current, 1)
            if entries is None:
                continue  # missing (the start), or removed while we walked
            for entry in entries:
                if entry.path == current:
                    continue  # the folder itself
                rel = conn.relative(entry.path)
                if rel is None or not rel:
                    continue
                if entry.folder:
                    pending.append(entry.path)
                else:
                    found.append(_remote_file(conn, paths.normalise(rel), entry))
        return found

    @hookimpl
    def delete(self, conn: DavConnection, path: str) -> bool:
        absolute = conn.remote(path)
        entry = stat(conn, absolute)
        if entry is None:
            raise NotFound()
        if entry.folder:
            # DELETE on a collection removes all it holds: never.
            raise NotFound("a folder, not a file")
        _call(conn, "clean", absolute).close()
        return True

    @hookimpl
    def close(self, conn: DavConnection) -> bool:
        conn.client.session.close()
        return True


def _destination(conn: DavConnection, absolute: str) -> str:
    """The Destination header of a MOVE to ``absolute``.

    wsgidav (4.x) percent-decodes the header *before* it parses it as a URL,
    so an encoded ``;`` in the last name starts URL parameters (the file
    would land under the name cut there) and an encoded ``?`` a query.
    A ``/`` at the end keeps the last name whole there (wsgidav drops it
    again when it normalises the path); a ``?`` cannot be saved, and is
    refused before anything moves. wsgidav sends no header of its own: it
    is known by its usual HTTP server, cheroot (``Server: Cheroot/…``).
    """
    url = conn.url(absolute)
    if not any(name in conn.server.lower() for name in WSGIDAV_SERVERS):
        return url
    if "?" in absolute:
        raise Fatal(f"wsgidav cannot move a file to a name with '?' ({absolute!r}): it "
                    "reads the Destination header decoded", fix="rename the file without '?', "
                    "or use another WebDAV server")
    return url + "/" if ";" in posixpath.basename(absolute) else url


__all__ = ["DavConnection", "WebdavTransport", "makedirs", "propfind", "stat"]

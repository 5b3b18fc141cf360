"""The ``ftp`` and ``ftps`` transport: the hook implementations.

One control connection per :class:`FtpConnection`, in binary mode (``TYPE
I``) for its whole life, with absolute paths in every command (the target
folder joined with the path the core gives), so no command depends on a
current folder. Data connections: :mod:`offsite_ftp.datachannel`;
listings: :mod:`offsite_ftp.listing`; errors: :mod:`offsite_ftp.errors`.
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import posixpath
import socket
import ssl
import time
from collections.abc import Mapping, Sequence

import attrs

from offsite import hookimpl, paths
from offsite.checks import Steps, open_tcp
from offsite.errors import AuthError, Fatal, NotFound, TargetError, TLSFailed, Transient
from offsite.transport import (
    CHUNK_SIZE,
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    Transfer,
    owned_partial,
)
from offsite_ftp import errors
from offsite_ftp.datachannel import Download, Empty, read_lines, send_segment
from offsite_ftp.listing import Entry, parse_list_line, parse_mlsd_line, parse_mlst_reply

log = logging.getLogger(__name__)

DEFAULT_PORT = 21
DEFAULT_TIMEOUT = 30.0
#: The first segment of an upload (see :mod:`offsite_ftp.datachannel`); later
#: ones last about :data:`SEGMENT_SECONDS` at the rate measured, within bounds.
SEGMENT_MIN, SEGMENT_MAX = 4 << 20, 1 << 30
SEGMENT_SECONDS = 5.0

OPTIONS = {
    "passive": "passive mode: the client opens the data connections (default true; "
               "false: active mode, the server connects back to this machine)",
    "ca_file": "the CA certificate(s) that signed an FTPS server's certificate "
               "(default: the system's CAs)",
    "timeout": "seconds to wait for the server on any connection (default 30)",
    "tls_verify": "check the FTPS server's certificate and host name (default true; "
                  "false is insecure and logged as a warning on every connect)",
    "allow_plaintext_password": "send the password over ftp:// even though the server "
                                "offers TLS (default false: such a target is refused; use "
                                "ftps:// instead)",
}


@attrs.frozen
class FtpOptions:
    """The target's ``[job.target.options]``, checked."""

    passive: bool = True
    ca_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    tls_verify: bool = True
    allow_plaintext_password: bool = False

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint) -> FtpOptions:
        """:raises Fatal: an option has a value of the wrong kind."""
        given = endpoint.options

        def flag(name: str, default: bool) -> bool:
            value = given.get(name, default)
            if not isinstance(value, bool):
                raise Fatal(f"option {name} must be true or false, not {value!r}",
                            fix=f"write {name} = true or {name} = false")
            return value

        timeout = given.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise Fatal(f"option timeout must be a positive number of seconds, not {timeout!r}",
                        fix="write e.g. timeout = 30")
        ca_file = given.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise Fatal(f"option ca_file must be a path, not {ca_file!r}",
                        fix='write e.g. ca_file = "/etc/offsite/ftp-ca.pem"')
        return cls(flag("passive", True), ca_file, float(timeout), flag("tls_verify", True),
                   flag("allow_plaintext_password", False))


@attrs.define
class FtpConnection:
    """An open FTP session: the logged-in ftplib client and the target folder."""

    endpoint: Endpoint = attrs.field(repr=lambda e: e.url)
    ftp: ftplib.FTP = attrs.field(repr=False)
    #: The target folder on the server, absolute.
    root: str
    tls: bool
    #: What the server's FEAT lists (upper case, one feature a line).
    features: frozenset[str] = attrs.field(repr=False)
    #: The server answers MLSD and MLST; else listings come from LIST.
    mlsd: bool = True
    #: Folders known to exist (absolute), so a put into one costs no round trip.
    folders: set[str] = attrs.field(factory=set, repr=False)
    #: The bytes an upload's first segment carries (see SEGMENT_*).
    segment_min: int = SEGMENT_MIN

    def remote(self, path: str) -> str:
        return posixpath.join(self.root, path) if path else self.root


def tls_context(options: FtpOptions, label: str) -> ssl.SSLContext:
    """The context both the control and the data connections are verified with.

    :raises TLSFailed: the CA file cannot be read.
    """
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TLSFailed(f"cannot load the CA file {options.ca_file}: {exc}",
                        fix="check the path in the ca_file option") from None
    if not options.tls_verify:
        log.warning("target %s: tls_verify = false: the FTPS server's certificate is NOT "
                    "checked; anyone on the way can pose as the server and read the password "
                    "and the backups", label)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _adopt(ftp: ftplib.FTP, sock: socket.socket, host: str, port: int) -> None:
    """Make ``sock`` (from the core's ``open_tcp``) ftplib's control connection
    and read the server's greeting: what ``FTP.connect`` does with its own."""
    ftp.host, ftp.port = host, port
    ftp.sock, ftp.af = sock, sock.family
    ftp.file = sock.makefile("r", encoding=ftp.encoding)
    ftp.welcome = ftp.getresp()


def _start_tls(ftp: ftplib.FTP_TLS, host: str) -> None:
    """``AUTH TLS`` and the verified handshake on the control connection."""
    try:
        ftp.voidcmd("AUTH TLS")
    except ftplib.error_perm as exc:
        raise TLSFailed(f"the server does not offer TLS ({errors.reply_code(exc)} "
                        f"{errors.reply_text(exc)})", host=host,
                        fix="use an ftp:// URL if this server has no TLS (the password then "
                        "goes in clear text), or enable explicit TLS (AUTH TLS) on the "
                        "server") from None
    try:
        ftp.sock = ftp.context.wrap_socket(ftp.sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise TLSFailed(f"certificate verify failed: {exc.verify_message or exc.reason}",
                        host=host) from None
    except ssl.SSLError as exc:
        raise TLSFailed(f"{exc.reason or exc}", host=host,
                        fix="check that the server speaks explicit FTPS (AUTH TLS) on this "
                        "port; implicit FTPS (port 990) is not supported") from None
    ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)


def _features(ftp: ftplib.FTP) -> frozenset[str]:
    """The server's FEAT list (empty when it has no FEAT)."""
    try:
        reply = ftp.sendcmd("FEAT")
    except ftplib.error_perm:
        return frozenset()
    return frozenset(line.strip().upper() for line in reply.splitlines()[1:-1] if line.strip())


def _offers_tls(features: frozenset[str]) -> bool:
    return any(f.startswith("AUTH") and ("TLS" in f or "SSL" in f) for f in features)


def _size(conn: FtpConnection, remote: str) -> int | None:
    """``SIZE`` of a file; None when nothing (or a folder) is there."""
    try:
        return conn.ftp.size(remote)
    except ftplib.error_perm as exc:
        if errors.reply_code(exc) in ("550", "501", "450"):
            return None
        raise


def _is_folder(conn: FtpConnection, remote: str) -> bool:
    """Whether ``remote`` is a folder: MLST's type where the server has it
    (no state changes), else whether CWD enters it."""
    if conn.mlsd:
        try:
            entry = parse_mlst_reply(conn.ftp.sendcmd(f"MLST {remote}"))
        except ftplib.error_perm:
            return False
        return entry is not None and entry.kind == "dir"
    try:
        conn.ftp.voidcmd(f"CWD {remote}")
    except ftplib.error_perm:
        return False
    return True


def _makedirs(conn: FtpConnection, folder: str) -> None:
    """``mkdir -p``: enter the folder, else make its parent, then it."""
    if folder in conn.folders or folder in ("", "/"):
        return
    if not _is_folder(conn, folder):
        _makedirs(conn, posixpath.dirname(folder))
        try:
            conn.ftp.voidcmd(f"MKD {folder}")
        except ftplib.error_perm as refused:
            # Made meanwhile by another writer? Else: a file in the way, or
            # the refusal (permission denied) is the error.
            if not _is_folder(conn, folder):
                if _size(conn, folder) is not None:
                    raise Fatal(f"'{folder}' is a file where a folder is needed",
                                fix="point the target URL at a folder, or move the file "
                                "away at the server") from None
                raise refused from None
    conn.folders.add(folder)


def _list_entries(conn: FtpConnection, folder: str) -> list[Entry]:
    """The entries of one folder (absolute path), by MLSD or by LIST."""
    if conn.mlsd:
        lines = read_lines(conn.ftp, f"MLSD {folder}")
        found = [parse_mlsd_line(line) for line in lines]
    else:
        now = time.time()
        lines = read_lines(conn.ftp, f"LIST {folder}")
        found = [parse_list_line(line, now) for line in lines]
    return [e for e in found if e is not None]


def _stat(conn: FtpConnection, remote: str) -> Entry | None:
    """Size and mtime of one file, as :func:`_list_entries` shows it."""
    if conn.mlsd:
        try:
            return parse_mlst_reply(conn.ftp.sendcmd(f"MLST {remote}"))
        except ftplib.error_perm as exc:
            if errors.is_missing(exc):
                return None
            raise
    name = posixpath.basename(remote)
    return next((e for e in _list_entries(conn, posixpath.dirname(remote)) if e.name == name),
                None)


class FtpTransport:
    """The ``ftp`` and ``ftps`` schemes' transport (see :mod:`offsite.hookspecs`)."""

    @hookimpl
    def options(self) -> Mapping[str, str]:
        return OPTIONS

    # -- connection -------------------------------------------------------------

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> FtpConnection:
        tls = endpoint.scheme == "ftps"
        options = FtpOptions.from_endpoint(endpoint)
        host, port = endpoint.host, endpoint.port or DEFAULT_PORT
        if not host:
            raise Fatal("an FTP URL needs a host", fix="write it as ftp[s]://user@host/folder")
        ftp: ftplib.FTP
        if tls:
            ftp = ftplib.FTP_TLS(context=tls_context(options, endpoint.label),  # noqa: S321
                                 timeout=options.timeout)
        else:
            # Plain FTP is what the ftp:// scheme asks for; a password is not
            # sent to a server that offers TLS (see _session).
            ftp = ftplib.FTP(timeout=options.timeout)  # noqa: S321
        ftp.set_pasv(options.passive)
        sock = open_tcp(steps, host, port, options.timeout)
        try:
            return self._session(endpoint, steps, ftp, sock, options, tls)
        except BaseException:
            ftp.close()
            sock.close()
            raise

    def _session(self, endpoint: Endpoint, steps: Steps, ftp: ftplib.FTP,
                 sock: socket.socket, options: FtpOptions, tls: bool) -> FtpConnection:
        host, port = endpoint.host, endpoint.port or DEFAULT_PORT
        with steps.step("connect", f"{host}:{port}", quiet=True):
            _adopt(ftp, sock, host, port)  # the greeting: a 421 "too many users" fails here
        if tls:
            assert isinstance(ftp, ftplib.FTP_TLS)
            with steps.step("tls", host):
                _start_tls(ftp, host)
        user = endpoint.username or "anonymous"
        password = endpoint.credentials.get("password", "")
        with steps.step("auth", user):
            if not tls and password and not options.allow_plaintext_password \
                    and _offers_tls(_features(ftp)):
                raise Fatal(
                    "the server offers TLS, and over ftp:// the password would go in clear "
                    "text", fix="use an ftps:// URL (with the ca_file option if the server's "
                    "certificate is from a private CA), or set allow_plaintext_password = "
                    "true to send it in clear text anyway")
            if not password and user != "anonymous":
                raise AuthError("no password is stored for this target",
                                fix="offsite credentials set {name}")
            ftp.login(user, password or "anonymous@")
            if tls:
                assert isinstance(ftp, ftplib.FTP_TLS)
                ftp.prot_p()  # PBSZ 0 + PROT P: the data connections are encrypted too
        features = _features(ftp)
        if "UTF8" in features:
            with contextlib.suppress(ftplib.error_perm):
                ftp.voidcmd("OPTS UTF8 ON")
        ftp.voidcmd("TYPE I")  # binary, for good: SIZE and REST need it
        mlsd = any(f.startswith("MLST") for f in features)
        if mlsd:
            with contextlib.suppress(ftplib.error_perm):
                ftp.voidcmd("OPTS MLST type;size;modify;")
        with steps.step("folder", endpoint.path or "/"):
            root = self._root(ftp, endpoint.path)
            conn = FtpConnection(endpoint, ftp, root, tls, features, mlsd)
            _makedirs(conn, root)
            if not _is_folder(conn, root):
                raise Fatal(f"'{root}' is not a folder the server lets this user enter",
                            fix="point the target URL at a folder")
        return conn

    @staticmethod
    def _root(ftp: ftplib.FTP, path: str) -> str:
        # As in RFC 1738 (and curl): the URL's path is relative to the folder
        # the server starts the user in; ftp://host//srv/x (or /%2Fsrv/x) is
        # the absolute /srv/x.
        relative = path[1:] if path.startswith("/") else path
        if relative.startswith("/"):
            return posixpath.normpath(relative)
        start = ftp.pwd()
        return posixpath.normpath(posixpath.join(start, relative)) if relative else start

    @hookimpl
    def check(self, conn: FtpConnection, steps: Steps) -> bool:
        features = conn.features
        wanted = ("SIZE", "REST STREAM", "MLST", "UTF8")
        has = [f for f in wanted if any(x.startswith(f) for x in features)]
        missing = [f for f in wanted if f not in has]
        detail = ", ".join(has) + (f" (not listed: {', '.join(missing)})" if missing else "")
        with steps.step("features", detail if features else "the server has no FEAT"):
            if features and not any(x.startswith("SIZE") for x in features):
                raise Fatal("the server does not list SIZE, which offsite needs to check "
                            "every upload", fix="use a server with RFC 3659 SIZE and REST "
                            "STREAM (vsftpd, ProFTPD, Pure-FTPd, FileZilla Server, IIS do)")
        return True

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        return errors.translate(exc)

    # -- transfer ---------------------------------------------------------------

    @hookimpl
    def put(self, conn: FtpConnection, path: str, transfer: Transfer) -> RemoteFile:
        final = conn.remote(path)
        partial_rel = paths.partial_path(path)
        partial = conn.remote(partial_rel)
        _makedirs(conn, posixpath.dirname(final))
        held = _size(conn, partial)
        offset = transfer.resume_offset(partial_rel, lambda: held)
        if held is not None and held > transfer.size:
            # FTP cannot cut a file short: a STOR from 0 replaces it whole.
            offset = 0
        transfer.save_partial(partial_rel, offset)
        # Bytes past the token (a segment cut short by a kill) cannot be cut
        # off over FTP: the first segment overwrites them all, ending exactly
        # where they end, so that its SIZE check means what it should.
        stale = held if held is not None and offset < held <= transfer.size else None
        self._upload(conn, partial, partial_rel, transfer, offset, stale)
        # The last segment's SIZE was the source's size: complete. Into place.
        try:
            conn.ftp.rename(partial, final)
        except ftplib.error_perm:
            # Some servers (IIS) do not rename over an existing file: remove
            # the old one first. A moment without the file, never half a file.
            if _size(conn, final) is None:
                raise
            conn.ftp.delete(final)
            conn.ftp.rename(partial, final)
        placed = _stat(conn, final)
        if placed is None or placed.size != transfer.size:
            raise Transient(f"after the rename the server shows {placed.size if placed else 0} "
                            f"bytes for '{path}', not {transfer.size}")
        return RemoteFile(path, placed.size, placed.mtime)

    @staticmethod
    def _upload(conn: FtpConnection, partial: str, partial_rel: str, transfer: Transfer,
                offset: int, stale: int | None = None) -> None:
        """Send the source from ``offset`` into ``partial``, segment by segment,
        each confirmed by SIZE and then saved in the resume token.

        :param stale: where unconfirmed bytes already in ``partial`` end: the
            first segment goes at least that far.
        """
        size = transfer.size
        segment = conn.segment_min
        with transfer.open(offset) as reader:
            start = offset
            while True:
                end = min(size, start + segment)
                if stale is not None:
                    end, stale = max(end, stale), None

                def salvage(sent: int, exc: BaseException, start: int = start) -> None:
                    # What the server kept of this segment is a prefix of
                    # what went out: trust it as far as SIZE and the send agree.
                    with contextlib.suppress(Exception):
                        held = _size(conn, partial)
                        if held is not None and start < held <= sent:
                            transfer.save_partial(partial_rel, held)

                began = time.monotonic()
                send_segment(conn.ftp, f"STOR {partial}", reader, transfer, start, end,
                             salvage)
                held = _size(conn, partial)
                if held != end:
                    if held is not None and start < held < end:
                        transfer.save_partial(partial_rel, held)
                    raise Transient(f"the server kept {held} bytes of the {end} sent to "
                                    f"'{partial_rel}' and still said the transfer was complete")
                transfer.save_partial(partial_rel, end)
                if end >= size:
                    return
                rate = (end - start) / max(time.monotonic() - began, 1e-3)
                segment = int(min(SEGMENT_MAX, max(conn.segment_min, rate * SEGMENT_SECONDS)))
                # Whole chunks: the reader then hands its read-ahead chunks
                # over as they are (a segment cut mid-chunk costs a copy of
                # every chunk after it).
                segment = max(CHUNK_SIZE, segment - segment % CHUNK_SIZE)
                start = end

    @hookimpl
    def discard(self, conn: FtpConnection, path: str, resume: ResumeToken) -> bool:
        partial_rel = owned_partial(path, resume)
        if partial_rel is not None:  # never anything but our own partial
            try:
                conn.ftp.delete(conn.remote(partial_rel))
            except ftplib.error_perm as exc:
                if _size(conn, conn.remote(partial_rel)) is not None:
                    raise
                del exc  # already gone
        return True

    @hookimpl
    def get(self, conn: FtpConnection, path: str, offset: int) -> Readable:
        remote = conn.remote(path)
        try:
            size = conn.ftp.size(remote)
        except ftplib.error_perm as exc:
            # pyftpdlib answers a missing file and a folder alike: "550 … is
            # not retrievable"; only a refusal that says so is one.
            if errors.reply_code(exc) not in ("550", "501") or errors.is_denied(exc):
                raise
            if _is_folder(conn, remote):
                raise NotFound("a folder, not a file") from exc
            raise NotFound(errors.reply_text(exc)) from exc
        if size is None or offset >= size:
            return Empty()
        data, _ = conn.ftp.ntransfercmd(f"RETR {remote}", offset or None)
        return Download(conn.ftp, data, size - offset)

    # -- listing ----------------------------------------------------------------

    @hookimpl
    def list(self, conn: FtpConnection, folder: str) -> Sequence[RemoteFile]:
        found: list[RemoteFile] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            remote = conn.remote(current)
            try:
                entries = _list_entries(conn, remote)
            except ftplib.error_perm:
                if not _is_folder(conn, remote):
                    continue  # missing (the top: an empty listing), or removed meanwhile
                raise
            for entry in entries:
                rel = posixpath.join(current, entry.name) if current else entry.name
                if entry.kind == "dir":
                    pending.append(rel)
                elif entry.kind == "file":
                    found.append(RemoteFile(paths.normalise(rel), entry.size, entry.mtime))
        return found

    @hookimpl
    def delete(self, conn: FtpConnection, path: str) -> bool:
        remote = conn.remote(path)
        try:
            conn.ftp.delete(remote)
        except ftplib.error_perm as exc:
            # pyftpdlib says "Is a directory", others "Permission denied":
            # a folder is no file to delete, and what is in it stays.
            if not errors.is_missing(exc) and _is_folder(conn, remote):
                raise NotFound("a folder, not a file") from exc
            raise
        return True

    @hookimpl
    def close(self, conn: FtpConnection) -> bool:
        try:
            with contextlib.suppress(Exception):
                conn.ftp.quit()
        finally:
            conn.ftp.close()
        return True


__all__ = ["OPTIONS", "FtpConnection", "FtpOptions", "FtpTransport", "tls_context"]

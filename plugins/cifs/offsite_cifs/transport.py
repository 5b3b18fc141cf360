"""The ``smb`` (and ``cifs``) scheme's hooks: see :mod:`offsite.hookspecs`."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping, Sequence

from smbprotocol.connection import Ciphers, Dialects
from smbprotocol.exceptions import (
    AccessDenied,
    BadNetworkName,
    ObjectNameNotFound,
    ObjectPathNotFound,
    StatusNotADirectory,
)
from smbprotocol.file_info import FileAttributes
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from offsite import hookimpl, paths
from offsite.checks import Steps
from offsite.errors import (
    AuthError,
    ConnectFailed,
    Fatal,
    NotFound,
    PermissionDenied,
    ResolveFailed,
    SourceError,
    TargetError,
)
from offsite.transport import (
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    Transfer,
    owned_partial,
    pump,
)
from offsite_cifs import errors, names
from offsite_cifs.pipeline import Reader, Writer
from offsite_cifs.receive import Answers
from offsite_cifs.smb import CREDITS, SmbConnection, filetime, join, new_connection, split_share
from offsite_cifs.wire import signing

DEFAULT_PORT = 445
DEFAULT_TIMEOUT = 30.0
#: The largest read request sent, if the server takes that much (Samba
#: negotiates 8 MiB). Measured on loopback with the answers taken off the
#: socket whole (bench/cifs.py's get, 1 GiB, 3 runs each, signed): 1 MiB
#: requests 1.66-1.83 s, 2 MiB 1.43-1.74 s, 4 MiB 1.27-1.50 s, 8 MiB
#: 1.52-1.96 s (the answer no longer fits in the CPU's cache).
REQUEST_SIZE = 4 << 20
#: The largest write request sent (if the server takes that much), gathered
#: from the 1 MiB chunks the core reads without copying them. Measured on
#: loopback (bench/cifs.py, 1 GiB, 3 runs each, busy machine): 2 MiB
#: requests cost the client about 20 % less CPU than 1 MiB ones when signed;
#: 4 and 8 MiB ones no less when signed and more when encrypted (the cipher's
#: output no longer fits in the CPU's cache).
WRITE_SIZE = 2 << 20
#: Bytes of write requests a put keeps unanswered (in the kernel's socket
#: buffers or the server's, not in offsite's memory). 16 MiB ran no faster
#: (bench/cifs.py), and what is unanswered when a connection breaks is sent
#: again on resume.
IN_FLIGHT = 8 << 20
#: Bytes of read requests a get keeps unanswered: each answer is held
#: until handed out, so this is what a restore holds. Two 4 MiB requests:
#: 16 MiB ran no faster (measured with REQUEST_SIZE).
READ_IN_FLIGHT = 8 << 20

RESOLVE_FIX = ("check the host name in the target URL and this machine's DNS settings; if the "
               "name resolves elsewhere but not here (Windows says 'Destination net "
               "unreachable'), write the server's IP address instead: smb://192.0.2.10/share/folder")
DIALECTS = {Dialects.SMB_3_0_0: "3.0", Dialects.SMB_3_0_2: "3.0.2", Dialects.SMB_3_1_1: "3.1.1",
            Dialects.SMB_2_0_2: "2.0.2", Dialects.SMB_2_1_0: "2.1"}
SIGNING = {"gmac": "AES-GMAC", "cmac": "AES-CMAC", "hmac": "HMAC-SHA256"}
CIPHERS = {Ciphers.AES_128_CCM: "AES-128-CCM", Ciphers.AES_128_GCM: "AES-128-GCM",
           Ciphers.AES_256_CCM: "AES-256-CCM", Ciphers.AES_256_GCM: "AES-256-GCM"}


def _option_bool(endpoint: Endpoint, name: str, default: bool) -> bool:
    value = endpoint.options.get(name, default)
    if not isinstance(value, bool):
        raise Fatal(f"the option {name} must be true or false, not {value!r}",
                    fix=f"write {name} = true or {name} = false")
    return value


def _option_seconds(endpoint: Endpoint, name: str, default: float) -> float:
    value = endpoint.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise Fatal(f"the option {name} must be a positive number of seconds, not {value!r}",
                    fix=f"write e.g. {name} = 30")
    return float(value)


class SmbTransport:
    """The SMB2/3 transport (see :mod:`offsite.hookspecs`)."""

    @hookimpl
    def options(self) -> Mapping[str, str]:
        return {
            "domain": "the Windows domain (or workgroup) the user belongs to (default none)",
            "encrypt": "true: require SMB3 encryption of everything sent (default false: "
                       "signed, and encrypted where the share asks for it)",
            "timeout": "seconds to wait for the server to connect or answer (default 30)",
        }

    # -- connection -------------------------------------------------------------

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> SmbConnection:
        host, port = endpoint.host, endpoint.port or DEFAULT_PORT
        if not host or not endpoint.username:
            raise Fatal("an SMB URL needs a user and a host",
                        fix="write it as smb://user@host[:port]/share/folder")
        share, folder = split_share(endpoint.path)
        encrypt = _option_bool(endpoint, "encrypt", False)
        timeout = _option_seconds(endpoint, "timeout", DEFAULT_TIMEOUT)
        domain = str(endpoint.options.get("domain") or "")
        password = endpoint.credentials.get("password")
        self._reach(steps, host, port, timeout)
        connection = new_connection(host, port)
        try:
            with steps.step("negotiate", f"SMB at {host}:{port}"):
                connection.connect(timeout=timeout)
                answers = Answers.install(connection)
                if encrypt and not connection.supports_encryption:
                    raise Fatal("the server does not offer SMB3 encryption",
                                fix="turn the target option encrypt off, or enable SMB3 "
                                "encryption on the server")
            user = f"{domain}\\{endpoint.username}" if domain else endpoint.username
            if not password:
                # In step order (after resolve, connect, negotiate): a wrong
                # host name is said as such, not as a missing password.
                with steps.step("auth", user):
                    raise AuthError("no password is stored for this target",
                                    fix="offsite credentials set {name}")
            session = Session(connection, user, password, require_encryption=encrypt,
                              auth_protocol="ntlm")
            with steps.step("auth", user):
                session.connect()
            tree = TreeConnect(session, rf"\\{host}\{share}")
            with steps.step("share", share):
                self._tree_connect(tree, share)
                # Credits for the requests a put keeps in flight (Samba grants them).
                connection.echo(sid=session.session_id, timeout=int(timeout),
                                credit_request=CREDITS)
            conn = SmbConnection(endpoint, connection, session, tree, folder, timeout,
                                 answers=answers)
            with steps.step("folder", endpoint.path):
                self._folder(conn, folder)
        except BaseException:
            with contextlib.suppress(Exception):
                connection.disconnect(close=False)
            raise
        return conn

    @staticmethod
    def _reach(steps: Steps, host: str, port: int, timeout: float) -> None:
        """The ``resolve`` and ``connect`` steps, before smbprotocol dials itself."""
        with steps.step("resolve", host):
            try:
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise ResolveFailed(exc.strerror or str(exc), host=host, fix=RESOLVE_FIX) from None
        with steps.step("connect", f"{host}:{port}"):
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError as exc:
                raise ConnectFailed(exc.strerror or str(exc), address=f"{host}:{port}") from None

    @staticmethod
    def _tree_connect(tree: TreeConnect, share: str) -> None:
        try:
            tree.connect()
        except BadNetworkName:
            raise NotFound(f"the server has no share '{share}' (STATUS_BAD_NETWORK_NAME)",
                           path=share, fix=errors.SHARE_FIX) from None
        except AccessDenied:
            raise PermissionDenied(f"the user may not use the share '{share}'",
                                   fix="let the user in on the server (valid users = … in "
                                   "smb.conf, or the share's permissions)") from None

    @staticmethod
    def _folder(conn: SmbConnection, folder: str) -> None:
        names.check(folder.replace("\\", "/"))
        try:
            conn.makedirs(folder)
        except AccessDenied:
            raise PermissionDenied(f"the folder '{folder.replace(chr(92), '/')}' cannot be "
                                   "created", fix=errors.READ_ONLY_FIX) from None
        if folder:
            found = conn.stat(folder)
            if found is None or not found.file_attributes & FileAttributes.FILE_ATTRIBUTE_DIRECTORY:
                raise Fatal(f"'{folder}' is a file where a folder is needed",
                            fix="point the target URL at a folder, or move the file away")

    @hookimpl
    def check(self, conn: SmbConnection, steps: Steps) -> bool:
        connection = conn.connection
        dialect = DIALECTS.get(connection.dialect, f"0x{connection.dialect:04x}")
        encrypted = conn.session.encrypt_data or conn.tree.encrypt_data
        how = ("encrypted (" + CIPHERS.get(connection.cipher_id, "AES-128-CCM") + ")"
               if encrypted else f"signed ({SIGNING[signing(connection)]})")
        with steps.step("security", f"SMB {dialect}, {how}"):
            if not encrypted and not conn.session.signing_required:
                raise Fatal("the session is neither signed nor encrypted",
                            fix="enable signing on the server (server signing = mandatory)")
        return True

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        return errors.translate(exc)

    # -- transfer ---------------------------------------------------------------

    @hookimpl
    def put(self, conn: SmbConnection, path: str, transfer: Transfer) -> RemoteFile:
        names.check(path)  # before anything is made: never a mangled name
        final = conn.remote(path)
        partial_rel = paths.partial_path(path)
        partial = conn.remote(partial_rel)
        conn.makedirs(final.rpartition("\\")[0])
        offset = transfer.resume_offset(partial_rel, lambda: conn.size(partial))
        handle = conn.open(
            partial, FilePipePrinterAccessMask.FILE_WRITE_DATA
            | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
            | FilePipePrinterAccessMask.FILE_WRITE_ATTRIBUTES | FilePipePrinterAccessMask.DELETE,
            # From 0 the file is emptied; resuming keeps what it holds ...
            CreateDisposition.FILE_OPEN_IF if offset else CreateDisposition.FILE_OVERWRITE_IF,
            CreateOptions.FILE_NON_DIRECTORY_FILE)
        try:
            if offset and handle.end_of_file > offset:
                conn.truncate(handle, offset)  # ... up to what the token vouches for
            transfer.save_partial(partial_rel, offset)
            size = conn.connection.max_write_size
            writer = Writer(conn, handle, offset, min(size, WRITE_SIZE), IN_FLIGHT)
            def keep(done: int) -> None:
                # The core's checkpoints (64 MiB or 1 s); the token holds
                # only what the server confirmed.
                if transfer.checkpoint_due(done) and writer.collect() > offset:
                    transfer.save_partial(partial_rel, writer.answered)

            try:
                with transfer.open(offset) as reader:
                    pump(reader, writer.write, transfer, on_chunk=keep)
                writer.finish()
            except BaseException as exc:
                # What the server confirmed is where the next attempt resumes.
                # The source failed: the target is fine, so the bytes read
                # before the failure (gathered, or in flight) are sent and
                # their answers awaited. Anything else: only the answers
                # already in (the connection may be gone, or hang).
                with contextlib.suppress(Exception):
                    if isinstance(exc, SourceError):
                        writer.finish()
                    else:
                        writer.collect()
                with contextlib.suppress(Exception):
                    transfer.save_partial(partial_rel, writer.answered)
                raise
            # Every write answered: the file is whole. Into place, over any old one.
            conn.rename(handle, final)
            conn.close_handle(handle, attributes=True)
        finally:
            with contextlib.suppress(Exception):  # a broken connection has nothing to close
                conn.close_handle(handle)
        return RemoteFile(path, int(handle.end_of_file), filetime(handle.last_write_time))

    @hookimpl
    def discard(self, conn: SmbConnection, path: str, resume: ResumeToken) -> bool:
        partial_rel = owned_partial(path, resume)
        if partial_rel is not None:  # never anything but our own partial
            with contextlib.suppress(ObjectNameNotFound, ObjectPathNotFound):
                conn.delete(conn.remote(partial_rel))
        return True

    @hookimpl
    def get(self, conn: SmbConnection, path: str, offset: int) -> Readable:
        handle = conn.open(conn.remote(path), FilePipePrinterAccessMask.FILE_READ_DATA
                           | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
                           CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
        size = min(conn.connection.max_read_size, REQUEST_SIZE)
        return Reader(conn, handle, offset, int(handle.end_of_file), size, READ_IN_FLIGHT)

    # -- listing ----------------------------------------------------------------

    @hookimpl
    def list(self, conn: SmbConnection, folder: str) -> Sequence[RemoteFile]:
        found: list[RemoteFile] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                entries = conn.listdir(conn.remote(current))
            except (ObjectNameNotFound, ObjectPathNotFound, StatusNotADirectory):
                if current == folder:
                    return []
                continue  # removed while we walked
            for name, entry in entries:
                rel = join(current, name)
                attributes = entry["file_attributes"].get_value()
                if attributes & FileAttributes.FILE_ATTRIBUTE_DIRECTORY:
                    # A folder that is a reparse point (a symlink or junction
                    # the server shows as such) is not descended into.
                    if not attributes & FileAttributes.FILE_ATTRIBUTE_REPARSE_POINT:
                        pending.append(rel)
                    continue
                found.append(RemoteFile(paths.normalise(rel), int(entry["end_of_file"].get_value()),
                                        filetime(entry["last_write_time"].get_value())))
        return found

    @hookimpl
    def delete(self, conn: SmbConnection, path: str) -> bool:
        conn.delete(conn.remote(path))
        return True

    @hookimpl
    def close(self, conn: SmbConnection) -> bool:
        conn.close()
        return True


__all__ = ["DEFAULT_PORT", "IN_FLIGHT", "REQUEST_SIZE", "WRITE_SIZE", "SmbTransport"]

"""One SMB connection: TCP, negotiate, session, tree, and the file operations offsite needs.

Built on smbprotocol's low-level objects (``Connection``, ``Session``,
``TreeConnect``, ``Open``), not on its ``smbclient`` helpers: those keep a
process-wide cache of connections keyed by ``server:port``, reuse a cached
session for the same user without authenticating again (a wrong password
after a right one goes unnoticed), dial 445 where a call forgets the port,
and copy files in 64 KiB pieces. Here every :class:`SmbConnection` owns its
TCP connection, session and tree, shares nothing with any other, and closes
all three in :meth:`SmbConnection.close`.

Every request goes out and is waited for through :meth:`SmbConnection.call`,
so each waits at most the ``timeout`` option's seconds for its answer
(smbprotocol's own calls would wait forever on a server that stopped
answering without closing the connection).
"""

from __future__ import annotations

import contextlib
import datetime
import posixpath
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    FileIsADirectory,
    NoMoreFiles,
    ObjectNameCollision,
    ObjectNameNotFound,
    ObjectPathNotFound,
    StatusNotADirectory,
)
from smbprotocol.file_info import (
    FileAttributes,
    FileEndOfFileInformation,
    FileInformationClass,
    FileRenameInformation,
)
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2SetInfoRequest,
    SMB2SetInfoResponse,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from offsite.errors import Fatal, NotFound
from offsite.transport import Endpoint

if TYPE_CHECKING:
    from offsite_cifs.receive import Answers

#: Share access for every open: others may read, write and delete meanwhile
#: (a listing must not block a put, nor a put a delete of another file).
SHARE_ALL = (ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
             | ShareAccess.FILE_SHARE_DELETE)
#: Credits asked for once the tree is connected: enough for the writes and
#: reads kept in flight (a credit covers 64 KiB of a request).
CREDITS = 512
#: What a directory listing asks for per request (multi-credit, fewer round trips).
LIST_BUFFER = 256 << 10


@attrs.define
class SmbConnection:
    """An open SMB session on one share, and the target folder in it.

    :ivar folder: the target folder, relative to the share, with
        backslashes (``""`` for the share's root).
    """

    endpoint: Endpoint = attrs.field(repr=lambda e: e.url)
    connection: Connection = attrs.field(repr=False)
    session: Session = attrs.field(repr=False)
    tree: TreeConnect = attrs.field(repr=False)
    folder: str
    timeout: float
    #: The READ answers, taken off the socket by offsite_cifs.receive.
    answers: Answers = attrs.field(repr=False)
    #: Folders known to exist (share-relative), so puts skip creating them.
    made: set[str] = attrs.field(factory=set, repr=False)

    # -- requests ------------------------------------------------------------------

    def send(self, message: Any, credit_request: int | None = None) -> Any:
        """Send one request on this session and tree; returns smbprotocol's Request."""
        return self.connection.send(message, sid=self.session.session_id,
                                    tid=self.tree.tree_connect_id,
                                    credit_request=credit_request)

    def wait(self, request: Any) -> None:
        """Wait for the answer to ``request``, at most :attr:`timeout` seconds.

        Raises smbprotocol's exception for an error status; afterwards the
        library's own receive function finds the answer already there.
        """
        self.connection.receive(request, timeout=self.timeout)

    def call(self, pair: tuple[Any, Callable[[Any], Any]]) -> Any:
        """Send a request made with ``send=False`` and return its decoded answer."""
        message, receive = pair
        request = self.send(message)
        self.wait(request)
        return receive(request)

    def credits(self) -> int:
        """Credits in hand: how many 64 KiB units may be sent before answers come."""
        window = self.connection.sequence_window
        return int(window["high"] - window["low"])

    # -- paths ------------------------------------------------------------------

    def remote(self, path: str) -> str:
        """The share-relative name of ``path`` (relative to the target folder)."""
        path = path.replace("/", "\\")
        if not self.folder:
            return path
        return f"{self.folder}\\{path}" if path else self.folder

    # -- opening ------------------------------------------------------------------

    def open(self, name: str, access: int, disposition: int, options: int,
             attributes: int = FileAttributes.FILE_ATTRIBUTE_NORMAL) -> Open:
        """Open (or create) ``name``; the answer's times and size are on the Open."""
        handle = Open(self.tree, name)
        self.call(handle.create(ImpersonationLevel.Impersonation, access, attributes, SHARE_ALL,
                                disposition, options, send=False))
        return handle

    def close_handle(self, handle: Open, *, attributes: bool = False) -> None:
        """Close ``handle``; with ``attributes`` its final size and times land on it."""
        if handle.connected:
            self.call(handle.close(get_attributes=attributes, send=False))

    @contextlib.contextmanager
    def opened(self, name: str, access: int, disposition: int, options: int,
               attributes: int = FileAttributes.FILE_ATTRIBUTE_NORMAL) -> Iterator[Open]:
        handle = self.open(name, access, disposition, options, attributes)
        try:
            yield handle
        finally:
            self.close_handle(handle)

    def stat(self, name: str) -> Open | None:
        """What the server says of ``name`` (size, times, attributes), or None if absent."""
        try:
            with self.opened(name, FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
                             CreateDisposition.FILE_OPEN, 0) as handle:
                return handle
        except (ObjectNameNotFound, ObjectPathNotFound):
            return None

    def size(self, name: str) -> int | None:
        """The size of the file ``name``, or None when nothing is there."""
        found = self.stat(name)
        return None if found is None else int(found.end_of_file)

    # -- folders ------------------------------------------------------------------

    def makedirs(self, name: str) -> None:
        """mkdir -p: create ``name`` (share-relative) and any missing parent.

        :raises Fatal: a file is where a folder is needed.
        """
        if not name or name in self.made:
            return
        try:
            self._mkdir(name)
        except ObjectPathNotFound:  # a parent is missing: make it, then this
            parent = name.rpartition("\\")[0]
            self.makedirs(parent)
            self._mkdir(name)
        self.made.add(name)

    def _mkdir(self, name: str) -> None:
        try:
            with self.opened(name, DirectoryAccessMask.FILE_READ_ATTRIBUTES,
                             CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_DIRECTORY_FILE,
                             FileAttributes.FILE_ATTRIBUTE_DIRECTORY):
                pass
        except (StatusNotADirectory, ObjectNameCollision):
            raise Fatal(f"'{name.replace(chr(92), '/')}' is a file where a folder is needed",
                        fix="point the target URL at a folder, or move the file away at the "
                        "target") from None

    def listdir(self, name: str) -> list[tuple[str, Any]]:
        """Every entry of the folder ``name`` ('.' and '..' left out): its
        name, and its FileDirectoryInformation (size, times, attributes)."""
        entries: list[tuple[str, Any]] = []
        with self.opened(name, DirectoryAccessMask.FILE_LIST_DIRECTORY
                         | DirectoryAccessMask.FILE_READ_ATTRIBUTES,
                         CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE) as handle:
            while True:
                try:
                    found = self.call(handle.query_directory(
                        "*", FileInformationClass.FILE_DIRECTORY_INFORMATION,
                        max_output=min(LIST_BUFFER, self.connection.max_transact_size),
                        send=False))
                except NoMoreFiles:
                    break
                for entry in found:
                    entry_name = entry["file_name"].get_value().decode("utf-16-le")
                    if entry_name not in (".", ".."):
                        entries.append((entry_name, entry))
        return entries

    # -- files --------------------------------------------------------------------

    def set_info(self, handle: Open, info: Any) -> None:
        """SET_INFO on an open handle (end of file, rename …)."""
        request = SMB2SetInfoRequest()
        request["info_type"] = info.INFO_TYPE
        request["file_info_class"] = info.INFO_CLASS
        request["file_id"] = handle.file_id
        request["buffer"] = info
        sent = self.send(request)
        self.wait(sent)
        SMB2SetInfoResponse().unpack(self.connection.receive(sent)["data"].get_value())

    def truncate(self, handle: Open, size: int) -> None:
        """Set the end of the open file to ``size`` (cut or extend)."""
        info = FileEndOfFileInformation()
        info["end_of_file"] = size
        self.set_info(handle, info)

    def rename(self, handle: Open, name: str) -> None:
        """Rename the open file (opened with DELETE access) to the share-relative
        ``name``, replacing a file there (FileRenameInformation ReplaceIfExists)."""
        info = FileRenameInformation()
        info["replace_if_exists"] = True
        info["file_name"] = name
        self.set_info(handle, info)

    def delete(self, name: str) -> None:
        """Delete the file ``name``: a symlink is removed, never what it points to.

        :raises NotFound: nothing is there, or a folder is.
        """
        try:
            with self.opened(name, FilePipePrinterAccessMask.DELETE, CreateDisposition.FILE_OPEN,
                             CreateOptions.FILE_NON_DIRECTORY_FILE
                             | CreateOptions.FILE_DELETE_ON_CLOSE
                             | CreateOptions.FILE_OPEN_REPARSE_POINT):
                pass
        except FileIsADirectory:
            raise NotFound("a folder, not a file") from None

    # -- teardown -------------------------------------------------------------------

    def close(self) -> None:
        """Disconnect the tree, log the session off, close the TCP connection.

        Never raises: on a connection that already broke there is nothing
        to say goodbye to, and the socket and the receiving thread still go.
        """
        self.answers.forget()
        with contextlib.suppress(Exception):
            if self.connection.transport is not None and self.connection.transport.connected:
                # Logs off and disconnects the session's trees, each answer
                # awaited at most this long.
                self.session.disconnect(True, timeout=min(self.timeout, 10))
        with contextlib.suppress(Exception):
            self.connection.disconnect(close=False)


def filetime(value: datetime.datetime) -> float:
    """A FILETIME as smbprotocol decodes it (an aware datetime) → seconds since the epoch."""
    return value.timestamp()


def new_connection(host: str, port: int) -> Connection:
    """An unconnected smbprotocol Connection that requires signing."""
    return Connection(uuid.uuid4(), host, port, require_signing=True)


def split_share(path: str) -> tuple[str, str]:
    """``/share/some/folder`` → (``share``, ``some\\folder``).

    :raises Fatal: no share in the URL, or ``..`` in the folder.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise Fatal("an SMB URL needs a share", fix="write it as smb://user@host/share/folder")
    if ".." in parts:
        raise Fatal(f"'{path}' has '..' in it", fix="write the folder's path without '..'")
    return parts[0], "\\".join(parts[1:])


def join(folder: str, name: str) -> str:
    """``folder/name`` in offsite's '/' form (for listings)."""
    return posixpath.join(folder, name) if folder else name


__all__ = ["SmbConnection", "filetime", "join", "new_connection", "split_share"]


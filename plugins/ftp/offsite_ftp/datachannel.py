"""FTP data connections: an upload's segments, a download stream, a listing.

Each ``STOR``, ``RETR``, ``MLSD`` or ``LIST`` opens a data connection
(``ftplib.FTP.ntransfercmd``: ``PASV``/``EPSV`` or ``PORT``, ``REST``, the
command, and for FTPS the TLS handshake of ``PROT P``). offsite drives the
socket itself, for three reasons:

* **The copy loop is the core's** :func:`offsite.transport.pump`: progress
  and the engine's bandwidth limit, with no copy of the data in between.
  A local file sent as it is over plain FTP (no TLS, no bandwidth limit,
  not an image that checks itself) goes by the kernel's ``sendfile``
  instead (:func:`offsite.transport.send_file`), with progress between
  slices: that halves the client's CPU time per byte.
* **An FTPS upload is complete only after a TLS shutdown.** Closing a TLS
  1.3 data socket without ``unwrap()`` makes the close a TCP reset (the
  client never read the session tickets the server sent), and the server
  drops the bytes it had buffered, yet still answers ``226 Transfer
  complete`` (seen with pyftpdlib, 3 of 3 times; rclone's uploads are cut
  the same way). So every upload's socket is unwrapped before it is closed,
  and its size is checked with ``SIZE`` before the upload counts as done.
* **The server confirms bytes only at the end of a data connection**
  (``226`` after the close, then ``SIZE``). A long upload therefore goes as
  several segments, each a ``REST pos`` + ``STOR`` on a new connection, and
  the resume token moves to the end of each confirmed segment; a segment
  lasts a few seconds, so an interrupted upload loses little.
"""

from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
from collections.abc import Callable

from offsite.errors import SourceError
from offsite.transport import SourceReader, Transfer, pump, send_file

#: What one ``recv`` asks for when reading a download.
RECV_SIZE = 1 << 20


def close_upload(data: socket.socket) -> None:
    """End an upload's data connection so that the server keeps every byte:
    a TLS shutdown first (see the module doc), then the close."""
    try:
        if isinstance(data, ssl.SSLSocket):
            data.unwrap()
    finally:
        data.close()


def send_segment(ftp: ftplib.FTP, command: str, reader: SourceReader, transfer: Transfer,
                 start: int, end: int, salvage: Callable[[int, BaseException], None]) -> None:
    """Send the source's bytes ``start`` to ``end`` with ``command`` (``STOR
    path``, after ``REST start`` when ``start`` is not 0) and wait for the
    server's answer to it.

    :param salvage: called with how far the bytes may have gone out (what
        was handed to the socket) and the failure
        when the segment fails after its data connection opened (the caller
        then confirms with ``SIZE`` what the server kept, for the resume
        token); the data connection is closed and its answer read by then.
    :raises ftplib.Error: the server refused or aborted the transfer (the
        server's answer wins over the socket error it caused: "426 No space
        left on device" says more than "Broken pipe").
    """
    data, _size = ftp.ntransfercmd(command, start or None)
    # How far the bytes handed to the socket reach, counted before each send:
    # a reset in the middle of a chunk may leave part of it at the server.
    sent = start

    def send(chunk: bytes) -> None:
        nonlocal sent
        sent += len(chunk)
        data.sendall(chunk)

    def reach(offset: int) -> None:
        nonlocal sent
        sent = offset

    try:
        # A local file over plain FTP goes by sendfile, unless the source
        # must pass through Python (bandwidth limit, image checks): pump.
        if isinstance(data, ssl.SSLSocket) or not send_file(transfer, data, start, end,
                                                            on_slice=reach):
            pump(reader, send, transfer, stop=end)
        close_upload(data)
    except Exception as exc:
        answer = _abandon(ftp, data, graceful=isinstance(exc, SourceError))
        salvage(sent, exc)
        if isinstance(answer, ftplib.Error) and not isinstance(exc, SourceError):
            raise answer from exc
        raise
    except BaseException:  # Ctrl-C: do not wait for the server
        data.close()
        raise
    try:
        ftp.voidresp()
    except ftplib.Error as answer:  # all sent, but the server aborted it
        salvage(sent, answer)
        raise


def _abandon(ftp: ftplib.FTP, data: socket.socket, *, graceful: bool) -> BaseException | None:
    """Close a data connection that failed and read the transfer's answer.

    :param graceful: the connection itself is sound (the source failed):
        shut TLS down so the server keeps what was sent.
    :returns: the server's error answer, if it gave one; None when it said
        226 or the control connection is gone too.
    """
    with contextlib.suppress(Exception):
        if graceful:
            close_upload(data)
    with contextlib.suppress(Exception):
        data.close()
    try:
        ftp.voidresp()
    except ftplib.Error as answer:
        return answer
    except Exception:
        # No answer (pyftpdlib's FTPS gives none when its disk fills): the
        # control connection is out of step now. Break it, so that the next
        # command fails at once (and is retried on a new session) instead
        # of reading this transfer's late answer as its own.
        with contextlib.suppress(Exception):
            ftp.sock.shutdown(socket.SHUT_RDWR)
        return None
    return None


class Download:
    """A ``RETR`` stream: what ``get`` returns.

    ``read(n)`` returns ``n`` bytes unless the file ends first. Closing it
    before the end (a restore that has read what it needs) closes the data
    connection and reads the server's "transfer aborted" answer, so the
    control connection is in step for the next command.
    """

    def __init__(self, ftp: ftplib.FTP, data: socket.socket, length: int) -> None:
        self._ftp, self._data, self._left = ftp, data, length
        self._closed = False

    def read(self, n: int = -1, /) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        parts = []
        while want > 0:
            chunk = self._data.recv(min(want, RECV_SIZE))
            if not chunk:  # the file shrank since its SIZE was asked
                self._left = 0
                break
            parts.append(chunk)
            want -= len(chunk)
            self._left -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        complete = self._left == 0
        try:
            if complete and isinstance(self._data, ssl.SSLSocket):
                with contextlib.suppress(OSError, ValueError):
                    self._data.unwrap()
        finally:
            self._data.close()
        try:
            self._ftp.voidresp()
        except ftplib.Error:
            if complete:
                raise
            # closed early: "426 Transfer aborted" is the expected answer


class Empty:
    """The stream of a ``get`` at or past the end of a file."""

    def read(self, n: int = -1, /) -> bytes:
        return b""

    def close(self) -> None:
        pass


def read_lines(ftp: ftplib.FTP, command: str) -> list[str]:
    """The lines of a listing command's answer (``MLSD path``, ``LIST path``).

    Read in binary mode: ftplib's ``retrlines`` would switch the session to
    ASCII (``TYPE A``), where pyftpdlib refuses ``SIZE``. Names are UTF-8
    (``OPTS UTF8 ON``); a listing holds one folder, so it is read whole.
    """
    data, _size = ftp.ntransfercmd(command)
    try:
        chunks = []
        while chunk := data.recv(RECV_SIZE):
            chunks.append(chunk)
        if isinstance(data, ssl.SSLSocket):
            with contextlib.suppress(OSError, ValueError):
                data.unwrap()
    finally:
        data.close()
    ftp.voidresp()
    text = b"".join(chunks).decode(ftp.encoding, "surrogateescape")
    return [line for line in text.splitlines() if line.strip()]


__all__ = ["RECV_SIZE", "Download", "Empty", "close_upload", "read_lines", "send_segment"]

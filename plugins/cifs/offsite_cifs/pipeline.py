"""Pipelined SMB2 writes and reads: many large requests in flight on one handle.

smbprotocol's ``Open.write`` and ``Open.read`` send one request and wait for
its answer; its ``smbclient`` file objects do that 64 KiB at a time. One
request per round trip leaves the link (and the server) idle most of the
time. :class:`Writer` and :class:`Reader` send requests of up to the size the
server negotiated (multi-credit, 1 MiB here) and keep a bounded number of
bytes unanswered, taking the answers in order, so that memory stays flat and
the offset confirmed by the server is always known (a resumed put starts
there).
"""

from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Callable
from typing import Any

from smbprotocol.open import Open

from offsite_cifs.smb import SmbConnection
from offsite_cifs.wire import Wire

#: One credit pays for 64 KiB of a request (MS-SMB2 3.1.5.2).
CREDIT_UNIT = 64 << 10


def _charge(length: int) -> int:
    return max(1, (length - 1) // CREDIT_UNIT + 1)


class _Pipe:
    """What both directions share: requests in flight, in order, with their credits."""

    def __init__(self, conn: SmbConnection, handle: Open, request_size: int,
                 in_flight: int) -> None:
        self._conn, self._handle = conn, handle
        self._request = request_size
        self._limit = max(in_flight, request_size)
        # (smbprotocol Request, its receive function, offset, length)
        self._pending: collections.deque[tuple[Any, Any, int, int]] = collections.deque()
        self._in_flight = 0

    def _submit(self, send: Callable[[int, int], Any], receive: Callable[[Any], Any],
                offset: int, length: int) -> None:
        """Send a request of ``length`` bytes with ``send(charge, credit_request)``,
        once enough credits are in hand."""
        charge = _charge(length)
        # Answers grant the credits back; wait for them rather than send a
        # request smbprotocol would refuse for want of credits.
        while self._pending and (self._conn.credits() < charge
                                 or self._in_flight + length > self._limit):
            self._take()
        # Ask for what this request costs, and more while fewer credits are
        # in hand than the pipeline needs: Samba grants what is asked for.
        want = charge + max(0, _charge(self._limit) * 2 - self._conn.credits())
        request = send(charge, min(want, charge + 256))
        self._pending.append((request, receive, offset, length))
        self._in_flight += length

    def _take(self) -> Any:
        request, receive, offset, length = self._pending.popleft()
        self._in_flight -= length
        self._conn.wait(request)
        return receive(request), offset, length


class Writer(_Pipe):
    """Writes a stream at increasing offsets of an open file, pipelined.

    :ivar answered: the end of the bytes the server has confirmed, counted
        from the file's start: everything before it is written.
    """

    def __init__(self, conn: SmbConnection, handle: Open, offset: int, request_size: int,
                 in_flight: int) -> None:
        super().__init__(conn, handle, request_size, in_flight)
        self.answered = self._next = offset
        self._wire = Wire(conn, handle, request_size)
        # Pieces written but not sent yet: a request carries up to
        # request_size bytes, gathered from several writes without copying.
        self._batch: list[memoryview] = []
        self._batched = 0

    def write(self, data: bytes) -> None:
        """Send ``data`` at the next offsets, waiting for answers as needed.

        ``data`` is not copied: it must not change until :meth:`finish`
        (bytes never do). What does not fill a request yet waits for the
        next write, or for :meth:`finish`."""
        view = memoryview(data).cast("B")
        while view:
            piece = view[:self._request - self._batched]
            view = view[len(piece):]
            self._batch.append(piece)
            self._batched += len(piece)
            if self._batched == self._request:
                self._flush()

    def _flush(self) -> None:
        if not self._batched:
            return
        parts, at, length = self._batch, self._next, self._batched
        self._batch, self._batched = [], 0
        self._submit(lambda charge, want: self._wire.send(parts, at, charge, want),
                     self._wire.written, at, length)
        self._next += length

    def _take(self) -> Any:
        count, offset, length = super()._take()
        if count != length:
            raise OSError(f"the server wrote {count} of {length} bytes at offset {offset}")
        self.answered = offset + length
        return count, offset, length

    def collect(self) -> int:
        """Take the answers that have already arrived, without waiting for
        more (a checkpoint should not trail the server by a window's worth);
        return :attr:`answered`."""
        while self._pending and self._pending[0][0].response_event.is_set():
            self._take()
        return self.answered

    def finish(self) -> None:
        """Send what is batched, wait for every answer; raise the first error
        the server reported."""
        self._flush()
        while self._pending:
            self._take()


class Reader(_Pipe):
    """Reads an open file from an offset to its end, with reads in flight.

    ``read`` hands out the answers in order; ``close`` closes the handle.
    The file's size is the one the server gave when it was opened: a read
    never asks past it, so the end is never an error.
    """

    def __init__(self, conn: SmbConnection, handle: Open, offset: int, size: int,
                 request_size: int, in_flight: int) -> None:
        super().__init__(conn, handle, request_size, in_flight)
        self._next, self._size = offset, size
        self._current = memoryview(b"")
        self._answers = conn.answers
        self._wire = Wire(conn, handle, 0)
        self._closed = False

    def _fill(self) -> None:
        while self._next < self._size and self._in_flight + self._request <= self._limit:
            length, at = min(self._request, self._size - self._next), self._next
            self._submit(functools.partial(self._wire.read, at, length,
                                           expect=self._answers.expect),
                         self._answers.data, at, length)
            self._next += length

    def _advance(self) -> bool:
        """Make the next answer current; False at the end."""
        self._fill()
        if not self._pending:
            return False
        data, offset, length = self._take()
        if len(data) != length:  # the file shrank meanwhile: stop where it ends
            self._next = self._size = offset + len(data)
        self._current = memoryview(data)
        return bool(data)

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            chunks = [bytes(self._current)]
            self._current = memoryview(b"")
            while self._advance():
                chunks.append(bytes(self._current))
                self._current = memoryview(b"")
            return b"".join(chunks)
        if not self._current and not self._advance():
            return b""
        piece = self._current[:size]
        self._current = self._current[len(piece):]
        whole = piece.obj
        if isinstance(whole, bytes) and len(whole) == len(piece):
            return whole  # an answer's data as received: no copy
        return bytes(piece)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Take the answers still on their way, then close the handle."""
        if self._closed:
            return
        self._closed = True
        self._current = memoryview(b"")
        # A broken connection has nothing left to close: the caller is done
        # reading either way, and the session's close ends the connection.
        with contextlib.suppress(Exception):
            while self._pending:
                self._take()
            self._conn.close_handle(self._handle)


__all__ = ["Reader", "Writer"]

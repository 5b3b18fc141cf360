"""The SFTP channel's receive buffer: what the server sends, kept as the pieces it came in.

paramiko's ``BufferedPipe`` keeps a channel's incoming bytes in one
``array``: every ``recv(n)`` copies ``n`` bytes out twice (a slice, then
``tobytes``) and deletes them from the front, which moves everything still
buffered behind them. A get keeps megabytes of answers in that buffer (the
SSH window is :data:`~offsite_sftp.connection.WINDOW`), so each answer read
off it moved megabytes: measured on a 1 GiB get from the test sshd, reads
took 3.7 s with it and 2.7 s with :class:`ChunkedPipe`, the same bytes
through the same channel.

:class:`ChunkedPipe` keeps the pieces as they arrive (one per SSH packet,
not copied), hands a piece out whole when a read asks for exactly it, and
drops read pieces from the front of a deque: a read costs what it returns,
whatever is buffered behind it. It has ``BufferedPipe``'s whole public
interface and semantics (blocking reads with a timeout, ``close``, the
event for ``select``), written here rather than borrowed from its private
helpers, so that a paramiko release that reworks them does not change it.
"""

from __future__ import annotations

import collections
import threading
import time

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

PipeTimeout = paramiko.buffered_pipe.PipeTimeout


class ChunkedPipe(paramiko.buffered_pipe.BufferedPipe):  # type: ignore[misc]
    """A ``BufferedPipe`` that keeps what it is fed as a deque of pieces.

    Fed by paramiko's transport thread (:meth:`feed`), read by whoever reads
    the channel (:meth:`read`); one lock guards both, as in paramiko's.
    """

    def __init__(self) -> None:
        # BufferedPipe.__init__ is not called: nothing of its state is used.
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._event: threading.Event | None = None
        self._pieces: collections.deque[bytes] = collections.deque()
        self._skip = 0  # bytes of the first piece already read
        self._size = 0  # bytes buffered, from _skip on
        self._closed = False

    def set_event(self, event: threading.Event) -> None:
        """Set ``event`` while data is buffered or the pipe is closed (for ``select``)."""
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data: bytes) -> None:
        """Add ``data`` (kept as it is, not copied); wake a waiting reader."""
        with self._lock:
            if self._event is not None:
                self._event.set()
            if data:
                self._pieces.append(bytes(data))
                self._size += len(data)
            self._cv.notify_all()

    def read_ready(self) -> bool:
        """Whether a :meth:`read` would return at once with at least one byte."""
        with self._lock:
            return self._size > 0

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        """Up to ``nbytes`` bytes, waiting up to ``timeout`` seconds (None:
        forever) for the first; ``b""`` once the pipe is closed and empty.

        :raises PipeTimeout: nothing arrived within ``timeout``.
        """
        with self._lock:
            if not self._size:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                while not self._size and not self._closed:
                    then = time.time()
                    self._cv.wait(timeout)
                    if timeout is not None:
                        timeout -= time.time() - then
                        if timeout <= 0.0:
                            raise PipeTimeout()
            out = self._take(nbytes)
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def empty(self) -> bytes:
        """Everything buffered, removed."""
        with self._lock:
            out = self._take(self._size)
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self) -> None:
        """No more data will come: readers get what is left, then ``b""``."""
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def _take(self, nbytes: int) -> bytes:
        """Remove and return up to ``nbytes`` from the front (lock held)."""
        want = min(max(nbytes, 0), self._size)
        pieces, parts = self._pieces, []
        while want:
            first = pieces[0]
            left = len(first) - self._skip
            if left <= want:
                # A piece read whole, as it came: no copy.
                parts.append(first if not self._skip else memoryview(first)[self._skip:])
                pieces.popleft()
                self._skip = 0
                taken = left
            else:
                parts.append(memoryview(first)[self._skip:self._skip + want])
                self._skip += want
                taken = want
            want -= taken
            self._size -= taken
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)


__all__ = ["ChunkedPipe"]

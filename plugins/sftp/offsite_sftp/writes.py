"""Pipelined SFTP writes: as many write requests unanswered as the link holds.

A put keeps write requests in flight up to what the link holds
(:class:`PipelinedWriter`), each as large as the server announces and sent
with one copy of its data (:mod:`offsite_sftp.wire`).
"""

from __future__ import annotations

import struct

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from paramiko.sftp import CMD_STATUS, CMD_WRITE

from offsite_sftp.wire import send_data

#: Bytes of write requests not yet answered before a put waits for answers:
#: what the link holds (its round trip at :data:`LINK_RATE`), within these
#: bounds. The server's SSH window (2 MiB for OpenSSH) bounds it too. More is
#: not free: sshd grows its buffers step by step, by copying, to hold whatever
#: a client sends ahead of what it has written, and flooding each fresh
#: connection with the whole window cost its first put 80 ms here, on loopback,
#: for no gain in speed.
MIN_IN_FLIGHT, MAX_IN_FLIGHT = 1 << 20, 32 << 20
#: The rate the in-flight bytes are sized for (bytes per second).
LINK_RATE = 1 << 30


class PipelinedWriter:
    """Writes one remote file with many requests in flight, reading answers as they come.

    paramiko's own pipelined ``SFTPFile.write`` sends 32 KiB requests and,
    once 100 are unanswered, waits for *all* of them: the link drains to
    empty every 3 MiB. Here requests are as large as the server allows, and
    only as many answers are awaited as it takes to get back under
    ``in_flight`` bytes (what the link holds), so the link stays busy.

    Each request is built once and goes to the channel as SSH data messages
    without paramiko's per-layer copies (:func:`send_data`): measured, 10%
    more throughput and 12% less CPU per byte on a 1 GiB put.

    Answers arrive through :meth:`_async_response`, in whatever order the
    server sends them.
    """

    def __init__(self, sftp: paramiko.SFTPClient, handle: bytes, offset: int,
                 request_size: int, in_flight: int) -> None:
        self._sftp, self._handle, self._pos = sftp, handle, offset
        self._request_size, self._limit = request_size, in_flight
        self._sizes: dict[int, int] = {}  # request number -> bytes not yet answered
        self._starts: dict[int, int] = {}  # request number -> its offset in the file
        self._in_flight = 0
        self._error: BaseException | None = None
        #: The end of what was written, short of a whole request: sent with
        #: the start of the next write (or by :meth:`finish`).
        self._carry: list[memoryview] = []
        self._carried = 0

    @property
    def answered(self) -> int:
        """Where the bytes the server has confirmed end without a gap: what a
        resume may trust (a later write may have landed before an earlier
        one, or failed)."""
        return min(self._starts.values(), default=self._pos)

    def write(self, data: bytes) -> None:
        """Send ``data`` (kept by reference, not copied) as whole requests;
        what is left short of one goes out with the next write's start."""
        view = memoryview(data).cast("B")
        size = self._request_size
        if self._carry:
            take = view[:size - self._carried]
            self._carry.append(take)
            self._carried += len(take)
            view = view[len(take):]
            if self._carried < size:
                return
            self._send(self._carry)
        whole = len(view) - len(view) % size
        for start in range(0, whole, size):
            self._send([view[start:start + size]])
        self._carry = [view[whole:]] if whole < len(view) else []
        self._carried = len(view) - whole

    def finish(self) -> None:
        """Send what is carried; wait for every answer; raise the first error
        the server reported."""
        if self._carry:
            self._send(self._carry)
        self._await(0)

    def _send(self, pieces: list[memoryview]) -> None:
        """One write request of ``pieces`` at the current offset."""
        length = sum(len(p) for p in pieces)
        self._carry, self._carried = [], 0
        sftp = self._sftp
        with sftp._lock:  # the request counter is shared with other requests
            num = sftp.request_number
            sftp.request_number += 1
            sftp._expecting[num] = self
        self._sizes[num] = length
        self._starts[num] = self._pos
        handle = self._handle
        # SSH_FXP_WRITE: length, type, id, string handle, uint64 offset, string data
        head = struct.pack(">IBII", 21 + len(handle) + length, CMD_WRITE, num,
                           len(handle)) + handle + struct.pack(">QI", self._pos, length)
        send_data(sftp.sock, head, *pieces)
        self._pos += length
        self._in_flight += length
        self._await(self._limit)

    def _await(self, limit: int) -> None:
        while self._in_flight > limit and self._error is None:
            self._sftp._read_response()  # one answer, handed to _async_response
        if self._error is not None:
            raise self._error

    def _async_response(self, kind: int, msg: paramiko.Message, num: int) -> None:
        # Called by paramiko for each answer to a request made with ``self``.
        self._in_flight -= self._sizes.pop(num, 0)
        if self._error is not None:
            return
        try:
            if kind != CMD_STATUS:
                raise paramiko.SFTPError(f"expected a status for a write, got type {kind}")
            self._sftp._convert_status(msg)
        except (OSError, EOFError, paramiko.SFTPError) as exc:
            self._error = exc  # its offset stays unanswered: a resume starts there
            return
        self._starts.pop(num, None)



__all__ = ["LINK_RATE", "MAX_IN_FLIGHT", "MIN_IN_FLIGHT", "PipelinedWriter"]

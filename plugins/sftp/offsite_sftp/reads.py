"""Pipelined SFTP reads: many read requests in flight, answers handed out in order.

A get keeps a bounded number of read requests ahead (:class:`PipelinedReader`),
each as large as the server announces, and reads each answer off the channel
with one copy (:mod:`offsite_sftp.wire`).
"""

from __future__ import annotations

import collections
import collections.abc
import struct

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from paramiko.sftp import CMD_DATA, CMD_READ, CMD_STATUS, SFTP_EOF

from offsite_sftp.wire import read_answer, send_data

#: Reads keep twice this many bytes asked for and not yet handed out (bounded memory).
READ_AHEAD = 4 << 20
#: A new read stream asks this much first, then twice as much after every
#: answer it hands out, up to READ_AHEAD x 2: a stream that reads a header
#: or an index and is closed (a restore opens dozens) does not leave
#: megabytes asked for, which must still cross the link and be drained.
FIRST_ASK = 64 << 10


class PipelinedReader:
    """Reads a remote file with many read requests in flight, handing answers out in order.

    Requests of the server's read size go out until :data:`READ_AHEAD` x 2
    bytes are asked for and not yet handed out (a new stream starts at
    :data:`FIRST_ASK` and doubles); each answer is read from the
    channel with one copy and handed out as slices of it. paramiko's ``readv``
    joined every answer from its 32 KiB channel pieces by repeated
    concatenation and copied it three more times on its way out.

    Several readers (and paramiko's own requests: an ``open``, a ``stat``)
    may share one SFTP session, used in turns from one thread: every read
    request is entered in paramiko's table of expected answers
    (``_expecting``) under the reader, so whoever reads an answer off the
    channel hands it to its reader (:meth:`_route`), and a reader waiting for
    its own keeps the others' for them. What a reader holds for itself is
    bounded by its own requests in flight. An answer to a closed reader's
    request is no longer expected, and is skipped.
    """

    def __init__(self, f: paramiko.SFTPFile, offset: int, size: int, request: int) -> None:
        self._f, self._sftp, self._handle = f, f.sftp, f.handle
        self._size, self._request = size, request
        self._pos = offset  # the file offset of the next byte handed out
        self._next = offset  # where asking goes on when there is no plan
        #: Ranges the caller said it reads next (``want``), not yet asked for;
        #: while a plan is given, nothing beyond it is asked speculatively.
        self._plan: collections.deque[tuple[int, int]] = collections.deque()
        self._planned = False
        self._asked: collections.deque[tuple[int, int, int]] = collections.deque()
        self._answers: dict[int, tuple[int, memoryview]] = {}
        self._in_flight = 0
        self._ahead = FIRST_ASK  # what may be asked for and not yet handed out
        self._current = memoryview(b"")  # bytes from _pos on
        self._eof = False

    def want(self, ranges: collections.abc.Sequence[tuple[int, int]], /) -> None:
        """The ``(offset, length)`` ranges the caller reads next, in file order
        (skipping between them): from now on only those are asked for."""
        for offset, length in ranges:
            # What is asked for already (up to _next) is not asked again.
            start, end = max(offset, self._next), min(offset + length, self._size)
            if start < end:
                self._plan.append((start, end - start))
        self._planned = True
        self._ask()

    def _ask(self) -> None:
        while self._in_flight < self._ahead:
            if self._plan:
                offset, length = self._plan[0]
                take = min(self._request, self._ahead, length)
                if take == length:
                    self._plan.popleft()
                else:
                    self._plan[0] = (offset + take, length - take)
                self._request_range(offset, take)
                self._next = offset + take
            elif not self._planned and self._next < self._size:
                length = min(self._request, self._ahead, self._size - self._next)
                self._request_range(self._next, length)
                self._next += length
            else:
                return

    def _request_range(self, offset: int, length: int, *, first: bool = False) -> None:
        sftp = self._sftp
        with sftp._lock:  # the request counter is shared with other requests
            num = sftp.request_number
            sftp.request_number += 1
            sftp._expecting[num] = self
        handle = self._handle
        # SSH_FXP_READ: length, type, id, string handle, uint64 offset, uint32 length
        msg = (struct.pack(">IBII", 21 + len(handle), CMD_READ, num, len(handle)) + handle
               + struct.pack(">QI", offset, length))
        send_data(sftp.sock, msg)
        if first:
            self._asked.appendleft((num, offset, length))
        else:
            self._asked.append((num, offset, length))
        self._in_flight += length

    def _drop(self, num: int, length: int) -> None:
        """Forget an asked request: its answer, when it comes, is nobody's."""
        self._in_flight -= length
        self._answers.pop(num, None)
        with self._sftp._lock:
            self._sftp._expecting.pop(num, None)

    def _piece(self) -> bool:
        """Make the bytes at ``_pos`` current; False at the end."""
        self._ask()
        while not self._eof and self._pos < self._size:
            if not self._asked or self._asked[0][1] > self._pos:
                # Bytes nobody asked for (off the plan): ask for them now, and
                # from there on as without a plan.
                stop = self._asked[0][1] if self._asked else self._size
                self._plan.clear()
                self._planned, self._ahead = False, FIRST_ASK
                self._request_range(self._pos, min(self._request, stop - self._pos), first=True)
                self._next = max(self._next, self._asked[-1][1] + self._asked[-1][2])
            num, offset, length = self._asked[0]
            while num not in self._answers:
                self._route(*read_answer(self._sftp.sock))
            kind, body = self._answers.pop(num)
            self._asked.popleft()
            self._in_flight -= length
            self._ahead = min(2 * READ_AHEAD, 2 * self._ahead)
            if kind == CMD_STATUS:
                code = struct.unpack_from(">I", body)[0]
                if code != SFTP_EOF:
                    self._sftp._convert_status(paramiko.Message(bytes(body)))
                self._eof = True  # the file ended early: it shrank since it was opened
                return False
            if kind != CMD_DATA:
                raise paramiko.SFTPError(f"expected data for a read, got type {kind}")
            n = struct.unpack_from(">I", body)[0]
            if n == 0:  # neither data nor the end: a server fault, not a reason to loop
                raise paramiko.SFTPError(f"the server answered a read at {offset} with no data")
            if n < length:  # a short answer: ask again for the rest, next in line
                self._request_range(offset + n, length - n, first=True)
            data = body[4:4 + n]
            if offset + n <= self._pos:
                continue  # wholly before where the caller stands (skipped into)
            self._current = data[self._pos - offset:]
            self._ask()
            return True
        return False

    def read(self, n: int = -1, /) -> bytes:
        parts: list[memoryview] = []
        want = n if n is not None and n >= 0 else self._size
        while want > 0:
            if not self._current and not self._piece():
                break
            take = self._current[:want]
            parts.append(take)
            want -= len(take)
            self._pos += len(take)
            self._current = self._current[len(take):]
        return b"".join(parts)

    def skip(self, n: int, /) -> int:
        """Drop the next ``n`` bytes; how many were dropped (fewer only at the end).

        Requests that lie wholly in the gap are dropped unread (their answers,
        when they come, are nobody's and are skipped), and the next ones are
        asked from past it: a jump forward costs no more than what was
        already on its way, where a new stream would cost that, a round trip
        and a fresh start of the read-ahead.
        """
        if self._eof:
            return 0
        target = min(self._pos + max(0, n), self._size)
        done = target - self._pos
        if done <= len(self._current):
            self._current = self._current[done:]
        else:
            self._current = memoryview(b"")
            while self._asked and self._asked[0][1] + self._asked[0][2] <= target:
                num, _offset, length = self._asked.popleft()
                self._drop(num, length)
            while self._plan and self._plan[0][0] + self._plan[0][1] <= target:
                self._plan.popleft()
            self._next = max(self._next, target)
        self._pos = target
        return done

    def _route(self, num: int, kind: int, body: memoryview) -> None:
        """Hand an answer read off the channel to whoever asked for it."""
        sftp = self._sftp
        with sftp._lock:
            owner = sftp._expecting.pop(num, None)
        if isinstance(owner, PipelinedReader):
            owner._answers[num] = (kind, body)
        elif owner is not None and owner is not type(None):
            # a writer's, or a paramiko file's: its own handler (paramiko
            # enters its synchronous requests as ``type(None)``)
            msg = paramiko.Message(struct.pack(">I", num) + bytes(body))
            msg.get_int()
            owner._async_response(kind, msg, num)
        # else: an answer to a closed reader's request: skipped

    def _async_response(self, kind: int, msg: paramiko.Message, num: int) -> None:
        # paramiko's hand-over, while it waits for another request's answer
        # (an ``open`` of another file, a ``stat``): keep it for later.
        self._answers[num] = (kind, memoryview(msg.asbytes())[4:])

    def close(self) -> None:
        while self._asked:  # answers still on their way are no longer anyone's
            num, _offset, length = self._asked.popleft()
            self._drop(num, length)
        self._answers.clear()
        self._f.close()



__all__ = ["FIRST_ASK", "READ_AHEAD", "PipelinedReader"]

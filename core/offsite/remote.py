"""Files at a target read by offset, through a few forward ``get`` streams.

The contract reads a remote file one way: ``get(path, offset)`` opens a
stream from ``offset`` to the end. An :class:`~offsite.image.reader.ImageReader`
reads by offset (``pread``), in forward runs: the header, the footer, then
the index and the payloads, each from its start onwards.
:class:`RemoteAccess` serves those reads from open streams: a read where a
stream of the file stands continues it, a short gap forward (up to
:data:`SKIP`) is read and dropped, a longer one too where the plugin's
stream skips without reading (its optional ``skip``: offsite-sftp drops the
requests in the gap), anything else opens a new stream at the offset. A
read holds no more than it returns (at most one payload) plus a
:data:`PIECE` while it skips.

A read that ends where the file ends (an image's footer) takes up to
:data:`TAIL` bytes before it along (not more than an open stream that
reads on to it would pass), and the file keeps them until a read falls
outside them: the index, which lies just before the footer, then costs no
``get`` of its own for most images. A stream that has reached
the end of its file is closed at once, so that it does not take the place
of one that will be read on (an image's header stream, which the payloads
continue). A file also keeps the first bytes read from its start (up to
:data:`HEAD`): the header, which a restore reads once to find the chain
and again to restore it, through the same :class:`RemoteFiles`.

The streams of one session live in one :class:`Streams`, shared by every
file read through it: at most ``limit`` open at once, the least recently
used closed first, all closed by :meth:`Streams.close`. The limit is one by
default because the contract does not promise that a connection serves two
open streams at once. One stream per session costs a new ``get`` at each
switch between index and payloads, or between images; the readers keep
those rare (the index is read 4096 entries at a time, a restore merges in
rounds, see :mod:`offsite.image.restore`; measured on SFTP, a larger limit
sent no fewer bytes). Where a caller knows its connection serves several,
a larger limit lets each forward run keep a stream of its own.

Not thread-safe: one reader at a time per :class:`Streams`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from offsite.transport import Readable

#: A forward gap up to this is read and dropped rather than answered with a
#: new ``get``: cheaper than a request and its round trips (and, over SFTP,
#: the read-ahead a new stream asks for).
SKIP = 1 << 20
#: Any forward gap, for a stream that skips without reading.
FAR = 1 << 62
#: The most a skip holds at once.
PIECE = 64 << 10
#: What a read up to a file's end takes before it along (see the module doc):
#: the index of an image of up to 4,600 blocks (56 bytes an entry).
TAIL = 256 << 10
#: What a file keeps of the bytes read from its start on: an image's header,
#: read once when a restore looks for the chain and again when it restores.
HEAD = 64 << 10


class Getter(Protocol):
    """What :class:`Streams` opens streams with (an :class:`offsite.session.Session`)."""

    def get(self, path: str, offset: int = 0) -> Readable: ...


class _Stream:
    """One open ``get`` stream of one file, and where it stands."""

    def __init__(self, owner: RemoteAccess, stream: Readable, position: int) -> None:
        self.owner = owner
        self.stream = stream
        self.position = position

    def read(self, length: int) -> bytes:
        """Up to ``length`` bytes from where the stream stands (fewer at its end)."""
        first = self.stream.read(length)
        if len(first) in (0, length):
            self.position += len(first)
            return first
        parts = [first]
        got = len(first)
        while got < length:
            chunk = self.stream.read(length - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        self.position += got
        return b"".join(parts)

    @property
    def horizon(self) -> int:
        """How far forward this stream is worth skipping to rather than
        opening a new one: anywhere where the plugin's stream skips without
        reading (the session's ``can_skip``), else its ``skip_horizon`` (a
        new ``get`` costs a request: S3), else :data:`SKIP`."""
        if getattr(self.stream, "can_skip", False):
            return FAR
        declared = getattr(self.stream, "skip_horizon", None)
        return SKIP if declared is None else max(SKIP, int(declared))

    def skip(self, length: int) -> bool:
        """Drop ``length`` bytes (read and dropped, unless the plugin's stream
        skips by itself); False if the stream ended first."""
        if getattr(self.stream, "can_skip", False):
            skipped: int = self.stream.skip(length)  # type: ignore[attr-defined]
            self.position += skipped
            return skipped == length
        while length:
            dropped = len(self.read(min(length, PIECE)))
            if not dropped:
                return False
            length -= dropped
        return True


class Streams:
    """The ``get`` streams open on one session, for every file read through it.

    :param session: what opens streams (``get(path, offset)``).
    :param limit: how many may be open at once; more than one only where
        the session's connection serves several at once (see the module doc).
    """

    def __init__(self, session: Getter, *, limit: int = 1) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.session = session
        self.limit = limit
        #: Open streams, least recently used first.
        self._open: OrderedDict[int, _Stream] = OrderedDict()
        #: How many ``get`` streams were opened (for the curious and the tests).
        self.opened = 0

    def read(self, owner: RemoteAccess, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes of ``owner``'s file from ``offset``."""
        stream = self._stream(owner, offset)
        try:
            data = stream.read(length)
        except BaseException:
            self._close(stream)
            raise
        if len(data) < length or stream.position >= owner.size:
            self._close(stream)  # the file ends: nothing more to read from this one
        return data

    def plan(self, owner: RemoteAccess, ranges: Sequence[tuple[int, int]]) -> None:
        """Hand ``ranges`` (forward, in file order) to the stream that will
        read them, where the plugin's stream takes a plan (``want``)."""
        stream = self._stream(owner, ranges[0][0])
        if getattr(stream.stream, "can_want", False):
            stream.stream.want(ranges)  # type: ignore[attr-defined]

    def standing(self, owner: RemoteAccess, offset: int) -> int | None:
        """Where the open stream of ``owner``'s file that a read at ``offset``
        would go on with stands (at ``offset`` or a little before it); None
        if such a read opens a new ``get``."""
        stream = self._nearest(owner, offset)
        return None if stream is None else stream.position

    def _nearest(self, owner: RemoteAccess, offset: int) -> _Stream | None:
        best: _Stream | None = None
        for candidate in self._open.values():
            if (candidate.owner is owner and candidate.position <= offset
                    <= candidate.position + candidate.horizon
                    and (best is None or candidate.position > best.position)):
                best = candidate
        return best

    def _stream(self, owner: RemoteAccess, offset: int) -> _Stream:
        """A stream of ``owner``'s file standing at ``offset``: one that stands
        there or a little before it, else a new one."""
        best = self._nearest(owner, offset)
        if best is not None:
            self._open.move_to_end(id(best))
            try:
                if best.skip(offset - best.position):
                    return best
            except BaseException:
                self._close(best)
                raise
            self._close(best)  # ended inside the gap: the file is shorter than it was
        while len(self._open) >= self.limit:
            self._close(next(iter(self._open.values())))
        stream = _Stream(owner, self.session.get(owner.path, offset), offset)
        self.opened += 1
        self._open[id(stream)] = stream
        return stream

    def _close(self, stream: _Stream) -> None:
        self._open.pop(id(stream), None)
        stream.stream.close()

    def close(self, owner: RemoteAccess | None = None) -> None:
        """Close ``owner``'s streams, or every stream."""
        for stream in list(self._open.values()):
            if owner is None or stream.owner is owner:
                self._close(stream)

    def __enter__(self) -> Streams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteAccess:
    """A file at a target as a :class:`~offsite.image.reader.RandomAccess`.

    :param streams: the session's :class:`Streams`, or the session itself
        (then the file gets streams of its own, one at a time).
    :param path: the file's path at the target; errors name it.
    :param size: its size, as the target's listing reports it.
    """

    def __init__(self, streams: Streams | Getter, path: str, size: int) -> None:
        self.streams = streams if isinstance(streams, Streams) else Streams(streams)
        self.path = path
        self.name = path
        self.size = size
        #: The file's last bytes and where they start, read with its end (see
        #: the module doc); dropped at the first read outside them.
        self._tail: tuple[int, bytes] | None = None
        #: The bytes read so far from the file's start on, up to :data:`HEAD`.
        self._head = b""

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; fewer only where the file
        ends (or where it really ends, if it shrank since it was listed)."""
        length = max(0, min(length, self.size - offset))
        if not length:
            return b""  # no stream for nothing: zero blocks, reads past the end
        head = self._head
        if offset + length <= len(head):
            return head[offset:offset + length]
        if self._tail is not None:
            start, tail = self._tail
            if start <= offset and offset + length <= start + len(tail):
                return tail[offset - start:offset - start + length]
            self._tail = None  # the reader has moved on
        if offset + length == self.size and length < TAIL:
            # From TAIL before the end, but not before what is kept of the
            # start, nor before where a stream that reads on stands (a file
            # read through to its end opens no new get for its last piece).
            start = max(0, self.size - TAIL, len(head) if len(head) <= offset else 0)
            standing = self.streams.standing(self, offset)
            if standing is not None:
                start = max(start, standing)
            tail = self.streams.read(self, self.size - start, start)
            if start + len(tail) == self.size:  # else it shrank: read as asked below
                self._tail = (start, tail)
                return tail[offset - start:]
        data = self.streams.read(self, length, offset)
        if offset == len(head) and offset + len(data) <= HEAD:
            self._head = head + data
        return data

    def will_read(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Say that ``(offset, length)`` ranges of the file, in file order, are
        read next: a stream that can (its optional ``want``) asks for just
        those, not the bytes between them. Nothing is read here."""
        ranges = [(o, n) for o, n in ranges if n > 0 and o < self.size]
        if ranges:
            self.streams.plan(self, ranges)

    def close(self) -> None:
        """Close this file's streams (the others stay open)."""
        self._tail, self._head = None, b""
        self.streams.close(self)

    def __enter__(self) -> RemoteAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteAccess {self.path} {self.size} bytes>"


class RemoteFiles:
    """Files at one target, each opened once, read through one :class:`Streams`.

    A file asked for again is the same :class:`RemoteAccess`, with what it
    keeps (header, tail) and its streams where they stand: a restore reads
    each image of the chain once to find the chain and again to restore it,
    and the second time opens no ``get`` for what the first one read.
    Closing closes every file.
    """

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self._files: dict[str, RemoteAccess] = {}

    def open(self, path: str, size: int) -> RemoteAccess:
        """The file at ``path`` (of ``size`` bytes, as listed)."""
        access = self._files.get(path)
        if access is None or access.size != size:
            access = self._files[path] = RemoteAccess(self.streams, path, size)
        return access

    def close(self) -> None:
        for access in self._files.values():
            access.close()
        self._files.clear()
        self.streams.close()

    def __enter__(self) -> RemoteFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

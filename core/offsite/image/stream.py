"""Images as upload sources that check themselves while they stream.

:class:`ImageSource` is one image file as a :class:`~offsite.transport.Source`
(a :class:`~offsite.image.consolidate.Consolidation` is the other kind). Its
structure, index and footer hash are checked when it is made, before any
byte moves; then every payload's SHA-256 is checked against the index
*before* any of its bytes are handed on. So a damaged image is refused
before a damaged byte leaves the machine, its upload never completes (a
target never publishes it), and each byte is read once, not once to verify
and again to send.

:class:`ChunkStream` turns such a stream of checked pieces into the file-like
object a ``put`` reads.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from offsite.errors import CorruptImage
from offsite.image.format import Entry
from offsite.image.reader import ImageReader

#: Largest piece handed out at once while streaming.
PIECE = 1 << 20


class Cut:
    """Cuts the pieces of an output stream to what lies at or past ``offset``."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.pos = 0

    def __call__(self, data: bytes | memoryview) -> Iterator[bytes | memoryview]:
        """What of the next piece lies past the offset (nothing, all, or its tail)."""
        start = max(0, self.offset - self.pos)
        self.pos += len(data)
        if start < len(data):
            yield data[start:]

    def skips(self, length: int) -> bool:
        """Whether the next ``length`` bytes lie wholly before the offset; if so,
        they are counted as passed (the caller need not even read them)."""
        if self.pos + length <= self.offset:
            self.pos += length
            return True
        return False

    def pieces(self, data: bytes) -> Iterator[bytes | memoryview]:
        """The part of ``data`` past the offset, in pieces of at most :data:`PIECE`."""
        view = memoryview(data)
        for start in range(0, len(view), PIECE):
            yield from self(view[start:start + PIECE])


class ImageSource:
    """One image file as an upload source that checks every byte it hands out.

    :raises ImageError: the image is incomplete, not an image, or its header,
        index or footer is damaged (nothing has been read past those).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with ImageReader(self.path) as reader:
            for _entry in reader.entries():
                pass
            reader.check_footer()
            self.size = reader.size
            self._digest: bytes = reader.digest

    @property
    def digest(self) -> str:
        """The image's root digest in hex: the footer's SHA-256 over header and
        index, which holds every payload's SHA-256 (so it stands for every byte)."""
        return self._digest.hex()

    def chunks(self, offset: int = 0) -> Iterator[bytes | memoryview]:
        """The file's bytes from ``offset``, each payload checked before it is handed out.

        Payloads wholly before ``offset`` (sent by an earlier, interrupted
        upload, and checked then) are not read again.
        """
        with ImageReader(self.path) as reader:
            if reader.size != self.size or reader.digest != self._digest:
                raise CorruptImage("the image changed while it was being uploaded",
                                   file=self.path)
            cut = Cut(offset)
            yield from cut(reader.header)
            for entry in reader.entries():
                if not cut.skips(entry.length):
                    yield from cut.pieces(reader.stored(entry))
            for piece in reader.index_chunks():
                yield from cut(piece)
            yield from cut(reader.footer)

    def open(self, offset: int = 0) -> BinaryIO:
        """A stream of the file from ``offset`` (the :class:`Source` protocol)."""
        return ChunkStream.reader(self.chunks(offset))


class Checker(threading.Thread):
    """Checks payloads' SHA-256 in a thread of its own, e.g. those a
    consolidation copies inside the kernel, while the copy goes on."""

    def __init__(self, pairs: Iterable[tuple[ImageReader, Entry]]) -> None:
        super().__init__(name="offsite-image-check", daemon=True)
        self._pairs = pairs
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for reader, entry in self._pairs:
                if self._halt.is_set():
                    return
                if not entry.zero:
                    reader.stored(entry)  # raises CorruptImage on a mismatch
        except BaseException as exc:  # handed to the caller by join()
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            super().join()


class ChunkStream(io.RawIOBase):
    """A raw stream over an iterator of byte strings; closing it closes the iterator."""

    def __init__(self, chunks: Iterator[bytes | memoryview]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    @classmethod
    def reader(cls, chunks: Iterator[bytes | memoryview]) -> BinaryIO:
        """A buffered reader over ``chunks``."""
        return io.BufferedReader(cls(chunks), buffer_size=PIECE)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                close = getattr(self._chunks, "close", None)
                if close is not None:
                    close()  # a generator's finally blocks run now, not at GC
            finally:
                super().close()

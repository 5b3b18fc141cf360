"""Consolidation: many images of one chain into one, by a streaming k-way merge.

``Consolidation(paths)`` plans the merge of a chain segment (incrementals
a..b, or a full plus incrementals, which gives a synthetic full). For each
block the newest version wins; payloads are copied verbatim (never
decompressed or recompressed) and their index checksums carried over, so the
output costs one read and one write of the winning payloads. Memory is
O(k) index readers plus one payload at a time.

The output's exact size is known before its first byte (a first pass over
the indexes only), and a :class:`Consolidation` is an
:class:`offsite.transport.Source`: ``open(offset)`` streams the output from
any offset, so it can go straight into a target's ``put`` (and resume there)
with no temporary file.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from offsite.durable import publish
from offsite.errors import CorruptImage
from offsite.image.chain import check_segment
from offsite.image.format import (
    ENTRY,
    FOOTER,
    Entry,
    Metadata,
    footer_bytes,
    footer_digest,
    header_bytes,
)
from offsite.image.reader import ImageReader
from offsite.image.writer import temporary_path

#: Largest piece of a payload handed out at once while streaming.
PIECE = 1 << 20


def merge(readers: Sequence[ImageReader]) -> Iterator[tuple[ImageReader, Entry]]:
    """The newest entry for every block present in any of ``readers`` (oldest
    first), in block order, streaming each index."""
    def ranked(rank: int, reader: ImageReader) -> Iterator[tuple[int, int, Entry]]:
        # a function, not a generator expression: rank must bind per reader
        for entry in reader.entries():
            yield entry.block, -rank, entry

    streams = [ranked(rank, reader) for rank, reader in enumerate(readers)]
    last = -1
    for block, negrank, entry in heapq.merge(*streams):
        if block != last:
            last = block
            yield readers[-negrank], entry


def output_metadata(metas: Sequence[Metadata]) -> Metadata:
    """What the consolidation of a chain segment says about itself."""
    first, last = metas[0], metas[-1]
    compressions = {m.compression for m in metas}
    return Metadata(
        kind=first.kind,
        set_id=first.set_id,
        label=first.label,
        generation=first.generation,
        seq_first=first.seq_first,
        seq_last=last.seq_last if first.kind == "incremental" else 0,
        state=last.state,
        parent_state=first.parent_state,
        block_size=first.block_size,
        volume_size=first.volume_size,
        # per-block flags decide; a mix reads as zstd ("may be compressed")
        compression=compressions.pop() if len(compressions) == 1 else "zstd",
        # The newest member's time, not now: the same inputs always give the
        # same bytes, so an interrupted upload resumes onto a matching prefix.
        created=last.created,
    )


class Consolidation:
    """The planned merge of a chain segment; use as a context manager.

    :param paths: the images, oldest first; each must apply to the one before.
    :param check: verify every payload's SHA-256 while streaming (a corrupt
        input then fails the stream, so a put never completes with it).
    :raises ImageError: an input is not a complete, sound image, or the
        inputs do not form one unbroken run of a chain.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, check: bool = True) -> None:
        if not paths:
            raise ValueError("nothing to consolidate")
        self.paths = [Path(p) for p in paths]
        self.check = check
        self.readers: list[ImageReader] = []
        try:
            for p in self.paths:
                self.readers.append(ImageReader(p))
            check_segment([r.meta for r in self.readers], self.paths)
            self.meta = output_metadata([r.meta for r in self.readers])
            self.header = header_bytes(self.meta)
            count = payload = 0
            for _reader, entry in merge(self.readers):
                count += 1
                payload += entry.length
        except BaseException:
            self.close()
            raise
        self.count = count
        self.index_offset = len(self.header) + payload
        #: The exact size of the output, known before its first byte.
        self.size = self.index_offset + count * ENTRY.size + FOOTER.size

    # -- producing the bytes ---------------------------------------------------

    def _index(self) -> Iterator[bytes]:
        offset = len(self.header)
        batch = bytearray()
        for _reader, entry in merge(self.readers):
            batch += Entry(entry.block, offset, entry.length, entry.flags, entry.checksum).pack()
            offset += entry.length
            if len(batch) >= PIECE:
                yield bytes(batch)
                batch.clear()
        if batch:
            yield bytes(batch)

    def _payload(self, reader: ImageReader, entry: Entry, skip: int) -> Iterator[bytes]:
        """The stored bytes of one entry, from ``skip``, checked if asked."""
        digest = hashlib.sha256() if self.check and not entry.zero else None
        done = 0
        while done < entry.length:
            n = min(PIECE, entry.length - done)
            piece = os.pread(reader.fileno(), n, entry.offset + done)
            if len(piece) != n:
                raise CorruptImage("file ends inside a payload", file=reader.path,
                                   block=entry.block, offset=entry.offset + done)
            if digest is not None:
                digest.update(piece)
            if done + n > skip:
                yield piece[max(0, skip - done):]
            done += n
        if digest is not None and digest.digest() != entry.checksum:
            raise CorruptImage("payload SHA-256 does not match the index", file=reader.path,
                               block=entry.block, offset=entry.offset)

    def chunks(self, offset: int = 0) -> Iterator[bytes]:
        """The output's bytes from ``offset``, in pieces of at most 1 MiB."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} outside 0..{self.size}")
        pos = 0

        def emit(data: bytes) -> Iterator[bytes]:
            nonlocal pos
            start = max(0, offset - pos)
            pos += len(data)
            if start < len(data):
                yield data[start:]

        yield from emit(self.header)
        for reader, entry in merge(self.readers):
            if pos + entry.length <= offset:  # wholly before the offset: not even read
                pos += entry.length
                continue
            skip = max(0, offset - pos)
            yield from self._payload(reader, entry, skip)
            pos += entry.length
        for piece in self._index():
            yield from emit(piece)
        digest = footer_digest(self.header, self._index(), self.index_offset, self.count)
        yield from emit(footer_bytes(self.index_offset, self.count, digest))

    def open(self, offset: int = 0) -> BinaryIO:
        """A stream of the output from ``offset`` (the :class:`Source` protocol)."""
        return io.BufferedReader(_ChunkStream(self.chunks(offset)), buffer_size=PIECE)

    def write_to(self, out: BinaryIO) -> int:
        """Write the whole output into ``out``; returns the bytes written."""
        written = 0
        for chunk in self.chunks():
            out.write(chunk)
            written += len(chunk)
        return written

    def write_file(self, output: Path) -> Path:
        """Write the output to ``output`` (temporary name, fsync, publish).

        The fast path for a local file: payloads are copied inside the kernel
        (``copy_file_range``) while a second thread checks their SHA-256 from
        the page cache; the file is published only if every check passed.

        :raises FileExistsError: ``output`` exists (nothing is overwritten).
        :raises CorruptImage: an input payload is damaged (nothing is written).
        """
        if output.exists():
            raise FileExistsError(f"{output} exists; offsite never writes over a file")
        tmp = temporary_path(output)
        checker = _Checker(self.readers) if self.check else None
        try:
            if checker is not None:
                checker.start()
            with open(tmp, "wb") as out:
                out.write(self.header)
                out.flush()
                fd = out.fileno()
                for reader, entry in merge(self.readers):
                    reader.copy_payload(entry, fd)
                for piece in self._index():
                    out.write(piece)
                digest = footer_digest(self.header, self._index(), self.index_offset, self.count)
                out.write(footer_bytes(self.index_offset, self.count, digest))
                out.flush()
                os.fsync(fd)  # while the checker may still be hashing: both release the GIL
                if checker is not None:
                    checker.join()
            if os.path.getsize(tmp) != self.size:
                raise CorruptImage(f"wrote {os.path.getsize(tmp)} bytes, announced {self.size}",
                                   file=output)
            publish(tmp, output)
        except BaseException:
            if checker is not None:
                checker.stop()
            tmp.unlink(missing_ok=True)
            raise
        return output

    def close(self) -> None:
        for reader in self.readers:
            reader.close()

    def __enter__(self) -> Consolidation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Checker(threading.Thread):
    """Checks every winning payload's SHA-256 while the main thread copies."""

    def __init__(self, readers: Sequence[ImageReader]) -> None:
        super().__init__(name="offsite-consolidate-check", daemon=True)
        self._readers = readers
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for reader, entry in merge(self._readers):
                if self._halt.is_set():
                    return
                if not entry.zero:
                    reader.stored(entry)  # raises CorruptImage on a mismatch
        except BaseException as exc:  # handed to the main thread by join()
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._halt.set()
        super().join()


class _ChunkStream(io.RawIOBase):
    """A raw stream over an iterator of byte strings."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

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

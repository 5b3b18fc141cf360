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

import heapq
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from offsite.durable import WriteBehind, publish
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
from offsite.image.stream import PIECE, Checker, ChunkStream, Cut
from offsite.image.writer import temporary_path


def _ranked(readers: Sequence[ImageReader]) -> Iterator[tuple[int, int, Entry]]:
    """Every entry of every reader as (block, -rank, entry), in that order."""
    def ranked(rank: int, reader: ImageReader) -> Iterator[tuple[int, int, Entry]]:
        # a function, not a generator expression: rank must bind per reader
        for entry in reader.entries():
            yield entry.block, -rank, entry

    return heapq.merge(*(ranked(rank, reader) for rank, reader in enumerate(readers)))


def merge(readers: Sequence[ImageReader]) -> Iterator[tuple[ImageReader, Entry]]:
    """The newest entry for every block present in any of ``readers`` (oldest
    first), in block order, streaming each index."""
    last = -1
    for block, negrank, entry in _ranked(readers):
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
    :param check: check the inputs' footer hashes now, and the SHA-256 of
        every payload the output copies while streaming, before any of its
        bytes are handed out: a damaged block in the output fails the
        stream, so a put never completes with it. Payloads a newer input
        rewrote are neither read nor checked: the output holds none of
        their bytes (``offsite image verify`` checks a destination whole).
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
                if check:
                    self.readers[-1].check_footer()
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

    @property
    def digest(self) -> str:
        """The output's root digest in hex (its footer's SHA-256; see
        :attr:`offsite.image.stream.ImageSource.digest`), from the indexes only."""
        return footer_digest(self.header, self._index(), self.index_offset, self.count).hex()

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

    def _payload(self, reader: ImageReader, entry: Entry) -> bytes:
        """The stored bytes of one entry, checked if asked: held whole (one
        block at most) so that none of it is handed out before the check."""
        return reader.stored(entry, check=self.check)

    def chunks(self, offset: int = 0) -> Iterator[bytes | memoryview]:
        """The output's bytes from ``offset``, in pieces of at most 1 MiB."""
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} outside 0..{self.size}")
        cut = Cut(offset)
        yield from cut(self.header)
        for reader, entry in merge(self.readers):
            if not cut.skips(entry.length):  # wholly before the offset: not even read
                yield from cut.pieces(self._payload(reader, entry))
        for piece in self._index():
            yield from cut(piece)
        digest = footer_digest(self.header, self._index(), self.index_offset, self.count)
        yield from cut(footer_bytes(self.index_offset, self.count, digest))

    def open(self, offset: int = 0) -> BinaryIO:
        """A stream of the output from ``offset`` (the :class:`Source` protocol)."""
        return ChunkStream.reader(self.chunks(offset))

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
        the page cache, and the disk writes them as they come
        (:class:`~offsite.durable.WriteBehind`) rather than all at the fsync;
        the file is published only if every check passed.

        :raises FileExistsError: ``output`` exists (nothing is overwritten).
        :raises CorruptImage: an input payload is damaged (nothing is written).
        """
        if output.exists():
            raise FileExistsError(f"{output} exists; offsite never writes over a file")
        tmp = temporary_path(output)
        checker = Checker(merge(self.readers)) if self.check else None
        try:
            if checker is not None:
                checker.start()
            with open(tmp, "wb") as out:
                out.write(self.header)
                out.flush()
                fd = out.fileno()
                behind = WriteBehind(fd, len(self.header))
                for reader, entry in merge(self.readers):
                    reader.copy_payload(entry, fd)
                    behind.wrote(entry.length)
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

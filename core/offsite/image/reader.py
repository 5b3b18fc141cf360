"""Reading OFI images, trusting nothing in the file until it is checked.

Opening an image checks the header and the footer (cheap: two small reads);
:meth:`ImageReader.entries` streams the index and checks each entry as it
goes (order, bounds, tiling of the payload area), and
:meth:`ImageReader.block` checks a payload's SHA-256 and decompressed length
before handing out its bytes. No length read from the file is used to
allocate memory before it has been checked against the file's real size and
the format's limits.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zstandard

from offsite.errors import CorruptImage, IncompleteImage, NotAnImage, UnsupportedVersion
from offsite.image.format import (
    ENTRY,
    FLAG_ZERO,
    FLAG_ZSTD,
    FOOTER,
    FOOTER_MAGIC,
    HEADER,
    KNOWN_FLAGS,
    MAGIC,
    MAX_METADATA,
    NO_CHECKSUM,
    VERSION,
    Entry,
    Metadata,
    footer_digest,
)

#: Index entries read per chunk while streaming the index.
_ENTRIES_PER_READ = 4096


def _zstd_length_ok(raw_length: int, stored: int) -> bool:
    return 0 < stored <= raw_length


class ImageReader:
    """An open OFI image. Use as a context manager, or call :meth:`close`.

    :raises NotAnImage: the magic is wrong.
    :raises UnsupportedVersion: another major format version.
    :raises IncompleteImage: no valid footer (still being written, or cut short).
    :raises CorruptImage: header, footer and file size disagree.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            self._open()
        except BaseException:
            os.close(self._fd)
            raise

    def _pread(self, length: int, offset: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise IncompleteImage(f"expected {length} bytes at offset {offset}, file ends",
                                  file=self.path)
        return data

    def _open(self) -> None:
        self.size = os.fstat(self._fd).st_size
        if self.size < HEADER.size:
            head = os.pread(self._fd, len(MAGIC), 0)
            if MAGIC.startswith(head):
                raise IncompleteImage(f"only {self.size} bytes", file=self.path)
            raise NotAnImage("too short", file=self.path)
        magic, major, minor, meta_len = HEADER.unpack(self._pread(HEADER.size, 0))
        if magic != MAGIC:
            raise NotAnImage("wrong magic", file=self.path, offset=0)
        if major != VERSION[0]:
            raise UnsupportedVersion(file=self.path, version=f"{major}.{minor}")
        self.version = (major, minor)
        if meta_len > MAX_METADATA:
            raise CorruptImage(f"metadata length {meta_len} exceeds {MAX_METADATA}",
                               file=self.path, offset=HEADER.size - 4)
        self.payload_start = HEADER.size + meta_len
        if self.size < self.payload_start + FOOTER.size:
            raise IncompleteImage(f"{self.size} bytes, no room for a footer", file=self.path)
        self.header = self._pread(self.payload_start, 0)
        footer_at = self.size - FOOTER.size
        self.footer = self._pread(FOOTER.size, footer_at)
        index_offset, count, digest, end_magic = FOOTER.unpack(self.footer)
        if end_magic != FOOTER_MAGIC:
            raise IncompleteImage("no footer at the end of the file", file=self.path,
                                  offset=footer_at)
        self.meta = Metadata.from_json(self.header[HEADER.size:], file=self.path)
        if not self.payload_start <= index_offset <= footer_at:
            raise CorruptImage(f"index offset {index_offset} lies outside the file",
                               file=self.path, offset=footer_at)
        if index_offset + count * ENTRY.size != footer_at:
            raise CorruptImage(f"{count} index entries do not fit between offset "
                               f"{index_offset} and the footer", file=self.path, offset=footer_at)
        if count > self.meta.block_count:
            raise CorruptImage(f"{count} index entries for {self.meta.block_count} blocks",
                               file=self.path, offset=footer_at)
        self.index_offset = index_offset
        self.count = count
        self.digest = digest

    # -- the index -----------------------------------------------------------

    def index_chunks(self) -> Iterator[bytes]:
        """The index's raw bytes, in pieces (unchecked: see :meth:`check_footer`)."""
        at, left = self.index_offset, self.count * ENTRY.size
        step = _ENTRIES_PER_READ * ENTRY.size
        while left:
            n = min(step, left)
            yield self._pread(n, at)
            at += n
            left -= n

    def entries(self) -> Iterator[Entry]:
        """Stream the index, checking every entry.

        :raises CorruptImage: an entry out of order, out of bounds, with
            unknown flags, a length that does not fit its block, or payloads
            that do not tile the area between header and index.
        """
        meta = self.meta
        expected_offset = self.payload_start
        previous = -1
        position = self.index_offset
        for chunk in self.index_chunks():
            for fields in ENTRY.iter_unpack(chunk):
                entry = Entry(*fields)
                self._check_entry(entry, previous, expected_offset, position, meta)
                previous = entry.block
                expected_offset += entry.length
                position += ENTRY.size
                yield entry
        if expected_offset != self.index_offset:
            raise CorruptImage(f"payloads end at {expected_offset}, the index starts at "
                               f"{self.index_offset}", file=self.path, offset=expected_offset)
        if meta.kind == "full" and self.count != meta.block_count:
            raise CorruptImage(f"a full image must list all {meta.block_count} blocks, "
                               f"it lists {self.count}", file=self.path)

    def _check_entry(self, e: Entry, previous: int, expected_offset: int, position: int,
                     meta: Metadata) -> None:
        def bad(why: str) -> CorruptImage:
            return CorruptImage(f"index entry: {why}", file=self.path, block=e.block,
                                offset=position)

        if e.block <= previous:
            raise bad(f"block {e.block} after block {previous}: the index must be sorted")
        if e.block >= meta.block_count:
            raise bad(f"block number beyond the volume's {meta.block_count} blocks")
        if e.offset != expected_offset:
            raise bad(f"payload offset {e.offset}, expected {expected_offset}")
        if e.flags & ~KNOWN_FLAGS:
            raise bad(f"unknown flags {e.flags:#x}")
        raw = meta.raw_length(e.block)
        if e.flags & FLAG_ZERO:
            if e.flags != FLAG_ZERO or e.length or e.checksum != NO_CHECKSUM:
                raise bad("a zero block must have no payload, no other flag and no checksum")
        elif e.flags & FLAG_ZSTD:
            if not _zstd_length_ok(raw, e.length):
                raise bad(f"compressed length {e.length} for a {raw}-byte block")
        elif e.length != raw:
            raise bad(f"stored length {e.length} for an uncompressed {raw}-byte block")
        if e.offset + e.length > self.index_offset:
            raise bad("payload runs into the index")

    def check_footer(self) -> None:
        """Check the footer's SHA-256 over header, index and counts.

        :raises CorruptImage: it does not match.
        """
        digest = footer_digest(self.header, self.index_chunks(), self.index_offset, self.count)
        if digest != self.digest:
            raise CorruptImage("footer SHA-256 does not match the header and index",
                               file=self.path, offset=self.size - FOOTER.size + 16)

    # -- payloads ------------------------------------------------------------

    def stored(self, entry: Entry, *, check: bool = True) -> bytes:
        """The stored (possibly compressed) bytes of ``entry``, checksum checked."""
        data = self._pread(entry.length, entry.offset)
        if check and not entry.zero and hashlib.sha256(data).digest() != entry.checksum:
            raise CorruptImage("payload SHA-256 does not match the index", file=self.path,
                               block=entry.block, offset=entry.offset)
        return data

    def block(self, entry: Entry, decompressor: Any = None) -> bytes:
        """The raw bytes of ``entry``'s block, checked.

        :param decompressor: a ``zstandard.ZstdDecompressor`` to reuse.
        :raises CorruptImage: checksum or decompressed length wrong.
        """
        raw = self.meta.raw_length(entry.block)
        if entry.zero:
            return bytes(raw)
        data = self.stored(entry)
        if entry.flags & FLAG_ZSTD:
            try:
                data = (decompressor or zstandard.ZstdDecompressor()).decompress(
                    data, max_output_size=raw)
            except zstandard.ZstdError as exc:
                raise CorruptImage(f"zstd: {exc}", file=self.path, block=entry.block,
                                   offset=entry.offset) from None
        if len(data) != raw:
            raise CorruptImage(f"block holds {len(data)} bytes, expected {raw}",
                               file=self.path, block=entry.block, offset=entry.offset)
        return data

    def copy_payload(self, entry: Entry, out_fd: int) -> None:
        """Copy ``entry``'s stored bytes to ``out_fd`` in the kernel, unhashed."""
        left, at = entry.length, entry.offset
        while left:
            n = os.copy_file_range(self._fd, out_fd, left, at)
            if n == 0:
                raise IncompleteImage(f"file ends inside block {entry.block}", file=self.path)
            left -= n
            at += n

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        return f"<ImageReader {self.path.name} {m.kind} seq {m.seq_first}..{m.seq_last}>"

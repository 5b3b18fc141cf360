"""Reading OFI images, trusting nothing in the file until it is checked.

Opening an image checks the header and the footer (cheap: two small reads);
:meth:`ImageReader.entries` streams the index and checks each entry as it
goes (order, bounds, tiling of the payload area), and
:meth:`ImageReader.block` checks a payload's SHA-256 and decompressed length
before handing out its bytes. No length read from the file is used to
allocate memory before it has been checked against the file's real size and
the format's limits.

A reader reads by offset through a :class:`RandomAccess`: a local file
(:class:`LocalFile`, ``os.pread``) when given a path, or anything else that
reads a file's bytes at an offset, such as an image at a target
(:class:`offsite.remote.RemoteAccess`). Its reads come in forward runs: the
header, the footer, then the index and the payloads, each from its start
onwards; errors name the file by the random access's ``name``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

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


class RandomAccess(Protocol):
    """A file's bytes by offset: what an :class:`ImageReader` reads through.

    :ivar name: how errors name the file (a local path, a remote path).
    :ivar size: the file's size in bytes.
    """

    name: str
    size: int

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; fewer only where the file ends."""
        ...

    def close(self) -> None: ...


class LocalFile:
    """A local file read with ``os.pread``; its descriptor is what lets a
    consolidation copy payloads inside the kernel (``copy_file_range``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            st = os.fstat(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self.size = st.st_size
        self.mtime = st.st_mtime

    def pread(self, length: int, offset: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_head(source: RandomAccess) -> tuple[tuple[int, int], bytes]:
    """The format version and the whole header (fixed part and metadata), checked
    as far as they can be without the footer.

    :raises NotAnImage: too short for an image, or the magic is wrong.
    :raises UnsupportedVersion: another major format version.
    :raises IncompleteImage: the file ends inside the header, or leaves no
        room for a footer.
    :raises CorruptImage: a metadata length beyond the format's limit.
    """
    def read(length: int, offset: int) -> bytes:
        data = source.pread(length, offset)
        if len(data) != length:
            raise IncompleteImage(f"expected {length} bytes at offset {offset}, file ends",
                                  file=source.name)
        return data

    size = source.size
    if size < HEADER.size:
        head = source.pread(len(MAGIC), 0) if size else b""
        if MAGIC.startswith(head):
            raise IncompleteImage(f"only {size} bytes", file=source.name)
        raise NotAnImage("too short", file=source.name)
    fixed = read(HEADER.size, 0)
    magic, major, minor, meta_len = HEADER.unpack(fixed)
    if magic != MAGIC:
        raise NotAnImage("wrong magic", file=source.name, offset=0)
    if major != VERSION[0]:
        raise UnsupportedVersion(file=source.name, version=f"{major}.{minor}")
    if meta_len > MAX_METADATA:
        raise CorruptImage(f"metadata length {meta_len} exceeds {MAX_METADATA}",
                           file=source.name, offset=HEADER.size - 4)
    if size < HEADER.size + meta_len + FOOTER.size:
        raise IncompleteImage(f"{size} bytes, no room for a footer", file=source.name)
    # Read on from the fixed part rather than again from 0: a remote file
    # keeps streaming forward instead of opening a second stream.
    return (major, minor), fixed + read(meta_len, HEADER.size)


def read_metadata(source: RandomAccess) -> Metadata:
    """The metadata of an image, from its header alone (the footer unread).

    Enough to link images into chains by state; :class:`ImageReader` checks
    the footer too.

    :raises ImageError: not an image, another major version, or a header
        that is cut short or damaged.
    """
    _version, header = _read_head(source)
    return Metadata.from_json(header[HEADER.size:], file=source.name)


class _IndexCheck:
    """The state of a walk over the index: each entry is checked against the
    one before it, and the walk's end against the index offset."""

    def __init__(self, reader: ImageReader) -> None:
        self.reader = reader
        self.expected_offset = reader.payload_start
        self.previous = -1
        self.position = reader.index_offset

    def entry(self, e: Entry) -> None:
        reader = self.reader
        meta = reader.meta

        def bad(why: str) -> CorruptImage:
            return CorruptImage(f"index entry: {why}", file=reader.name, block=e.block,
                                offset=self.position)

        if e.block <= self.previous:
            raise bad(f"block {e.block} after block {self.previous}: the index must be sorted")
        if e.block >= meta.block_count:
            raise bad(f"block number beyond the volume's {meta.block_count} blocks")
        if e.offset != self.expected_offset:
            raise bad(f"payload offset {e.offset}, expected {self.expected_offset}")
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
        if e.offset + e.length > reader.index_offset:
            raise bad("payload runs into the index")
        self.previous = e.block
        self.expected_offset += e.length
        self.position += ENTRY.size

    def finish(self) -> None:
        reader = self.reader
        if self.expected_offset != reader.index_offset:
            raise CorruptImage(f"payloads end at {self.expected_offset}, the index starts at "
                               f"{reader.index_offset}", file=reader.name,
                               offset=self.expected_offset)
        if reader.meta.kind == "full" and reader.count != reader.meta.block_count:
            raise CorruptImage(f"a full image must list all {reader.meta.block_count} blocks, "
                               f"it lists {reader.count}", file=reader.name)


class ImageReader:
    """An open OFI image. Use as a context manager, or call :meth:`close`.

    :param source: a local file's path, or a :class:`RandomAccess` to read
        through (the reader closes it).
    :raises NotAnImage: the magic is wrong.
    :raises UnsupportedVersion: another major format version.
    :raises IncompleteImage: no valid footer (still being written, or cut short).
    :raises CorruptImage: header, footer and file size disagree.
    """

    def __init__(self, source: str | os.PathLike[str] | RandomAccess) -> None:
        self.source: RandomAccess = (LocalFile(source) if isinstance(source, str | os.PathLike)
                                     else source)
        #: How errors name the file.
        self.name = self.source.name
        self.path = Path(self.name)
        try:
            self._open()
        except BaseException:
            self.source.close()
            raise

    def _pread(self, length: int, offset: int) -> bytes:
        data = self.source.pread(length, offset)
        if len(data) != length:
            raise IncompleteImage(f"expected {length} bytes at offset {offset}, file ends",
                                  file=self.name)
        return data

    def _open(self) -> None:
        self.size = self.source.size
        self.version, self.header = _read_head(self.source)
        self.payload_start = len(self.header)
        footer_at = self.size - FOOTER.size
        self.footer = self._pread(FOOTER.size, footer_at)
        index_offset, count, digest, end_magic = FOOTER.unpack(self.footer)
        if end_magic != FOOTER_MAGIC:
            raise IncompleteImage("no footer at the end of the file", file=self.name,
                                  offset=footer_at)
        self.meta = Metadata.from_json(self.header[HEADER.size:], file=self.name)
        if not self.payload_start <= index_offset <= footer_at:
            raise CorruptImage(f"index offset {index_offset} lies outside the file",
                               file=self.name, offset=footer_at)
        if index_offset + count * ENTRY.size != footer_at:
            raise CorruptImage(f"{count} index entries do not fit between offset "
                               f"{index_offset} and the footer", file=self.name, offset=footer_at)
        if count > self.meta.block_count:
            raise CorruptImage(f"{count} index entries for {self.meta.block_count} blocks",
                               file=self.name, offset=footer_at)
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
        check = _IndexCheck(self)
        for chunk in self.index_chunks():
            for fields in ENTRY.iter_unpack(chunk):
                entry = Entry(*fields)
                check.entry(entry)
                yield entry
        check.finish()

    def check_footer(self) -> None:
        """Check the footer's SHA-256 over header, index and counts.

        :raises CorruptImage: it does not match.
        """
        self._compare_digest(footer_digest(self.header, self.index_chunks(), self.index_offset,
                                           self.count))

    def check_index(self) -> None:
        """Check every index entry, then the footer's SHA-256, reading the index once.

        What :meth:`entries` and :meth:`check_footer` check, in that order (a
        damaged entry is reported as such, not as a footer mismatch).

        :raises CorruptImage: the first problem found.
        """
        check = _IndexCheck(self)

        def checked() -> Iterator[bytes]:
            for chunk in self.index_chunks():
                for fields in ENTRY.iter_unpack(chunk):
                    check.entry(Entry(*fields))
                yield chunk
            check.finish()

        self._compare_digest(footer_digest(self.header, checked(), self.index_offset,
                                           self.count))

    def _compare_digest(self, digest: bytes) -> None:
        if digest != self.digest:
            raise CorruptImage("footer SHA-256 does not match the header and index",
                               file=self.name, offset=self.size - FOOTER.size + 16)

    # -- payloads ------------------------------------------------------------

    def will_read(self, entries: Sequence[Entry]) -> None:
        """Say that the payloads of ``entries`` (in file order) are read next.

        Where the source can use it (a remote file whose stream asks for
        ranges, see :meth:`offsite.remote.RemoteAccess.will_read`), only
        those bytes are fetched, not the blocks between them; elsewhere it
        does nothing. Reading anything else afterwards still works.
        """
        plan = getattr(self.source, "will_read", None)
        if plan is not None:
            plan([(e.offset, e.length) for e in entries if e.length and not e.zero])

    def stored(self, entry: Entry, *, check: bool = True) -> bytes:
        """The stored (possibly compressed) bytes of ``entry``, checksum checked."""
        data = self._pread(entry.length, entry.offset)
        if check and not entry.zero:
            self._check(entry, data)
        return data

    def _check(self, entry: Entry, stored: bytes) -> None:
        if hashlib.sha256(stored).digest() != entry.checksum:
            raise CorruptImage("payload SHA-256 does not match the index", file=self.name,
                               block=entry.block, offset=entry.offset)

    def block(self, entry: Entry, decompressor: Any = None) -> bytes:
        """The raw bytes of ``entry``'s block, checked.

        :param decompressor: a ``zstandard.ZstdDecompressor`` to reuse.
        :raises CorruptImage: checksum or decompressed length wrong.
        """
        stored = b"" if entry.zero else self.stored(entry, check=False)
        return self.decode(entry, stored, decompressor)

    def decode(self, entry: Entry, stored: bytes, decompressor: Any = None) -> bytes:
        """The raw bytes of ``entry``'s block from its ``stored`` bytes (as
        :meth:`stored` read them unchecked), checked. Reads nothing, so it
        may run on another thread while this reader reads on (a restore
        checks and writes blocks on worker threads).

        :param decompressor: a ``zstandard.ZstdDecompressor`` to reuse (one
            per thread: they are not thread-safe).
        :raises CorruptImage: checksum or decompressed length wrong.
        """
        raw = self.meta.raw_length(entry.block)
        if entry.zero:
            return bytes(raw)
        self._check(entry, stored)
        data = stored
        if entry.flags & FLAG_ZSTD:
            try:
                data = (decompressor or zstandard.ZstdDecompressor()).decompress(
                    data, max_output_size=raw)
            except zstandard.ZstdError as exc:
                raise CorruptImage(f"zstd: {exc}", file=self.name, block=entry.block,
                                   offset=entry.offset) from None
        if len(data) != raw:
            raise CorruptImage(f"block holds {len(data)} bytes, expected {raw}",
                               file=self.name, block=entry.block, offset=entry.offset)
        return data

    def copy_payload(self, entry: Entry, out_fd: int) -> None:
        """Copy ``entry``'s stored bytes to ``out_fd`` in the kernel, unhashed
        (a local image only)."""
        fd = self.fileno()
        left, at = entry.length, entry.offset
        while left:
            n = os.copy_file_range(fd, out_fd, left, at)
            if n == 0:
                raise IncompleteImage(f"file ends inside block {entry.block}", file=self.name)
            left -= n
            at += n

    def fileno(self) -> int:
        """The local file's descriptor.

        :raises io.UnsupportedOperation: the image is not read from a local file.
        """
        if not isinstance(self.source, LocalFile):
            raise io.UnsupportedOperation(f"{self.name} is not a local file")
        return self.source.fileno()

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        return f"<ImageReader {self.path.name} {m.kind} seq {m.seq_first}..{m.seq_last}>"

"""``offsite image create``: a full image, or the next incremental, of a file or device.

The source is read once, block by block. For an incremental, each block's
xxh3-128 is compared with the set's *hash map* (a hidden
``.LABEL-bNNN.ofimap`` beside the images, updated with every image), and
only changed blocks are stored. Zero blocks are flags, not payloads. Blocks
are hashed and compressed on worker threads (zstandard, hashlib and xxhash
release the GIL), so both cores work while the main thread reads and writes
in order; at most a few blocks are in flight, so memory stays flat whatever
the volume size.

A missing or stale hash map (its state is not the chain's last) is rebuilt
by reading the chain, which is slower but never wrong.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import logging
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xxhash
import zstandard

from offsite.durable import fsync_dir
from offsite.errors import ImageError, UsageError
from offsite.image.chain import ImageFile, chain_to, scan
from offsite.image.consolidate import merge
from offsite.image.format import (
    DEFAULT_BLOCK_SIZE,
    FLAG_ZSTD,
    Compression,
    Metadata,
    check_label,
    new_id,
)
from offsite.image.reader import ImageReader
from offsite.image.writer import ImageWriter

log = logging.getLogger(__name__)

ZSTD_LEVEL = 3
MAP_MAGIC = b"OFIMAP\x00\x01"
MAP_HEADER = struct.Struct("<8sIQ36s")
HASH_SIZE = 16


def map_path(folder: Path, label: str, generation: int) -> Path:
    return folder / f".{label}-b{generation:03d}.ofimap"


class HashMap:
    """Per-block xxh3-128 of the volume state ``state`` (16 bytes a block)."""

    def __init__(self, state: str, block_size: int, volume_size: int,
                 hashes: bytearray | None = None) -> None:
        self.state = state
        self.block_size = block_size
        self.volume_size = volume_size
        count = -(-volume_size // block_size)
        self.hashes = hashes if hashes is not None else bytearray(count * HASH_SIZE)

    def get(self, block: int) -> bytes:
        return bytes(self.hashes[block * HASH_SIZE:(block + 1) * HASH_SIZE])

    def set(self, block: int, digest: bytes) -> None:
        self.hashes[block * HASH_SIZE:(block + 1) * HASH_SIZE] = digest

    @classmethod
    def load(cls, path: Path) -> HashMap | None:
        """The map at ``path``, or ``None`` if missing or unreadable."""
        try:
            data = path.read_bytes()
            magic, bs, vs, state = MAP_HEADER.unpack_from(data)
        except (OSError, struct.error):
            return None
        hashes = bytearray(data[MAP_HEADER.size:])
        if magic != MAP_MAGIC or len(hashes) != -(-vs // bs) * HASH_SIZE:
            return None
        return cls(state.decode("ascii", "replace"), bs, vs, hashes)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(MAP_HEADER.pack(MAP_MAGIC, self.block_size, self.volume_size,
                                    self.state.encode("ascii")))
            f.write(self.hashes)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)


def rebuild_map(chain: Sequence[ImageFile]) -> HashMap:
    """Hash the volume state at the end of ``chain`` by reading the chain."""
    last = chain[-1].meta
    hashes = HashMap(last.state, last.block_size, last.volume_size)
    readers = [ImageReader(i.path) for i in chain]
    try:
        decompressor = zstandard.ZstdDecompressor()
        for reader, entry in merge(readers):
            hashes.set(entry.block, xxhash.xxh3_128(reader.block(entry, decompressor)).digest())
    finally:
        for reader in readers:
            reader.close()
    return hashes


_local = threading.local()


def _compressor() -> Any:
    c = getattr(_local, "zstd", None)
    if c is None:
        c = _local.zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return c


@functools.lru_cache(maxsize=4)
def _zeros(length: int) -> bytes:
    return bytes(length)


def _encode(raw: bytes, old_hash: bytes | None, compression: Compression
            ) -> tuple[bytes, bool, bytes | None, int, bytes]:
    """Worker: (hash, is_zero, stored or None if unchanged, flags, checksum)."""
    digest = xxhash.xxh3_128(raw).digest()
    if digest == old_hash:
        return digest, False, None, 0, b""
    if raw == _zeros(len(raw)):  # a memcmp, not a scan in Python
        return digest, True, b"", 0, b""
    stored, flags = raw, 0
    if compression == "zstd":
        packed = _compressor().compress(raw)
        if len(packed) < len(raw):
            stored, flags = packed, FLAG_ZSTD
    return digest, False, stored, flags, hashlib.sha256(stored).digest()


def _blocks(fd: int, size: int, block_size: int) -> Iterator[tuple[int, bytes]]:
    block = 0
    offset = 0
    while offset < size:
        want = min(block_size, size - offset)
        data = os.pread(fd, want, offset)
        while len(data) < want:  # short reads from devices and pipes-backed files
            more = os.pread(fd, want - len(data), offset + len(data))
            if not more:
                raise ImageError(f"source ended at byte {offset + len(data)} of {size}",
                                 file="source")
            data += more
        yield block, data
        block += 1
        offset += want


def source_size(fd: int) -> int:
    """The size of a regular file or a block device."""
    return os.lseek(fd, 0, os.SEEK_END)


def create(
    source: str | os.PathLike[str],
    destdir: str | os.PathLike[str],
    *,
    label: str | None = None,
    full: bool = False,
    block_size: int | None = None,
    compression: Compression = "zstd",
    workers: int | None = None,
) -> Path:
    """Write the next image of ``source`` into ``destdir``; return its path.

    A full image (a new generation set) when ``destdir`` has no set for the
    label, or when ``full``; otherwise the next incremental of the newest set.

    :raises UsageError: the request does not fit the existing set (another
        block size, a source of another size without ``full``), or the label
        does not fit a file name (:func:`~offsite.image.format.check_label`).
    :raises ImageError: the existing chain is broken or corrupt.
    """
    source, destdir = Path(source), Path(destdir)
    label = label or source.name.rsplit(".", 1)[0] or source.name
    check_label(label)
    if not destdir.is_dir():
        raise UsageError(f"destination folder {destdir} does not exist")
    fd = os.open(source, os.O_RDONLY)
    try:
        size = source_size(fd)
        meta, old = _plan(destdir, label, size, full=full, block_size=block_size,
                          compression=compression)
        return _write(fd, destdir, meta, old, workers or min(4, os.cpu_count() or 2))
    finally:
        os.close(fd)


def _plan(destdir: Path, label: str, size: int, *, full: bool, block_size: int | None,
          compression: Compression) -> tuple[Metadata, HashMap | None]:
    found = [i for i in scan(destdir).images if i.meta.label == label]
    newest_gen = max((i.meta.generation for i in found), default=0)
    state = new_id()
    if full or not found:
        bs = block_size or DEFAULT_BLOCK_SIZE
        meta = Metadata(kind="full", set_id=new_id(), label=label, generation=newest_gen + 1,
                        seq_first=0, seq_last=0, state=state, parent_state=None,
                        block_size=bs, volume_size=size, compression=compression)
        meta.validate(destdir / meta.name)
        return meta, None
    in_set = [i for i in found if i.meta.generation == newest_gen]
    last = max(in_set, key=lambda i: (i.meta.seq_last, -i.meta.seq_first))
    chain = chain_to(last, in_set)
    base = last.meta
    if block_size and block_size != base.block_size:
        raise UsageError(f"the set {label}-b{newest_gen:03d} uses blocks of {base.block_size} "
                         f"bytes, not {block_size}: drop --block-size, or start a new set "
                         "with --full")
    if size != base.volume_size:
        raise UsageError(f"the source is {size} bytes but the set {label}-b{newest_gen:03d} "
                         f"holds a {base.volume_size}-byte volume: start a new set with --full")
    hashes = HashMap.load(map_path(destdir, label, newest_gen))
    if hashes is None or hashes.state != base.state or hashes.block_size != base.block_size:
        log.warning("hash map of %s-b%03d is missing or stale: rebuilding it from the chain",
                    label, newest_gen)
        hashes = rebuild_map(chain)
    seq = base.seq_last + 1
    meta = Metadata(kind="incremental", set_id=base.set_id, label=label,
                    generation=newest_gen, seq_first=seq, seq_last=seq, state=state,
                    parent_state=base.state, block_size=base.block_size, volume_size=size,
                    compression=compression)
    return meta, hashes


def _write(fd: int, destdir: Path, meta: Metadata, old: HashMap | None, workers: int) -> Path:
    new = HashMap(meta.state, meta.block_size, meta.volume_size)
    final = destdir / meta.name
    if final.exists():
        raise UsageError(f"{final} exists already; offsite never writes over an image")
    in_flight: collections.deque[tuple[int, Future[tuple[bytes, bool, bytes | None, int, bytes]]]]
    in_flight = collections.deque()
    with ImageWriter(final, meta) as writer, ThreadPoolExecutor(workers) as pool:

        def drain(limit: int) -> None:
            while len(in_flight) > limit:
                block, future = in_flight.popleft()
                digest, zero, stored, flags, checksum = future.result()
                new.set(block, digest)
                if stored is None:
                    continue  # unchanged since the last image
                if zero:
                    writer.add_zero(block)
                else:
                    writer.add(block, stored, flags, checksum)

        for block, raw in _blocks(fd, meta.volume_size, meta.block_size):
            previous = old.get(block) if old is not None else None
            in_flight.append((block, pool.submit(_encode, raw, previous, meta.compression)))
            drain(2 * workers)
        drain(0)
        path = writer.finish()
    new.save(map_path(destdir, meta.label, meta.generation))
    return path


"""``offsite image restore``: the volume as it was at one image.

The image's chain is found beside it (by states, :mod:`offsite.image.chain`)
and merged exactly like a consolidation: for each block the newest version
wins. Each winning payload is checked (SHA-256, decompressed length) before
it is written. The main thread reads the payloads; worker threads check,
decompress and write them (hashlib, zstandard and ``pwrite`` release the
GIL), at most a few blocks behind the reads, so a restore from a target
downloads while it checks and writes, and memory stays flat. A
regular-file output is written under a temporary name and renamed when
complete, sparse where blocks are zero; a block-device output is written
in place, zeros included.

:func:`restore_readers` does the merge from open readers, wherever they
read (``offsite restore`` reads a chain straight from a target). It goes in
rounds of :data:`ROUND` winning blocks: the round's index entries are merged
first, then each image's winners are read in one forward run, image after
image. A reader at a target then streams each image's index and payloads
forward, rather than jumping from image to image at every block.
"""

from __future__ import annotations

import collections
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zstandard

from offsite.durable import fsync_dir
from offsite.errors import UsageError
from offsite.image.chain import ImageFile, chain_to, read_image_file, scan
from offsite.image.consolidate import merge
from offsite.image.format import Entry
from offsite.image.reader import ImageReader
from offsite.image.writer import temporary_path

#: Winning blocks merged per round (their entries are what a round holds:
#: about 1 MiB), as many as the reader fetches index entries at once.
ROUND = 4096
#: Blocks read and not yet handed to a worker, at most; and at most
#: :data:`IN_FLIGHT_BYTES` of them, but always one (of 64 MiB blocks, the
#: format's largest: one). Measured on FTP (1 GiB, 1 MiB blocks, 5 runs
#: each): 1.39-1.42 s with 8, 1.54 s with 4, 1.53-1.57 s with 2.
IN_FLIGHT = 8
IN_FLIGHT_BYTES = 8 << 20
#: Threads that check, decompress and write. The main thread reads (on a
#: fast link, a core's worth of work); on two cores (FTP, 1 GiB) a second
#: worker measured slower than one.
WORKERS = max(1, min(3, (os.cpu_count() or 2) - 1))


def find_chain(image: Path) -> list[ImageFile]:
    """The chain from its full image to ``image``, read from ``image``'s folder.

    :raises BrokenChain: the chain has a gap.
    :raises ImageError: ``image`` is not a sound image.
    """
    target = read_image_file(image)
    return chain_to(target, scan(image.parent).images)


def restore(image: str | os.PathLike[str], output: str | os.PathLike[str], *,
            force: bool = False) -> list[ImageFile]:
    """Write the volume state at ``image`` to ``output``; returns the chain used.

    :raises UsageError: ``output`` is one of the chain's images, or an existing
        regular file without ``force``.
    :raises ImageError: a break in the chain, or damaged data (nothing is
        left under ``output`` then, unless it is a device).
    """
    image, output = Path(image), Path(output)
    chain = find_chain(image)
    restore_chain([c.path for c in chain], output, force=force)
    return chain


def check_output(output: Path, force: bool) -> bool:
    """Whether ``output`` is a block device (written in place).

    :raises UsageError: an existing regular file without ``force``.
    """
    device = output.exists() and stat.S_ISBLK(output.stat().st_mode)
    if output.exists() and not device and not force:
        raise UsageError(f"{output} exists: pass --force to replace it")
    return device


def restore_chain(paths: Sequence[Path], output: Path, *, force: bool = False) -> None:
    """Restore the state at the end of the chain ``paths`` (full first)."""
    if output.exists():
        for p in paths:
            if os.path.samefile(p, output):
                raise UsageError(f"{output} is one of the images being restored from")
    check_output(output, force)
    readers: list[ImageReader] = []
    try:
        for p in paths:
            readers.append(ImageReader(p))
        restore_readers(readers, output, force=force)
    finally:
        for reader in readers:
            reader.close()


def rounds(readers: Sequence[ImageReader]) -> Iterator[list[tuple[ImageReader, list[Entry]]]]:
    """The newest entry of every block, in rounds of up to :data:`ROUND`: per
    round, each reader with winners (oldest first) and its winners in file order."""
    held: dict[ImageReader, list[Entry]] = {}
    count = 0

    def flush() -> list[tuple[ImageReader, list[Entry]]]:
        nonlocal count
        out = [(r, held.pop(r)) for r in readers if r in held]
        count = 0
        return out

    for reader, entry in merge(readers):
        held.setdefault(reader, []).append(entry)
        count += 1
        if count == ROUND:
            yield flush()
    if count:
        yield flush()


def restore_readers(readers: Sequence[ImageReader], output: Path, *,
                    force: bool = False) -> None:
    """Restore the state at the end of the chain ``readers`` (full first) to
    ``output``; the readers stay open (the caller closes them).

    :raises UsageError: ``output`` is an existing regular file and not ``force``.
    :raises ImageError: damaged data (nothing is left under ``output`` then,
        unless it is a device).
    """
    device = check_output(output, force)
    target = output if device else temporary_path(output)
    try:
        meta = readers[-1].meta
        fd = os.open(target, os.O_WRONLY | (0 if device else os.O_CREAT | os.O_TRUNC), 0o600)
        try:
            if not device:
                os.ftruncate(fd, meta.volume_size)  # sparse: zero blocks cost nothing
            with _Writes(fd, meta.block_size) as writes:
                for run in rounds(readers):
                    for reader, entries in run:
                        reader.will_read(entries)
                        for entry in entries:
                            if entry.zero and not device:
                                continue
                            writes.add(reader, entry, b"" if entry.zero
                                       else reader.stored(entry, check=False))
                writes.finish()
            os.fsync(fd)
        finally:
            os.close(fd)
        if not device:
            os.replace(target, output)
            fsync_dir(output.parent)
    except BaseException:
        if not device:
            target.unlink(missing_ok=True)
        raise


class _Writes:
    """Blocks checked, decompressed and written to ``fd`` on worker threads.

    :meth:`add` waits while :data:`IN_FLIGHT` blocks (or
    :data:`IN_FLIGHT_BYTES`, but at least one block) are pending, and
    raises the first failure (in the order the blocks were added), so a
    damaged block stops the restore within a few blocks of where it was
    read. Leaving the ``with`` block waits for every worker: none writes to
    the file after it is closed or removed.
    """

    def __init__(self, fd: int, block_size: int) -> None:
        self._fd, self._block_size = fd, block_size
        self._limit = max(1, min(IN_FLIGHT, IN_FLIGHT_BYTES // block_size))
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="offsite-restore")
        self._pending: collections.deque[Future[None]] = collections.deque()
        self._local = threading.local()

    def add(self, reader: ImageReader, entry: Entry, stored: bytes) -> None:
        self._pending.append(self._pool.submit(self._write, reader, entry, stored))
        self._drain(self._limit)

    def finish(self) -> None:
        """Wait for every block added; raise the first failure."""
        self._drain(0)

    def _drain(self, limit: int) -> None:
        while len(self._pending) > limit:
            self._pending.popleft().result()

    def _write(self, reader: ImageReader, entry: Entry, stored: bytes) -> None:
        decompressor: Any = getattr(self._local, "decompressor", None)
        if decompressor is None:  # one per thread: they are not thread-safe
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        os.pwrite(self._fd, reader.decode(entry, stored, decompressor),
                  entry.block * self._block_size)

    def __enter__(self) -> _Writes:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

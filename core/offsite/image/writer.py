"""Writing OFI images: under a temporary name, made durable, then renamed.

An image appears under its final name only when it is complete: it is
written to a hidden ``.NAME.tmp-PID`` in the same folder, fsynced, and moved
into place with a link-then-unlink that refuses to replace an existing file
(so nothing is ever written over a source image), then the folder is fsynced.
A reader never sees a half image under a final name; a crash leaves only a
hidden temporary file that the next run removes or ignores.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from offsite.durable import publish
from offsite.image.format import (
    FLAG_ZERO,
    NO_CHECKSUM,
    Entry,
    Metadata,
    footer_bytes,
    footer_digest,
    header_bytes,
)

TMP_MARK = ".tmp-"


def temporary_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}")


class ImageWriter:
    """Writes one image: header, payloads as they come, then index and footer.

    The index is kept in memory as packed 56-byte entries (an 8 GiB volume
    in 1 MiB blocks: 458 KiB), since it follows the payloads.
    """

    def __init__(self, final: Path, meta: Metadata) -> None:
        meta.validate(final)
        self.final = final
        self.meta = meta
        self.tmp = temporary_path(final)
        self._file: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/abort
        self._header = header_bytes(meta)
        self._file.write(self._header)
        self.offset = len(self._header)
        self._index = bytearray()
        self.count = 0

    def add(self, block: int, stored: bytes, flags: int, checksum: bytes) -> None:
        """Append a block's stored bytes (blocks in increasing order)."""
        self._index += Entry(block, self.offset, len(stored), flags, checksum).pack()
        self._file.write(stored)
        self.offset += len(stored)
        self.count += 1

    def add_zero(self, block: int) -> None:
        self._index += Entry(block, self.offset, 0, FLAG_ZERO, NO_CHECKSUM).pack()
        self.count += 1

    def finish(self) -> Path:
        """Write index and footer, fsync, and publish under the final name."""
        digest = footer_digest(self._header, [bytes(self._index)], self.offset, self.count)
        self._file.write(self._index)
        self._file.write(footer_bytes(self.offset, self.count, digest))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        try:
            publish(self.tmp, self.final)
        except BaseException:
            self.abort()
            raise
        return self.final

    def abort(self) -> None:
        """Drop the temporary file."""
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()

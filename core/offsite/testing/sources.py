"""Upload sources for the conformance suite: generated, failing, recording.

They implement :class:`offsite.transport.Source` without holding the data
they produce, so the suite can push hundreds of MiB through a plugin while
measuring the plugin's memory, not the test's.
"""

from __future__ import annotations

import hashlib
import io
import random
from typing import BinaryIO

MiB = 1 << 20


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible incompressible bytes."""
    return random.Random(seed).randbytes(size)


class GeneratedSource:
    """``size`` pseudo-random bytes, produced on the fly from a 1 MiB block.

    Chunk ``k`` is the block rotated by ``k * 4099`` bytes, so no two chunks
    are equal and a transport that dropped, doubled or swapped one is caught,
    yet nothing but the block is ever held.
    """

    BLOCK = MiB

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self._block = random_bytes(self.BLOCK, seed)

    def chunk(self, k: int) -> bytes:
        turn = (k * 4099) % self.BLOCK
        return self._block[turn:] + self._block[:turn]

    def open(self, offset: int = 0) -> BinaryIO:
        return io.BufferedReader(_GeneratedStream(self, offset), buffer_size=MiB)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as stream:
            while chunk := stream.read(MiB):
                digest.update(chunk)
        return digest.hexdigest()


class _GeneratedStream(io.RawIOBase):
    def __init__(self, source: GeneratedSource, offset: int) -> None:
        super().__init__()
        self._source = source
        self._pos = offset

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = self._source.size - self._pos
        if left <= 0:
            return 0
        k, within = divmod(self._pos, GeneratedSource.BLOCK)
        data = self._source.chunk(k)[within : within + min(len(buffer), left)]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class FailingSource:
    """``data`` as a source whose stream raises after ``fail_at`` bytes."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self.data = data
        self.fail_at = fail_at
        self.size = len(data)

    def open(self, offset: int = 0) -> BinaryIO:
        return _FailingStream(self.data, offset, self.fail_at)  # type: ignore[return-value]


class _FailingStream(io.RawIOBase):
    def __init__(self, data: bytes, offset: int, fail_at: int) -> None:
        super().__init__()
        self._data, self._pos, self._fail_at = data, offset, fail_at

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._fail_at:
            raise OSError("simulated read failure of the local source")
        end = min(self._pos + len(buffer), self._fail_at, len(self._data))
        n = end - self._pos
        buffer[:n] = self._data[self._pos : end]
        self._pos = end
        return n


class RecordingSource:
    """``data`` as a source that remembers every offset it was opened at."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.offsets: list[int] = []

    def open(self, offset: int = 0) -> BinaryIO:
        self.offsets.append(offset)
        return io.BytesIO(self.data[offset:])

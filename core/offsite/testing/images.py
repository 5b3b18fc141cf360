"""Real image chains for tests: a volume that changes, imaged after each change.

``Volume`` keeps a small volume in a file and remembers its bytes at every
image, so a test can restore any point and compare::

    vol = Volume(tmp_path / "vol.img", size=40 * 4096 + 100)
    vol.image(dest, block_size=4096)            # full
    vol.write(8192, b"new data"); vol.image(dest)  # incremental 1
    assert restored == vol.states[1]
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from offsite.image.create import create
from offsite.image.format import Compression


class Volume:
    """A volume file plus its content at every image taken of it."""

    def __init__(self, path: Path, size: int, seed: int = 0) -> None:
        self.path = path
        self.random = random.Random(seed)
        self.data = bytearray(self.random.randbytes(size))
        self.states: list[bytes] = []
        self.images: list[Path] = []
        self._flush()

    def _flush(self) -> None:
        self.path.write_bytes(self.data)

    def write(self, offset: int, data: bytes) -> None:
        end = min(len(self.data), offset + len(data))
        self.data[offset:end] = data[: end - offset]
        self._flush()

    def zero(self, offset: int, length: int) -> None:
        self.write(offset, bytes(length))

    def scribble(self, count: int, length: int) -> None:
        """Overwrite ``count`` random extents of ``length`` bytes with random bytes."""
        for _ in range(count):
            at = self.random.randrange(max(1, len(self.data)))
            self.write(at, self.random.randbytes(length))

    def image(self, dest: Path, *, full: bool = False, block_size: int | None = None,
              compression: Compression = "zstd", label: str = "vol") -> Path:
        path = create(self.path, dest, label=label, full=full, block_size=block_size,
                      compression=compression, workers=2)
        self.states.append(bytes(self.data))
        self.images.append(path)
        return path


def flip_byte(path: Path, position: int) -> None:
    """Flip every bit of one byte of a file, in place."""
    with open(path, "r+b") as f:
        f.seek(position)
        value = f.read(1)[0]
        f.seek(position)
        f.write(bytes([value ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())

"""Bad images and bad requests: typed errors naming the file and the place,
exit code 3 for bad data, and nothing ever written over a source image."""

from __future__ import annotations

import hashlib
import importlib
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.errors import (
    BrokenChain,
    CorruptImage,
    ImageError,
    IncompleteImage,
    NotAnImage,
    UnsupportedVersion,
    UsageError,
)
from offsite.image import Consolidation, ImageReader, restore, verify
from offsite.image.format import ENTRY, FOOTER, HEADER, Entry, footer_bytes, footer_digest
from offsite.image.reader import LocalFile
from offsite.image.restore import restore_readers
from offsite.image.verify import verify_image
from offsite.testing.images import Volume

# The module, not the function the package exports under the same name.
restore_module = importlib.import_module("offsite.image.restore")
BS = 4096


@pytest.fixture
def chain(tmp_path: Path) -> Volume:
    vol = Volume(tmp_path / "vol.img", 30 * BS + 10)
    dest = tmp_path / "dest"
    dest.mkdir()
    vol.image(dest, block_size=BS)
    for i in range(3):
        vol.write(i * 5 * BS + 100, os.urandom(2 * BS))
        vol.zero(20 * BS + i * BS, BS)
        vol.image(dest)
    return vol


def rewrite_index(path: Path, change: Callable[[list[Entry]], list[Entry]]) -> None:
    """Change an image's index entries and re-sign the footer, so only the
    entry checks (not the footer hash) can notice."""
    with ImageReader(path) as r:
        header, index_offset = r.header, r.index_offset
        entries = [Entry(*e) for e in ENTRY.iter_unpack(
            os.pread(r.fileno(), r.count * ENTRY.size, r.index_offset))]
    data = path.read_bytes()[:index_offset]
    entries = change(entries)
    index = b"".join(e.pack() for e in entries)
    digest = footer_digest(header, [index], index_offset, len(entries))
    path.write_bytes(data + index + footer_bytes(index_offset, len(entries), digest))


def damage_payload(image: Path, at: int = 0, data: bytes = b"\xff\xfe") -> Entry:
    """Overwrite bytes of the first stored payload; return its entry."""
    with ImageReader(image) as r:
        entry = next(e for e in r.entries() if e.length)
    with open(image, "r+b") as f:
        f.seek(entry.offset + at)
        f.write(bytes(b ^ 0x5A for b in data))
    return entry


def runner_verify(*paths: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["image", "verify", *map(str, paths)])
    return result.exit_code, result.stderr


def test_truncated_image_is_incomplete(chain: Volume) -> None:
    image = chain.images[1]
    data = image.read_bytes()
    for cut in (3, HEADER.size + 2, len(data) // 2, len(data) - 1):
        image.write_bytes(data[:cut])
        with pytest.raises(IncompleteImage) as caught:
            ImageReader(image)
        assert caught.value.file == str(image)
    code, err = runner_verify(image)
    assert code == 3
    assert str(image) in err and "incomplete" in err


def test_wrong_magic(chain: Volume, tmp_path: Path) -> None:
    other = tmp_path / "notes.ofi"
    other.write_bytes(b"this is a text file, not an image" * 10)
    with pytest.raises(NotAnImage, match=r"notes\.ofi: not an OFI image"):
        ImageReader(other)


def test_future_major_version_is_refused(chain: Volume) -> None:
    image = chain.images[0]
    with open(image, "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<H", 2))
    with pytest.raises(UnsupportedVersion, match=r"version 2\.0 is not supported") as caught:
        ImageReader(image)
    assert "upgrade offsite" in str(caught.value)


def test_absurd_metadata_length_allocates_nothing(chain: Volume) -> None:
    image = chain.images[0]
    with open(image, "r+b") as f:
        f.seek(12)
        f.write(struct.pack("<I", 0xFFFFFFFF))
    with pytest.raises(CorruptImage, match="metadata length 4294967295 exceeds"):
        ImageReader(image)


def test_absurd_entry_count(chain: Volume) -> None:
    image = chain.images[1]
    size = image.stat().st_size
    with open(image, "r+b") as f:
        f.seek(size - FOOTER.size + 8)
        f.write(struct.pack("<Q", 1 << 60))
    with pytest.raises(CorruptImage, match="do not fit") as caught:
        ImageReader(image)
    assert caught.value.offset == size - FOOTER.size


def test_index_out_of_order(chain: Volume) -> None:
    image = chain.images[1]
    rewrite_index(image, lambda es: [es[1]._replace(offset=es[0].offset), *es[:1], *es[2:]])
    with pytest.raises(CorruptImage, match="must be sorted"):
        verify_image(image)


def test_index_pointing_outside_the_file(chain: Volume) -> None:
    image = chain.images[1]
    rewrite_index(image, lambda es: [es[0]._replace(offset=10**12), *es[1:]])
    with pytest.raises(CorruptImage, match="payload offset 1000000000000") as caught:
        verify_image(image)
    assert caught.value.block == 0 or caught.value.block is not None


def test_block_beyond_volume(chain: Volume) -> None:
    image = chain.images[1]
    rewrite_index(image, lambda es: [*es[:-1], es[-1]._replace(block=10**6)])
    with pytest.raises(CorruptImage, match="beyond the volume"):
        verify_image(image)


def test_unknown_flags(chain: Volume) -> None:
    image = chain.images[1]
    rewrite_index(image, lambda es: [es[0]._replace(flags=es[0].flags | 0x80), *es[1:]])
    with pytest.raises(CorruptImage, match="unknown flags 0x8"):
        verify_image(image)


def test_payload_checksum_mismatch_names_block(chain: Volume) -> None:
    image = chain.images[2]
    entry = damage_payload(image, at=5, data=b"\x01")
    with pytest.raises(CorruptImage) as caught:
        verify_image(image)
    assert caught.value.block == entry.block
    assert f"block {entry.block}" in str(caught.value)
    code, err = runner_verify(image)
    assert code == 3
    assert "SHA-256" in err


def test_footer_hash_mismatch(chain: Volume) -> None:
    image = chain.images[1]
    with open(image, "r+b") as f:  # the header's JSON: only the footer hash covers it
        f.seek(HEADER.size + 2)
        f.write(b"X")
    with pytest.raises(ImageError):
        verify_image(image)


def test_chain_gap_is_reported(chain: Volume) -> None:
    chain.images[2].unlink()
    report = verify([chain.images[0].parent])
    assert not report.clean
    broken = [p for p in report.problems if isinstance(p, BrokenChain)]
    assert [Path(p.file).name for p in broken] == ["vol-b001-i003.ofi"]
    assert "gap before sequence 3" in str(broken[0])
    with pytest.raises(BrokenChain):
        restore(chain.images[3], chain.path.parent / "out.img")


def test_foreign_parent_is_refused_by_consolidate(chain: Volume) -> None:
    with pytest.raises(BrokenChain, match="applies to state"):
        Consolidation([chain.images[1], chain.images[3]])


def test_image_being_written_is_incomplete_not_bad(chain: Volume) -> None:
    dest = chain.images[0].parent
    partial = dest / "vol-b001-i004.ofi"
    partial.write_bytes(chain.images[3].read_bytes()[:-FOOTER.size])
    report = verify([dest])
    assert [Path(p.file).name for p in report.problems] == ["vol-b001-i004.ofi"]
    assert "incomplete" in str(report.problems[0])


def test_consolidate_never_overwrites_an_input(chain: Volume) -> None:
    before = hashlib.sha256(chain.images[3].read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["image", "consolidate", *map(str, chain.images[1:]),
                                      "--output", str(chain.images[3])])
    assert result.exit_code == 2
    assert "exists" in result.stderr
    assert hashlib.sha256(chain.images[3].read_bytes()).hexdigest() == before


def test_restore_never_overwrites_an_image(chain: Volume) -> None:
    with pytest.raises(UsageError, match="one of the images"):
        restore(chain.images[2], chain.images[1], force=True)
    assert verify([chain.images[0].parent]).clean


def test_corrupt_restore_leaves_no_output(chain: Volume, tmp_path: Path) -> None:
    damage_payload(chain.images[1])
    out = tmp_path / "out.img"
    with pytest.raises(CorruptImage):
        restore(chain.images[3], out)
    assert not out.exists()
    assert not any(p.name.startswith(".out.img") for p in tmp_path.iterdir())


def test_a_restore_names_the_first_damaged_block_however_many_write_at_once(
        chain: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks are checked on worker threads, several read ahead of the
    # writes: the failure raised is still the first damaged block in order.
    monkeypatch.setattr(restore_module, "WORKERS", 3)
    full = chain.images[0]
    with ImageReader(full) as r:
        stored = [e for e in r.entries() if e.length]
    first, later = stored[2], stored[9]
    with open(full, "r+b") as f:
        for entry in (later, first):
            f.seek(entry.offset + 7)
            f.write(b"\x00\xff\x00")
    out = tmp_path / "out.img"
    with pytest.raises(CorruptImage) as caught:
        restore(full, out)
    assert caught.value.block == first.block
    assert not out.exists()
    assert not any(p.name.startswith(".out.img") for p in tmp_path.iterdir())


class _FailingFile(LocalFile):
    """A local file whose reads fail after the first ``good`` ones."""

    def __init__(self, path: Path, good: int) -> None:
        super().__init__(path)
        self.good = good

    def pread(self, length: int, offset: int) -> bytes:
        if self.good == 0:
            raise OSError(5, "Input/output error")
        self.good -= 1
        return super().pread(length, offset)


def test_a_read_that_fails_mid_restore_leaves_no_output_and_no_thread(
        chain: Volume, tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    before = {t.ident for t in threading.enumerate()}
    # The first reads are header, footer and index; the rest are payloads.
    readers = [ImageReader(_FailingFile(p, 12)) for p in chain.images]
    try:
        with pytest.raises(OSError, match="Input/output"):
            restore_readers(readers, out)
    finally:
        for reader in readers:
            reader.close()
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["dest", "vol.img"]
    assert {t.ident for t in threading.enumerate()} <= before  # every worker is gone


def test_create_refuses_a_resized_source(chain: Volume, tmp_path: Path) -> None:
    with open(chain.path, "ab") as f:
        f.write(b"grown")
    result = CliRunner().invoke(cli, ["image", "create", str(chain.path),
                                      str(chain.images[0].parent)])
    assert result.exit_code == 2
    assert "--full" in result.stderr
    assert len(os.listdir(chain.images[0].parent)) == 5  # 4 images + hash map


def test_consolidate_refuses_damaged_input(chain: Volume, tmp_path: Path) -> None:
    entry = damage_payload(chain.images[2], data=b"\x00\x01\x02")
    out = tmp_path / "merged.ofi"
    result = CliRunner().invoke(cli, ["image", "consolidate", *map(str, chain.images[1:]),
                                      "-o", str(out)])
    assert result.exit_code == 3
    assert f"block {entry.block}" in result.stderr
    assert not out.exists()


def test_interrupted_write_leaves_nothing(chain: Volume, tmp_path: Path) -> None:
    from offsite.image.format import FLAG_ZSTD
    from offsite.image.writer import ImageWriter

    with ImageReader(chain.images[0]) as r:
        meta = r.meta
    final = tmp_path / "fresh-b001.ofi"

    def write_then_fail() -> None:
        with ImageWriter(final, meta) as writer:
            writer.add(0, b"partial", FLAG_ZSTD, hashlib.sha256(b"partial").digest())
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert list(tmp_path.glob("*fresh*")) == [] and list(tmp_path.glob(".fresh*")) == []


def test_unreadable_image_is_reported_not_fatal(chain: Volume) -> None:
    from offsite.image.chain import scan

    # A name that fails to open with an OSError other than "not found", even as root.
    broken = chain.images[0].parent / "loop.ofi"
    broken.symlink_to(broken)
    found = scan(chain.images[0].parent)
    assert [p.name for p, _ in found.bad] == ["loop.ofi"]
    assert "cannot read it" in str(found.bad[0][1])
    assert len(found.images) == 4

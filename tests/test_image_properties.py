"""Property tests of the image format: restore, consolidation, size, verify."""

from __future__ import annotations

import importlib
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offsite.errors import ImageError
from offsite.image import Consolidation, ImageReader, restore, verify
from offsite.testing.images import Volume, flip_byte

# The module, not the function the package exports under the same name.
restore_module = importlib.import_module("offsite.image.restore")

BS = 512
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# One change to a volume: (kind, relative position, length in bytes).
change = st.tuples(st.sampled_from(["random", "zero"]), st.floats(0, 1),
                   st.integers(1, 3 * BS))
history = st.lists(st.lists(change, max_size=4), min_size=1, max_size=5)


def build(folder: Path, size: int, steps: list[list[tuple[str, float, int]]],
          compression: str = "zstd", seed: int = 0) -> Volume:
    vol = Volume(folder / "vol.img", size, seed=seed)
    dest = folder / "dest"
    dest.mkdir()
    vol.image(dest, block_size=BS, compression=compression)  # type: ignore[arg-type]
    for step in steps:
        for kind, where, length in step:
            at = int(where * max(0, size - 1))
            if kind == "zero":
                vol.zero(at, length)
            else:
                vol.write(at, vol.random.randbytes(length))
        vol.image(dest, compression=compression)  # type: ignore[arg-type]
    return vol


def restored(image: Path, out: Path) -> bytes:
    restore(image, out, force=True)
    return out.read_bytes()


@SETTINGS
@given(size=st.integers(0, 40 * BS + 77), steps=history,
       compression=st.sampled_from(["zstd", "none"]), seed=st.integers(0, 9))
def test_restoring_point_n_gives_the_volume_at_n(size: int, steps, compression: str,
                                                 seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vol = build(Path(tmp), size, steps, compression, seed)
        for n, image in enumerate(vol.images):
            assert restored(image, Path(tmp, "out")) == vol.states[n], f"point {n}"


@SETTINGS
@given(size=st.integers(0, 40 * BS + 77), steps=history, per_round=st.integers(1, 6),
       in_flight=st.integers(1, 5), workers=st.integers(1, 3))
def test_restoring_in_rounds_of_a_few_blocks_gives_the_same_volume(
        size: int, steps, per_round: int, in_flight: int, workers: int) -> None:
    # A restore merges ROUND winning blocks at a time, then reads them image by
    # image: rounds that end anywhere (mid-image, mid-run) must not change a
    # byte. Nor may how many blocks wait for the worker threads, nor how many
    # write at once (a block rewritten by a later image is written once).
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(restore_module, "ROUND", per_round)
        patch.setattr(restore_module, "IN_FLIGHT", in_flight)
        patch.setattr(restore_module, "WORKERS", workers)
        vol = build(Path(tmp), size, steps)
        for n, image in enumerate(vol.images):
            assert restored(image, Path(tmp, "out")) == vol.states[n], f"point {n}"


def test_a_restore_holds_blocks_by_bytes_not_by_count(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The blocks waiting for the worker threads are bounded in bytes as well
    # as in number: large blocks (up to 64 MiB) wait one at a time, not
    # IN_FLIGHT of them.
    mib = 1 << 20
    vol = Volume(tmp_path / "vol.img", 24 * mib, seed=3)
    dest = tmp_path / "dest"
    dest.mkdir()
    image = vol.image(dest, block_size=mib, compression="none")
    decode = ImageReader.decode

    def slow_decode(self: ImageReader, *args: object, **kwargs: object) -> bytes:
        time.sleep(0.01)  # a worker slower than the reads: blocks pile up to the limit
        return decode(self, *args, **kwargs)  # type: ignore[arg-type]

    def peak() -> float:
        tracemalloc.start()
        try:
            restore(image, tmp_path / "out", force=True)
            return tracemalloc.get_traced_memory()[1] / mib
        finally:
            tracemalloc.stop()

    monkeypatch.setattr(ImageReader, "decode", slow_decode)
    monkeypatch.setattr(restore_module, "WORKERS", 1)
    monkeypatch.setattr(restore_module, "IN_FLIGHT", 100)
    monkeypatch.setattr(restore_module, "IN_FLIGHT_BYTES", 12 * mib)
    assert 12 <= peak() <= 18, "twelve 1 MiB blocks wait, no more"
    monkeypatch.setattr(restore_module, "IN_FLIGHT_BYTES", mib // 2)
    assert peak() <= 5, "less than a block's bytes: one block waits"
    assert (tmp_path / "out").read_bytes() == vol.states[0]


@SETTINGS
@given(size=st.integers(BS, 30 * BS + 5), steps=history, data=st.data())
def test_consolidating_a_run_keeps_every_point(size: int, steps, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vol = build(Path(tmp), size, steps)
        n = len(vol.images) - 1
        a = data.draw(st.integers(0, n), label="a")  # 0 = include the full: a synthetic full
        b = data.draw(st.integers(a, n), label="b")
        target = Path(tmp, "target")
        target.mkdir()
        with Consolidation(vol.images[a:b + 1]) as plan:
            merged = plan.write_file(target / vol.images[b].name)
            assert merged.stat().st_size == plan.size, "announced size == bytes written"
        for image in vol.images[:a] + vol.images[b + 1:]:
            (target / image.name).hardlink_to(image)
        for point in [b, *range(b + 1, n + 1)]:
            assert restored(target / vol.images[point].name, Path(tmp, "out")) == \
                vol.states[point], f"point {point} through the consolidation of {a}..{b}"
        assert verify([target]).clean


def blocks(path: Path) -> list[tuple[int, int, bytes, bytes]]:
    with ImageReader(path) as reader:
        return [(e.block, e.flags, e.checksum, reader.stored(e)) for e in reader.entries()]


@SETTINGS
@given(size=st.integers(BS, 30 * BS), steps=st.lists(st.lists(change, min_size=1, max_size=3),
                                                     min_size=3, max_size=5), data=st.data())
def test_two_steps_equal_one(size: int, steps, data) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vol = build(Path(tmp), size, steps)
        incs = vol.images[1:]
        cut = data.draw(st.integers(1, len(incs) - 1), label="cut")
        out = Path(tmp, "out")
        out.mkdir()
        with Consolidation(incs[:cut]) as first:
            left = first.write_file(out / "left.ofi")
        with Consolidation([left, *incs[cut:]]) as second:
            two = second.write_file(out / "two.ofi")
        with Consolidation(incs) as whole:
            one = whole.write_file(out / "one.ofi")
        assert blocks(two) == blocks(one)


@SETTINGS
@given(size=st.integers(0, 20 * BS + 3), steps=history, offset_frac=st.floats(0, 1))
def test_stream_from_any_offset(size: int, steps, offset_frac: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vol = build(Path(tmp), size, steps)
        with Consolidation(vol.images) as plan:
            whole = plan.open(0).read()
            assert len(whole) == plan.size, "announced size == bytes streamed"
            offset = int(offset_frac * plan.size)
            assert plan.open(offset).read() == whole[offset:]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 2), position=st.floats(0, 1), seed=st.integers(0, 3))
def test_verify_rejects_any_flipped_byte(which: int, position: float, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vol = build(Path(tmp), 12 * BS + 100, [[("random", 0.3, 700)], [("zero", 0.6, 600)]],
                    seed=seed)
        image = vol.images[which]
        at = min(int(position * image.stat().st_size), image.stat().st_size - 1)
        flip_byte(image, at)
        report = verify([image])
        assert not report.clean, f"flipped byte {at} of {image.name} went unnoticed"
        assert all(isinstance(p, ImageError) for p in report.problems)

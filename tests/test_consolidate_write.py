"""Consolidation's fast path to a local file (``Consolidation.write_file``):
kernel copies, a checker thread, and the disk writing as the copy goes on
(``offsite.durable.WriteBehind``). Same bytes as the checked stream, and a
damaged payload in any input still fails it with nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from offsite import durable
from offsite.cli import cli
from offsite.durable import WriteBehind
from offsite.errors import CorruptImage
from offsite.image import Consolidation, ImageReader, verify
from offsite.image.consolidate import merge
from offsite.testing.images import Volume, flip_byte

BS = 4096


class Spy:
    """Stands in for ``sync_file_range``: records (fd, offset, length, flags)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, int]] = []

    def __call__(self, fd: int, offset: int, length: int, flags: int) -> int:
        self.calls.append((fd, offset, length, flags))
        return 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Every WriteBehind reports to a spy, and starts write-out every 3 blocks."""
    calls = Spy()
    monkeypatch.setattr(durable, "_sync_file_range", lambda: calls)
    monkeypatch.setattr(durable, "WRITE_BEHIND_STEP", 3 * BS)
    return calls


@pytest.fixture
def chain(tmp_path: Path) -> Volume:
    """A full and three incrementals, each of which wins some blocks."""
    vol = Volume(tmp_path / "vol.img", 40 * BS + 10)
    dest = tmp_path / "dest"
    dest.mkdir()
    vol.image(dest, block_size=BS, compression="none")
    for i in range(3):
        vol.write(i * 7 * BS + 100, os.urandom(4 * BS))
        vol.zero(30 * BS + i * BS, BS)
        vol.image(dest)
    return vol


def test_write_behind_starts_each_step_once_in_order(spy: Spy) -> None:
    behind = WriteBehind(7, offset=100, step=10)
    for length in (4, 5, 1, 30, 0, 9, 2):
        behind.wrote(length)
    assert spy.calls == [(7, 100, 10, 2), (7, 110, 30, 2), (7, 140, 11, 2)]


def test_write_behind_without_sync_file_range_does_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(durable, "_sync_file_range", lambda: None)
    behind = WriteBehind(-1, step=1)  # a bad descriptor: any call would fail
    behind.wrote(1 << 30)


def test_sync_file_range_is_found_on_linux(tmp_path: Path) -> None:
    if os.uname().sysname != "Linux":
        pytest.skip("Linux only")
    call = durable._sync_file_range()
    assert call is not None
    data = os.urandom(5 * BS + 3)
    with open(tmp_path / "f", "wb") as f:
        behind = WriteBehind(f.fileno(), step=BS)
        for at in range(0, len(data), 1000):
            f.write(data[at:at + 1000])
            f.flush()
            behind.wrote(len(data[at:at + 1000]))
        os.fsync(f.fileno())
    assert (tmp_path / "f").read_bytes() == data
    assert call(-1, 0, 1, 2) == -1  # a real call: EBADF, not a silent stand-in


@pytest.mark.parametrize("first", [0, 1], ids=["synthetic-full", "incrementals"])
def test_write_file_is_the_checked_stream(chain: Volume, tmp_path: Path, spy: Spy,
                                          first: int) -> None:
    out = tmp_path / "out.ofi"
    with Consolidation(chain.images[first:]) as plan:
        expected = plan.open(0).read()
        plan.write_file(out)
        payloads_end = plan.index_offset
        header = len(plan.header)
    assert out.read_bytes() == expected
    assert verify([out]).clean
    # Write-out started for the payloads, in order, one step after another.
    assert spy.calls, "the write-behind never started"
    at = header
    for _fd, offset, length, flags in spy.calls:
        assert (offset, flags) == (at, 2) and length >= 3 * BS
        at += length
    assert at <= payloads_end


def damage_winner(images: list[Path], which: int, last: bool) -> int:
    """Damage the first or last payload of ``images[which]`` that the
    consolidation of ``images`` copies; return its block."""
    readers = [ImageReader(p) for p in images]
    try:
        won = [e for r, e in merge(readers) if r is readers[which] and e.length]
    finally:
        for r in readers:
            r.close()
    assert won, f"{images[which].name} wins no block"
    entry = won[-1] if last else won[0]
    flip_byte(images[which], entry.offset + min(11, entry.length - 1))
    return entry.block


@pytest.mark.parametrize("last", [False, True], ids=["first-payload", "last-payload"])
@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_a_damaged_payload_in_any_input_fails_and_leaves_nothing(
        chain: Volume, tmp_path: Path, spy: Spy, which: int, last: bool) -> None:
    block = damage_winner(chain.images, which, last)
    out = tmp_path / "out.ofi"
    with Consolidation(chain.images) as plan, pytest.raises(CorruptImage) as caught:
        plan.write_file(out)
    assert caught.value.block == block
    assert caught.value.file == str(chain.images[which])
    assert spy.calls, "the damage was found with the write-behind at work"
    assert sorted(os.listdir(tmp_path)) == ["dest", "vol.img"], "no output, no temporary file"


def test_cli_refuses_a_damaged_full(chain: Volume, tmp_path: Path, spy: Spy) -> None:
    block = damage_winner(chain.images, 0, last=True)
    out = tmp_path / "out.ofi"
    result = CliRunner().invoke(cli, ["image", "consolidate", *map(str, chain.images),
                                      "-o", str(out)])
    assert result.exit_code == 3
    assert f"block {block}" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["dest", "vol.img"]

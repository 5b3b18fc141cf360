"""offsite image …, end to end through the command line."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

from click.testing import CliRunner

from offsite.cli import cli
from offsite.image import Consolidation
from offsite.image.create import create
from offsite.testing.images import Volume

MiB = 1 << 20


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.stderr + result.stdout
    return result.stdout


def test_create_info_verify_consolidate_restore(tmp_path: Path) -> None:
    vol = Volume(tmp_path / "disk.raw", 3 * MiB + 12345)
    dest = tmp_path / "dest"
    dest.mkdir()
    paths = [run("image", "create", str(vol.path), str(dest), "--label", "srv",
                 "--block-size", "64K").strip()]
    vol.states.append(bytes(vol.data))
    for i in range(3):
        vol.scribble(3, 100_000)
        vol.zero(i * 700_000, 200_000)
        paths.append(run("image", "create", str(vol.path), str(dest), "--label", "srv").strip())
        vol.states.append(bytes(vol.data))
    assert [Path(p).name for p in paths] == [
        "srv-b001.ofi", "srv-b001-i001.ofi", "srv-b001-i002.ofi", "srv-b001-i003.ofi"]

    info = json.loads(run("image", "info", "--json", paths[2]))
    assert (info["kind"], info["seq_first"], info["seq_last"]) == ("incremental", 2, 2)
    assert info["block_size"] == 64 * 1024 and info["volume_size"] == len(vol.data)
    assert info["zero_blocks"] >= 2  # 200,000 zeroed bytes cover two whole 64 KiB blocks

    assert run("image", "verify", str(dest)).count("ok ") == 4

    target = tmp_path / "target"
    target.mkdir()
    (target / "srv-b001.ofi").hardlink_to(paths[0])
    run("image", "consolidate", *paths[1:], "--output", str(target / "srv-b001-i003.ofi"))
    assert json.loads(run("image", "info", "--json", str(target / "srv-b001-i003.ofi")))[
        "seq_first"] == 1
    for point, image in [(3, target / "srv-b001-i003.ofi"), (2, Path(paths[2]))]:
        out = tmp_path / f"point{point}.raw"
        run("image", "restore", str(image), str(out))
        assert out.read_bytes() == vol.states[point]

    vol.scribble(1, 5000)
    nxt = Path(run("image", "create", str(vol.path), str(dest), "--label", "srv").strip())
    (target / nxt.name).hardlink_to(nxt)  # incremental 4 chains onto the consolidation
    run("image", "restore", str(target / nxt.name), str(tmp_path / "p4.raw"))
    assert (tmp_path / "p4.raw").read_bytes() == bytes(vol.data)

    full = Path(run("image", "create", str(vol.path), str(dest), "--label", "srv",
                    "--full").strip())
    assert full.name == "srv-b002.ofi"


def test_compression_none_and_zero_volume(tmp_path: Path) -> None:
    src = tmp_path / "zeros.raw"
    src.write_bytes(bytes(MiB))
    dest = tmp_path / "d"
    dest.mkdir()
    image = run("image", "create", str(src), str(dest), "--compression", "none").strip()
    info = json.loads(run("image", "info", "--json", image))
    assert info["payload_bytes"] == 0 and info["zero_blocks"] == info["block_count"]


def test_memory_is_bounded(tmp_path: Path) -> None:
    """create and consolidate hold a few blocks, never an image."""
    src = tmp_path / "big.raw"
    with open(src, "wb") as f:
        for _ in range(48):
            f.write(os.urandom(MiB))
    dest = tmp_path / "dest"
    dest.mkdir()
    tracemalloc.start()
    try:
        images = [create(src, dest, block_size=MiB, workers=2)]
        create_peak = tracemalloc.get_traced_memory()[1]
        for round_ in range(2):
            with open(src, "r+b") as f:  # rewrite every other block
                for block in range(round_, 48, 2):
                    f.seek(block * MiB)
                    f.write(os.urandom(MiB))
            images.append(create(src, dest, workers=2))
        tracemalloc.reset_peak()
        with Consolidation(images) as plan:
            plan.write_file(tmp_path / "synthetic.ofi")
            assert plan.size == os.path.getsize(tmp_path / "synthetic.ofi")
        merge_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert create_peak < 16 * MiB, f"create peaked at {create_peak / MiB:.1f} MiB"
    assert merge_peak < 8 * MiB, f"consolidate peaked at {merge_peak / MiB:.1f} MiB"


def test_create_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    src = tmp_path / "v.raw"
    src.write_bytes(os.urandom(100_000))
    dest = tmp_path / "d"
    dest.mkdir()
    create(src, dest, block_size=4096)
    assert sorted(p.name for p in dest.iterdir()) == [".v-b001.ofimap", "v-b001.ofi"]

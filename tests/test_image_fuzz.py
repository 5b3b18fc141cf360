"""Corrupt and truncated images, fuzzed: hypothesis cuts or overwrites one
image of a real chain, then `offsite image verify` must name it (exit 3),
and `offsite run` to a file:// target must place nothing damaged and nothing
from the damage on, record only what it placed, and leave the destination
as it was.

One allowance, by design (docs/USAGE.md, "Problems in the destination"): a
consolidation reads only the blocks it sends, so damage in a block that a
newer incremental rewrote reaches nothing the target gets; the run then
succeeds, and the target must still restore every point exactly.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offsite.cli import cli
from offsite.image import restore, verify
from offsite.testing.site import Site, files, seq

#: Where to damage: near the start (header, metadata), near the end (index,
#: footer), or anywhere, as a fraction of the file.
POSITION = st.one_of(st.integers(0, 127), st.integers(-128, -1),
                     st.floats(0, 1, exclude_max=True))
DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), POSITION, st.just(b"")),
    # XOR with a mask that is not all zero: every example changes a byte.
    st.tuples(st.just("xor"), POSITION, st.binary(min_size=1, max_size=16).filter(any)),
)


def at(position: int | float, size: int) -> int:
    """A byte offset in a file of ``size`` bytes."""
    if isinstance(position, float):
        return int(position * size)
    return max(0, min(size - 1, position if position >= 0 else size + position))


def damage(image: Path, kind: str, position: int | float, mask: bytes) -> None:
    data = bytearray(image.read_bytes())
    where = at(position, len(data))
    if kind == "truncate":
        del data[where:]
    else:
        for i, m in enumerate(mask[: len(data) - where]):
            data[where + i] ^= m
    image.write_bytes(bytes(data))


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(victim=st.integers(0, 3), how=DAMAGE)
def test_a_damaged_image_is_named_and_never_replicated(
        victim: int, how: tuple[str, int | float, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(Path(tmp))
        for _ in range(4):  # a full and incrementals 1..3
            site.image()
        image = site.vol.images[victim]
        damage(image, *how)
        before = snapshot(site.dest)

        found = CliRunner().invoke(cli, ["image", "verify", str(image)])
        assert found.exit_code == 3, (found.exit_code, found.stderr)
        assert str(image) in found.stderr
        assert "Traceback" not in found.stdout + found.stderr

        target = site.target("t")
        site.one_target(target)
        # settle = 0: a cut-short image is bad at once, not waited for.
        text = site.config.read_text()
        site.config.write_text(text.replace(f'destination = "{site.dest}"\n',
                                            f'destination = "{site.dest}"\nsettle = 0\n'))
        result = site.cli("run", code=None)

        assert result.exit_code in (0, 3), (result.exit_code, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        assert snapshot(site.dest) == before, "the destination was changed"
        placed = files(target) if target.exists() else []
        with site.journal() as journal:
            recorded = sorted(p.remote_path for p in journal.placed("nightly", "t"))
        assert recorded == placed, "the journal records exactly what is at the target"
        if result.exit_code == 3:
            # Named as the destination names it, whoever found the damage
            # (the planner, or the engine as it read a payload).
            assert f"nightly.t: {image.name}: " in result.stderr, result.stderr
            for name in placed:
                assert seq(target / name)[1] < victim, f"{name} is from the damage on"
        # Whatever was placed is whole and restores its point exactly.
        if placed:
            assert verify([target]).clean
            newest = max((target / name for name in placed), key=lambda p: seq(p)[1])
            out = site.root / "restored.raw"
            restore(newest, out)
            assert out.read_bytes() == site.vol.states[seq(newest)[1]]

"""Restore and verify straight from a target: tests every plugin can run.

:class:`RemoteReadTests` places real image chains at a target with ``put``
and reads them back through the plugin's ``get`` (:mod:`offsite.fetch`):
restores of every point, damage of every kind named by its remote path with
nothing left under the output, ``verify_remote_image``, the number of
``get`` streams opened, and the memory held. It uses the fixtures of
:class:`offsite.testing.conformance.TransportFixtures`, so a plugin's test
module adds one line::

    class TestSftpRemoteRead(remote_read.RemoteReadTests, PasswordFixtures):
        pass

Override the ``read_heap_limit`` fixture (in your fixtures class, where
:class:`~offsite.testing.conformance.TransportFixtures` has its default) if
your client library buffers more than a megabyte or two of what it reads
(say why).
"""

from __future__ import annotations

import gc
import io
import os
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from offsite.errors import (
    BrokenChain,
    CorruptImage,
    IncompleteImage,
    NotAnImage,
    NotFound,
)
from offsite.fetch import restore_from_target, verify_remote_image
from offsite.image import Consolidation, ImageReader
from offsite.session import Session
from offsite.testing.images import Volume, flip_byte
from offsite.testing.sources import MiB, random_bytes
from offsite.transport import FileSource

#: The target's subfolder the chains go to (errors must name it).
FOLDER = "site-a"
FULL, MIDDLE, LAST = "vol-b001.ofi", "vol-b001-i002.ofi", "vol-b001-i003.ofi"
#: Small blocks, so that a chain has thousands of them.
BS = 4096


class CountingSession(Session):
    """The real session, recording each ``get`` stream opened through it
    (path, offset, the stream) so a test can count them and see them closed.
    It shares the wrapped session's connection; closing it closes nothing."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.transport, session.endpoint, session.conn)
        self.streams: list[tuple[str, int, io.RawIOBase]] = []

    def get(self, path: str, offset: int = 0) -> io.RawIOBase:
        stream = super().get(path, offset)
        self.streams.append((path, offset, stream))
        return stream

    def close(self) -> None:
        pass


@attrs.frozen
class PlacedChain:
    """A chain at the target: a full image, a consolidation of incrementals
    1..2 (named as 2) and incremental 3, with local copies of the same bytes.

    :ivar local: the local copies, by name.
    :ivar states: the volume at each image, by name.
    """

    local: Path
    states: dict[str, bytes]

    def remote(self, name: str) -> str:
        return f"{FOLDER}/{name}"


def place(session: Session, local: Path, name: str, data: bytes | None = None) -> None:
    """Put ``local/name`` (or ``data``) at the target as ``FOLDER/name``."""
    path = local / name
    if data is not None:
        path = local / f".{name}.changed"
        path.write_bytes(data)
    session.put(f"{FOLDER}/{name}", FileSource(path))


def place_chain(session: Session, work: Path) -> PlacedChain:
    vol = Volume(work / "vol.raw", 1500 * BS + 777, seed=11)
    dest = work / "dest"
    dest.mkdir()
    vol.image(dest, block_size=BS)
    for _ in range(3):
        vol.scribble(5, 3 * BS)
        vol.zero(vol.random.randrange(1400) * BS, 2 * BS)
        vol.image(dest)
    local = work / "at-target"
    local.mkdir()
    shutil.copy(vol.images[0], local / FULL)
    with Consolidation(vol.images[1:3]) as merged:
        merged.write_file(local / MIDDLE)
    shutil.copy(vol.images[3], local / LAST)
    for name in (FULL, MIDDLE, LAST):
        place(session, local, name)
    return PlacedChain(local, {FULL: vol.states[0], MIDDLE: vol.states[2], LAST: vol.states[3]})


def kept_block_offset(chain: PlacedChain) -> int:
    """The offset of a payload byte of the full image that restoring the last
    point reads: a stored block that no later image of the chain rewrites."""
    rewritten: set[int] = set()
    for name in (MIDDLE, LAST):
        with ImageReader(chain.local / name) as reader:
            rewritten.update(e.block for e in reader.entries())
    with ImageReader(chain.local / FULL) as reader:
        entry = next(e for e in reader.entries() if not e.zero and e.block not in rewritten)
    return entry.offset + entry.length // 2


def changed(chain: PlacedChain, name: str, change: Callable[[Path], None]) -> bytes:
    """The bytes of ``name`` after ``change`` (the local copy stays as it was)."""
    copy = chain.local / f".{name}.damaged"
    shutil.copy(chain.local / name, copy)
    change(copy)
    data = copy.read_bytes()
    copy.unlink()
    return data


def truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 100)


def garbage(path: Path) -> None:
    path.write_bytes(random_bytes(path.stat().st_size, seed=3))


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def peak_heap(call: Callable[[], object]) -> int:
    """The Python heap's growth over a collected baseline while ``call`` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


#: (damaged image, how, the error, the image it must name) for a restore of LAST.
DAMAGE = {
    "payload-byte-of-a-member": (FULL, "payload", CorruptImage, FULL),
    "truncated": (LAST, truncated, IncompleteImage, LAST),
    "empty": (LAST, emptied, IncompleteImage, LAST),
    "not-ofi-same-size": (LAST, garbage, NotAnImage, LAST),
    "truncated-member": (MIDDLE, truncated, IncompleteImage, MIDDLE),
    "member-not-ofi": (MIDDLE, garbage, BrokenChain, LAST),
}


class RemoteReadTests:
    """Images read back from the target: restore and verify through ``get``."""

    @pytest.fixture
    def chain(self, session: Session, tmp_path: Path) -> PlacedChain:
        return place_chain(session, tmp_path)

    def test_restore_every_point(self, session: Session, chain: PlacedChain,
                                 tmp_path: Path) -> None:
        chains = {FULL: [FULL], MIDDLE: [FULL, MIDDLE], LAST: [FULL, MIDDLE, LAST]}
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        done: list[str] = []
        for name, state in chain.states.items():
            out = out_dir / f"{name}.raw"
            used = restore_from_target(session, chain.remote(name), out)
            assert [str(i.path) for i in used] == [chain.remote(n) for n in chains[name]]
            assert out.read_bytes() == state, f"the volume at {name}"
            done.append(out.name)
            assert sorted(p.name for p in out_dir.iterdir()) == sorted(done), \
                "nothing beside the outputs: no staging folder, no temporary file"

    @pytest.mark.parametrize("case", list(DAMAGE))
    def test_damage_is_named_by_its_remote_path(self, session: Session, chain: PlacedChain,
                                                tmp_path: Path, case: str) -> None:
        name, how, error, named = DAMAGE[case]
        if how == "payload":
            at = kept_block_offset(chain)
            data = changed(chain, name, lambda p: flip_byte(p, at))
        else:
            assert callable(how)
            data = changed(chain, name, how)
        place(session, chain.local, name, data)
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        with pytest.raises(error) as caught:
            restore_from_target(session, chain.remote(LAST), out_dir / "vol.raw")
        assert caught.value.file == chain.remote(named), str(caught.value)
        assert str(caught.value).startswith(f"{chain.remote(named)}: ")
        if error is BrokenChain:
            assert f"{MIDDLE} at the target is damaged: not an OFI image" in str(caught.value)
        assert list(out_dir.iterdir()) == [], "nothing under OUTPUT, no temporary file"

    def test_verify_a_sound_image(self, session: Session, chain: PlacedChain) -> None:
        with ImageReader(chain.local / MIDDLE) as reader:
            recorded, meta = f"ofi:{reader.digest.hex()}", reader.meta
        found = verify_remote_image(session, chain.remote(MIDDLE), digest=recorded)
        assert (found.meta, found.size) == (meta, (chain.local / MIDDLE).stat().st_size)
        listed = next(f for f in session.list(FOLDER) if f.path == chain.remote(MIDDLE))
        assert verify_remote_image(session, listed).meta == meta
        with pytest.raises(NotFound):
            verify_remote_image(session, chain.remote("vol-b001-i009.ofi"))
        with pytest.raises(ValueError, match="not an image digest"):
            verify_remote_image(session, listed, digest="0" * 64)

    def test_verify_reads_every_payload(self, session: Session, chain: PlacedChain) -> None:
        # The last payload of the full image: rewritten by later images, so a
        # restore of the last point would not notice, but verify reads it all.
        with ImageReader(chain.local / FULL) as reader:
            last = [e for e in reader.entries() if not e.zero][-1]
        place(session, chain.local, FULL,
              changed(chain, FULL, lambda p: flip_byte(p, last.offset + 1)))
        with pytest.raises(CorruptImage, match="payload SHA-256") as caught:
            verify_remote_image(session, chain.remote(FULL))
        assert caught.value.file == chain.remote(FULL)
        assert caught.value.block == last.block

    def test_verify_a_wrong_or_truncated_file(self, session: Session,
                                              chain: PlacedChain) -> None:
        with ImageReader(chain.local / FULL) as reader:
            other = f"ofi:{reader.digest.hex()}"
        with pytest.raises(CorruptImage, match="not the image that was placed") as caught:
            verify_remote_image(session, chain.remote(LAST), digest=other)
        assert caught.value.file == chain.remote(LAST)
        place(session, chain.local, LAST, changed(chain, LAST, truncated))
        with pytest.raises(IncompleteImage) as cut:
            verify_remote_image(session, chain.remote(LAST))
        assert cut.value.file == chain.remote(LAST)

    def test_few_gets_for_thousands_of_blocks(self, session: Session, chain: PlacedChain,
                                              tmp_path: Path) -> None:
        counting = CountingSession(session)
        blocks = 0
        for name in (FULL, MIDDLE, LAST):
            with ImageReader(chain.local / name) as reader:
                blocks += reader.count
        restore_from_target(counting, chain.remote(LAST), tmp_path / "out.raw")
        restored = len(counting.streams)
        verify_remote_image(counting, chain.remote(FULL))
        verified = len(counting.streams) - restored
        # Working out the chain: the image asked for (its header, then its
        # tail: footer and index), one header per other image; opening the 3
        # for the restore: the tails of the other two (headers and the first
        # tail are kept); the merge: a run of payloads per image, and again
        # where one stream serves them all in turns (8 with file://).
        assert restored <= 10, f"{restored} gets to restore {blocks} blocks"
        # Header, the tail (footer and index), then the payloads (3 with file://).
        assert verified <= 4, f"{verified} gets to verify"
        assert all(stream.closed for _p, _o, stream in counting.streams), "all closed"

    def test_memory_stays_small(self, session: Session, tmp_path: Path,
                                read_heap_limit: int) -> None:
        vol = Volume(tmp_path / "big.raw", 40 * MiB, seed=5)
        dest = tmp_path / "dest"
        dest.mkdir()
        full = vol.image(dest, block_size=256 * 1024, compression="none")
        vol.scribble(6, 2 * MiB)
        inc = vol.image(dest, compression="none")
        for image in (full, inc):
            session.put(f"{FOLDER}/{image.name}", FileSource(image))
        out = tmp_path / "out.raw"
        restoring = peak_heap(lambda: restore_from_target(
            session, f"{FOLDER}/{inc.name}", out))
        assert out.read_bytes() == vol.states[1]
        verifying = peak_heap(lambda: verify_remote_image(session, f"{FOLDER}/{full.name}"))
        size = full.stat().st_size
        assert read_heap_limit <= size // 2, "a limit that reading an image whole would pass"
        assert restoring < read_heap_limit, \
            f"restore grew by {restoring / MiB:.1f} MiB for a {size / MiB:.0f} MiB image"
        assert verifying < read_heap_limit, f"verify grew by {verifying / MiB:.1f} MiB"

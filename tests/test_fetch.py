"""Reading images straight from a target (file://): the remote-read suite,
the random access over ``get`` streams, broken chains, and the command line."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from offsite.cli import cli
from offsite.errors import BrokenChain, IncompleteImage
from offsite.fetch import remote_chain, restore_from_target
from offsite.image import ImageReader
from offsite.remote import HEAD, SKIP, TAIL, RemoteAccess, Streams
from offsite.session import Session, Transport
from offsite.testing import conformance, remote_read
from offsite.testing.remote_read import (
    FOLDER,
    FULL,
    LAST,
    MIDDLE,
    CountingSession,
    PlacedChain,
    place,
)
from offsite.testing.sources import MiB, random_bytes
from offsite.transport import BytesSource, Endpoint


class LocalTarget(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, tmp_path: Path) -> Endpoint:
        return Endpoint.from_url((tmp_path / "target").as_uri(), name="local")


class TestLocalRemoteRead(remote_read.RemoteReadTests, LocalTarget):
    pass


# -- random access over get streams ---------------------------------------------


DATA = random_bytes(5 * MiB + 3, seed=1)


class TestStreams(LocalTarget):
    @pytest.fixture
    def counting(self, session: Session) -> CountingSession:
        session.put("f.bin", BytesSource(DATA))
        return CountingSession(session)

    def test_forward_reads_continue_one_stream(self, counting: CountingSession) -> None:
        with RemoteAccess(counting, "f.bin", len(DATA)) as f:
            assert f.pread(1000, 0) == DATA[:1000]
            assert f.pread(5000, 1000) == DATA[1000:6000]
            assert f.pread(10, 6000 + SKIP) == DATA[6000 + SKIP:6010 + SKIP], "gap read through"
            assert [o for _p, o, _s in counting.streams] == [0]
            assert f.pread(10, 6011 + 2 * SKIP) == DATA[6011 + 2 * SKIP:6021 + 2 * SKIP]
            assert f.pread(10, 0) == DATA[:10], "the start, read before: kept"
            assert [o for _p, o, _s in counting.streams] == [0, 6011 + 2 * SKIP]
            back = 6000 + SKIP // 2
            assert f.pread(10, back) == DATA[back:back + 10], "backwards: a new stream"
            assert [o for _p, o, _s in counting.streams] == [0, 6011 + 2 * SKIP, back]
            assert [s.closed for _p, _o, s in counting.streams] == [True, True, False], \
                "one stream open at a time by default"
        assert all(s.closed for _p, _o, s in counting.streams)

    def test_the_end_brings_the_tail_before_it_along(self, counting: CountingSession) -> None:
        size = len(DATA)
        with Streams(counting, limit=4) as streams:
            f = RemoteAccess(streams, "f.bin", size)
            assert f.pread(40, size - 40) == DATA[-40:], "an image's footer"
            assert [o for _p, o, _s in counting.streams] == [size - TAIL]
            assert counting.streams[0][2].closed, "at the end: closed, its place free"
            at = size - TAIL + 1000
            assert f.pread(5000, at) == DATA[at:at + 5000], "the index before it"
            assert f.pread(40, size - 40) == DATA[-40:]
            assert len(counting.streams) == 1, "both kept from the tail read"
            assert f.pread(10, 0) == DATA[:10], "moving on"
            assert f.pread(10, at) == DATA[at:at + 10]
            assert [o for _p, o, _s in counting.streams] == [size - TAIL, 0, at], \
                "the tail is not held once the reader has moved on"

    def test_a_file_read_through_to_its_end_reads_on(self, counting: CountingSession) -> None:
        size, piece = len(DATA), 100_000
        with RemoteAccess(counting, "f.bin", size) as f:
            got = b"".join(f.pread(piece, at) for at in range(0, size, piece))
        assert got == DATA
        assert [o for _p, o, _s in counting.streams] == [0], "the last piece: no tail read"

    def test_the_start_is_kept_up_to_a_limit(self, counting: CountingSession) -> None:
        with RemoteAccess(counting, "f.bin", len(DATA)) as f:
            for at in range(0, HEAD + 1000, 1000):  # read on past the limit
                assert f.pread(1000, at) == DATA[at:at + 1000]
            assert f.pread(1000, 5000) == DATA[5000:6000]
            assert len(counting.streams) == 1, "within the kept start: no new get"
            assert f.pread(1000, HEAD + 500) == DATA[HEAD + 500:HEAD + 1500]
            assert [o for _p, o, _s in counting.streams] == [0, HEAD + 500], \
                "past the kept start: a stream"

    @settings(max_examples=300, deadline=None)
    @given(size=st.integers(0, 3 * TAIL), limit=st.integers(1, 3), reads=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, TAIL + 5000)), max_size=25))
    def test_every_read_returns_the_files_bytes(self, size: int, limit: int,
                                                reads: list[tuple[float, int]]) -> None:
        data = DATA[:size]
        getter = InMemory(data)
        with Streams(getter, limit=limit) as streams:
            f = RemoteAccess(streams, "f.bin", size)
            for where, length in reads:
                # Half the reads end at the file's end (footers), the rest anywhere.
                offset = int(where * size)
                if length % 2:
                    offset = max(0, size - length)
                assert f.pread(length, offset) == data[offset:offset + length]
                assert len(streams._open) <= limit
        assert all(s.closed for s in getter.opened)

    def test_a_restore_reads_no_header_twice(self, session: Session, tmp_path: Path) -> None:
        chain = remote_read.place_chain(session, tmp_path)
        counting = CountingSession(session)
        restore_from_target(counting, chain.remote(LAST), tmp_path / "out.raw")
        assert (tmp_path / "out.raw").read_bytes() == chain.states[LAST]
        at_start = [p for p, o, _s in counting.streams if o == 0]
        assert len(at_start) == len(set(at_start)) == 3, \
            f"each image's start read once, while the chain was found: {counting.streams}"
        tails = [p for p, o, _s in counting.streams if o > 0 and p == chain.remote(LAST)]
        assert len(tails) == 1, "the image asked for: its footer read once"
        assert all(s.closed for _p, _o, s in counting.streams)

    def test_a_stream_with_a_skip_horizon_reads_on_up_to_it(self, session: Session) -> None:
        session.put("f.bin", BytesSource(DATA))
        counting = ReadsOn(session)
        with RemoteAccess(counting, "f.bin", len(DATA)) as f:
            assert f.pread(10, 0) == DATA[:10]
            far = 10 + SKIP + SKIP // 2  # past the core's SKIP, within the stream's horizon
            assert f.pread(10, far) == DATA[far:far + 10]
            assert [o for _p, o, _s in counting.streams] == [0], "read on, no new get"
            beyond = far + 10 + ReadsOn.HORIZON + 1
            assert f.pread(10, beyond) == DATA[beyond:beyond + 10]
            assert [o for _p, o, _s in counting.streams] == [0, beyond], "past it: a new get"

    def test_nothing_to_read_opens_nothing(self, counting: CountingSession) -> None:
        with RemoteAccess(counting, "f.bin", len(DATA)) as f:
            assert f.pread(0, 1000) == b""
            assert f.pread(10, len(DATA)) == b""
            assert counting.streams == []
            assert f.pread(10, len(DATA) - 4) == DATA[-4:], "short only at the end"

    @pytest.mark.parametrize(("limit", "gets"), [(1, 40), (2, 2)])
    def test_interleaved_runs_keep_a_stream_each_within_the_limit(
            self, counting: CountingSession, limit: int, gets: int) -> None:
        # An image's index and its payloads: two forward runs, read in turns.
        index_at = 4 * MiB
        with Streams(counting, limit=limit) as streams:
            f = RemoteAccess(streams, "f.bin", len(DATA))
            for i in range(20):
                assert f.pread(1000, i * 1000) == DATA[i * 1000:(i + 1) * 1000]
                at = index_at + i * 56
                assert f.pread(56, at) == DATA[at:at + 56]
            assert len(counting.streams) == gets
            assert sum(not s.closed for _p, _o, s in counting.streams) == limit
        assert all(s.closed for _p, _o, s in counting.streams)

    def test_the_least_recently_used_stream_is_closed_first(
            self, counting: CountingSession) -> None:
        a, b, c = 0, 2 * MiB, 4 * MiB
        with Streams(counting, limit=2) as streams:
            f = RemoteAccess(streams, "f.bin", len(DATA))
            for at in (a, b, a + 10, c, a + 20):  # c evicts b, not a
                assert f.pread(10, at) == DATA[at:at + 10]
            assert [o for _p, o, _s in counting.streams] == [a, b, c]
            assert [s.closed for _p, _o, s in counting.streams] == [False, True, False]
            f.pread(10, b + 10)
            assert [o for _p, o, _s in counting.streams] == [a, b, c, b + 10]

    def test_closing_a_file_closes_its_streams_only(self, counting: CountingSession) -> None:
        counting.put("g.bin", BytesSource(DATA[:1000]))
        with Streams(counting, limit=4) as streams:
            f = RemoteAccess(streams, "f.bin", len(DATA))
            g = RemoteAccess(streams, "g.bin", 1000)
            assert f.pread(10, 0) + g.pread(10, 0) == DATA[:10] * 2
            f.close()
            assert [(p, s.closed) for p, _o, s in counting.streams] == [
                ("f.bin", True), ("g.bin", False)]
        assert all(s.closed for _p, _o, s in counting.streams)

    def test_a_file_shorter_than_listed_is_incomplete(self, session: Session,
                                                      tmp_path: Path) -> None:
        chain = remote_read.place_chain(session, tmp_path)
        size = (chain.local / LAST).stat().st_size
        with pytest.raises(IncompleteImage) as caught:
            ImageReader(RemoteAccess(session, chain.remote(LAST), size + 100))
        assert caught.value.file == chain.remote(LAST)


# -- chains at the target -------------------------------------------------------


class TestChains(LocalTarget):
    @pytest.fixture
    def chain(self, session: Session, tmp_path: Path) -> PlacedChain:
        return remote_read.place_chain(session, tmp_path)

    def test_a_gap_is_a_broken_chain(self, session: Session, chain: PlacedChain) -> None:
        session.delete(chain.remote(MIDDLE))
        with pytest.raises(BrokenChain, match="gap before sequence 3") as caught:
            remote_chain(session, chain.remote(LAST))
        assert caught.value.file == chain.remote(LAST)
        assert "damaged" not in str(caught.value)

    def test_damaged_images_of_other_sets_are_not_blamed(self, session: Session,
                                                         chain: PlacedChain) -> None:
        session.delete(chain.remote(MIDDLE))
        for name in ("other-b001-i001.ofi", "vol-b002.ofi", "vol-b001-i007.ofi"):
            place(session, chain.local, name, b"not an image" * 100)
        place(session, chain.local, "unnamed.ofi", b"")
        with pytest.raises(BrokenChain) as caught:
            remote_chain(session, chain.remote(LAST))
        message = str(caught.value)
        assert "unnamed.ofi at the target is damaged: incomplete image (only 0 bytes)" in message
        for name in ("other-b001-i001.ofi", "vol-b002.ofi", "vol-b001-i007.ofi"):
            assert name not in message

    def test_only_the_headers_named_before_the_image_are_read(
            self, session: Session, chain: PlacedChain) -> None:
        # Other generations and sets beside the chain: sound images, by name
        # not before LAST in its set; their headers need not be read.
        for name in ("vol-b002.ofi", "vol-b002-i001.ofi", "other-b001.ofi", "vol-b001-i004.ofi"):
            place(session, chain.local, name, (chain.local / FULL).read_bytes())
        counting = CountingSession(session)
        names = [str(i.path) for i in remote_chain(counting, chain.remote(LAST))]
        assert names == [chain.remote(n) for n in (FULL, MIDDLE, LAST)]
        read = {p for p, _o, _s in counting.streams}
        assert read == {chain.remote(n) for n in (FULL, MIDDLE, LAST)}, read

    def test_an_image_renamed_at_the_target_is_found_by_its_header(
            self, session: Session, chain: PlacedChain, tmp_path: Path) -> None:
        place(session, chain.local, "renamed.ofi", (chain.local / MIDDLE).read_bytes())
        session.delete(chain.remote(MIDDLE))
        names = [str(i.path) for i in remote_chain(session, chain.remote(LAST))]
        assert names == [chain.remote(n) for n in (FULL, "renamed.ofi", LAST)]
        restore_from_target(session, chain.remote(LAST), tmp_path / "out.raw")
        assert (tmp_path / "out.raw").read_bytes() == chain.states[LAST]

    def test_an_incremental_chains_onto_a_consolidation(self, session: Session,
                                                        chain: PlacedChain) -> None:
        names = [str(i.path) for i in remote_chain(session, chain.remote(LAST))]
        assert names == [chain.remote(n) for n in (FULL, MIDDLE, LAST)]

    def test_an_existing_output_is_refused_and_kept(self, session: Session,
                                                    chain: PlacedChain, tmp_path: Path) -> None:
        from offsite.errors import UsageError

        out = tmp_path / "out.raw"
        out.write_bytes(b"keep me")
        with pytest.raises(UsageError, match="--force"):
            restore_from_target(session, chain.remote(LAST), out)
        assert out.read_bytes() == b"keep me"
        restore_from_target(session, chain.remote(LAST), out, force=True)
        assert out.read_bytes() == chain.states[LAST]


# -- the command line -----------------------------------------------------------


@pytest.mark.parametrize(("case", "named", "says"), [
    ("garbage", LAST, "not an OFI image (wrong magic)"),
    ("empty", LAST, "incomplete image (only 0 bytes)"),
    ("member-truncated", MIDDLE, "incomplete image (no footer at the end of the file)"),
])
def test_restore_command_names_the_bad_file_in_one_line(tmp_path: Path, case: str, named: str,
                                                        says: str) -> None:
    target = tmp_path / "target"
    endpoint = Endpoint.from_url(target.as_uri(), name="t")
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        chain = remote_read.place_chain(session, tmp_path)
    if case == "garbage":
        (target / FOLDER / LAST).write_bytes(random_bytes(5000, seed=9))
    elif case == "empty":
        (target / FOLDER / LAST).write_bytes(b"")
    else:
        os.truncate(target / FOLDER / MIDDLE, 1000)
    dest = tmp_path / "destination"
    dest.mkdir()
    config = tmp_path / "offsite.toml"
    config.write_text(f'[[job]]\nname = "nightly"\ndestination = {json.dumps(str(dest))}\n'
                      f'[[job.target]]\nname = "t"\nurl = "{target.as_uri()}"\n')
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = CliRunner().invoke(cli, ["--config", str(config), "restore", "nightly", "t",
                                      chain.remote(LAST), str(out_dir / "vol.raw")])
    assert result.exit_code == 3, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {chain.remote(named)} at nightly.t: {says}"), lines[0]
    assert lines[0].endswith("Fix: run offsite verify nightly t --read-data: it marks what is "
                             "damaged or missing at the target, and the next offsite run puts "
                             "it again from the destination"), lines[0]
    assert list(out_dir.iterdir()) == [], "OUTPUT absent, no temporary file"


class _Horizon:
    """A session's stream, declaring how far reading on beats a new get."""

    def __init__(self, stream: Any, horizon: int) -> None:
        self._stream, self.skip_horizon = stream, horizon

    def read(self, n: int = -1, /) -> bytes:
        data: bytes = self._stream.read(n)
        return data

    def close(self) -> None:
        self._stream.close()


class InMemory:
    """A getter over bytes: streams of ``data`` from an offset."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.opened: list[io.BytesIO] = []

    def get(self, path: str, offset: int = 0) -> io.BytesIO:
        stream = io.BytesIO(self.data[offset:])
        self.opened.append(stream)
        return stream


class ReadsOn(CountingSession):
    """A counting session whose streams declare a skip horizon of 2 MiB (as S3's do)."""

    HORIZON = 2 * SKIP

    def get(self, path: str, offset: int = 0) -> Any:
        return _Horizon(super().get(path, offset), self.HORIZON)

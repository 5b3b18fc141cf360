"""Transfer tests: put and get, atomic puts that resume from what the target
really holds, streaming, and connections used from separate threads."""

from __future__ import annotations

import gc
import hashlib
import itertools
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from offsite.errors import NotFound, SourceError
from offsite.session import Session, Transport
from offsite.testing.conformance.contract import (
    ATOMIC,
    DISCARD,
    FOLDERS,
    GET_MISSING,
    GET_OFFSET,
    GET_PAST_END,
    NO_LEFTOVER,
    OVERWRITE,
    PLAN,
    PROGRESS,
    PUT_RESULT,
    RESUME,
    RESUME_TRUTH,
    ROUNDTRIP,
    SKIP,
    STREAMING,
    THREADS,
    TOKEN,
    holds,
    raw_paths,
    read_all,
    sha256_of,
)
from offsite.testing.conformance.fixtures import Tamper
from offsite.testing.sources import (
    FailingSource,
    GeneratedSource,
    MiB,
    RecordingSource,
    random_bytes,
)
from offsite.transport import BytesSource, Endpoint, ResumeToken


class PutGetTests:
    """put and get: bytes, sizes, overwrite, offsets, folders, progress."""

    @pytest.mark.parametrize("size", [0, 1, 64 * 1024 + 3], ids=["empty", "one-byte", "64KiB+3"])
    def test_roundtrip_small(self, session: Session, size: int) -> None:
        data = random_bytes(size, seed=size)
        placed = session.put("set/image.ofi", BytesSource(data))
        assert read_all(session, "set/image.ofi") == data, ROUNDTRIP
        assert (placed.path, placed.size) == ("set/image.ofi", size), PUT_RESULT

    def test_roundtrip_large(self, session: Session, large_size: int) -> None:
        data = random_bytes(large_size, seed=1)
        placed = session.put("large.ofi", BytesSource(data))
        assert read_all(session, "large.ofi") == data, ROUNDTRIP
        assert placed.size == large_size, PUT_RESULT

    def test_overwrite_replaces(self, session: Session) -> None:
        session.put("x.ofi", BytesSource(random_bytes(5000, seed=2)))
        second = random_bytes(1234, seed=3)
        session.put("x.ofi", BytesSource(second))
        assert read_all(session, "x.ofi") == second, OVERWRITE

    def test_get_from_offset(self, session: Session) -> None:
        data = random_bytes(300_001, seed=4)
        session.put("o.ofi", BytesSource(data))
        assert read_all(session, "o.ofi", 123_457) == data[123_457:], GET_OFFSET
        assert read_all(session, "o.ofi", len(data) - 1) == data[-1:], GET_OFFSET
        with holds(GET_PAST_END):
            assert read_all(session, "o.ofi", len(data)) == b"", GET_PAST_END
            assert read_all(session, "o.ofi", len(data) + 10_000) == b"", GET_PAST_END

    def test_nested_folders_created(self, session: Session) -> None:
        session.put("a/b/c/d/deep.ofi", BytesSource(b"deep"))
        assert [f.path for f in session.list()] == ["a/b/c/d/deep.ofi"], FOLDERS
        assert read_all(session, "a/b/c/d/deep.ofi") == b"deep", FOLDERS

    def test_progress_monotonic_to_size(self, session: Session, large_size: int) -> None:
        seen: list[int] = []
        session.put("p.ofi", GeneratedSource(large_size), on_progress=seen.append)
        assert seen, PROGRESS
        assert all(a <= b for a, b in itertools.pairwise(seen)), PROGRESS
        assert seen[0] >= 0, PROGRESS
        assert seen[-1] == large_size, PROGRESS

    def test_progress_of_empty_file(self, session: Session) -> None:
        seen: list[int] = []
        session.put("empty.ofi", BytesSource(b""), on_progress=seen.append)
        assert seen and seen[-1] == 0, PROGRESS

    def test_skip_when_the_stream_offers_it(self, session: Session, large_size: int) -> None:
        data = random_bytes(large_size, seed=11)
        session.put("skip/file.bin", BytesSource(data))
        with session.get("skip/file.bin") as probe:
            if not getattr(probe, "can_skip", False):
                pytest.skip("the plugin's get streams have no skip (optional)")
        # Gaps inside the piece at hand, across many read requests, of
        # nothing, and past the end, between reads of uneven sizes.
        steps = [(0, 1000), (10, 5000), (0, 0), (200_000, 70_000), (1 << 20, 1),
                 (3, 300_000), (len(data), 10)]
        with session.get("skip/file.bin", 7) as stream:
            at = 7
            for gap, length in steps:
                skipped = stream.skip(gap)  # type: ignore[attr-defined]
                assert skipped == min(gap, len(data) - at), SKIP
                at += skipped
                got = stream.read(length)
                assert got == data[at:at + length], SKIP
                at += len(got)
            assert at == len(data) and stream.read(1) == b"", SKIP

    def test_a_read_plan_when_the_stream_takes_one(self, session: Session,
                                                   large_size: int) -> None:
        data = random_bytes(large_size, seed=12)
        session.put("plan/file.bin", BytesSource(data))
        with session.get("plan/file.bin") as probe:
            if not getattr(probe, "can_want", False):
                pytest.skip("the plugin's get streams take no read plan (optional)")
        size = len(data)
        # Planned ranges read with skips between; then off the plan: a range
        # the plan left out, one inside a gap, and a long run to the end.
        plan = [(100, 5000), (70_000, 300_000), (400_000, 1), (1 << 20, 600_000)]
        with session.get("plan/file.bin", 100) as stream:
            stream.want(plan)  # type: ignore[attr-defined]
            at = 100
            for offset, length in plan:
                assert stream.skip(offset - at) == offset - at, PLAN  # type: ignore[attr-defined]
                assert stream.read(length) == data[offset:offset + length], PLAN
                at = offset + length
            stream.want([(at + 10, 1000), (at + 500_000, 1000)])  # type: ignore[attr-defined]
            assert stream.read(50) == data[at:at + 50], PLAN  # off the plan at once
            at += 50
            assert stream.skip(200_000) == 200_000, PLAN  # type: ignore[attr-defined]
            at += 200_000
            assert stream.read(size) == data[at:], PLAN
            assert stream.read(1) == b"", PLAN

    def test_get_missing_raises_not_found(self, session: Session) -> None:
        with pytest.raises(NotFound) as caught:
            read_all(session, "no/such/file.ofi")
        assert caught.value.path == "no/such/file.ofi", GET_MISSING


class AtomicResumeTests:
    """put is atomic, saves a resume token, and resumes."""

    SIZE = 12 * MiB + 1234
    FAIL_AT = 9 * MiB + 7

    def test_failed_put_leaves_nothing_then_resumes(
        self, session: Session, supports_resume: bool
    ) -> None:
        data = random_bytes(self.SIZE, seed=5)
        tokens: list[dict[str, object]] = []
        with pytest.raises(SourceError):
            session.put("set/atomic.ofi", FailingSource(data, self.FAIL_AT),
                        on_token=lambda t: tokens.append(dict(t)))
        assert "set/atomic.ofi" not in raw_paths(session), ATOMIC
        assert session.list() == [], ATOMIC
        with pytest.raises(NotFound):
            read_all(session, "set/atomic.ofi")
        assert tokens, TOKEN

        again = RecordingSource(data)
        seen: list[int] = []
        placed = session.put("set/atomic.ofi", again, resume=tokens[-1],
                             on_progress=seen.append)
        assert placed.size == self.SIZE, PUT_RESULT
        assert read_all(session, "set/atomic.ofi") == data, ROUNDTRIP
        assert raw_paths(session) == {"set/atomic.ofi"}, NO_LEFTOVER
        assert seen and seen[-1] == self.SIZE, PROGRESS
        if supports_resume:
            assert again.offsets and again.offsets[0] > 0, RESUME
            assert seen[0] == again.offsets[0], RESUME

    def _interrupted(self, session: Session, path: str, data: bytes) -> ResumeToken:
        """Start a put of ``data`` that breaks off after FAIL_AT bytes; its last token."""
        tokens: list[ResumeToken] = []
        with pytest.raises(SourceError):
            session.put(path, FailingSource(data, self.FAIL_AT),
                        on_token=lambda t: tokens.append(dict(t)))
        assert tokens, TOKEN
        return tokens[-1]

    @pytest.mark.parametrize("how", ["shorten", "lengthen", "remove"])
    def test_resume_trusts_only_what_the_target_holds(
        self, session: Session, supports_resume: bool, tamper_partial: Tamper, how: str
    ) -> None:
        # The token says how far an earlier attempt got; the target says what
        # is really there now: a partial file cut back (a server that lost
        # its last writes), grown by another writer, or gone.
        data = random_bytes(self.SIZE, seed=11)
        token = self._interrupted(session, "set/tampered.ofi", data)
        why = tamper_partial(session, "set/tampered.ofi", token, how)
        if why is not None:
            pytest.skip(why)
        again = RecordingSource(data)
        placed = session.put("set/tampered.ofi", again, resume=token)
        assert placed.size == self.SIZE, PUT_RESULT
        assert sha256_of(session, "set/tampered.ofi") == hashlib.sha256(data).hexdigest(), \
            f"{RESUME_TRUTH}: {how}: the placed file's bytes differ from the source's"
        assert raw_paths(session, "set") == {"set/tampered.ofi"}, NO_LEFTOVER
        start = again.offsets[0]
        if how == "remove":
            assert start == 0, f"{RESUME_TRUTH}: resumed at {start} with nothing there"
        elif how == "shorten":
            assert start <= self.FAIL_AT // 2, \
                f"{RESUME_TRUTH}: resumed at {start}, the target held {self.FAIL_AT // 2}"
        else:
            assert start <= self.FAIL_AT, \
                f"{RESUME_TRUTH}: resumed at {start}, past the {self.FAIL_AT} bytes sent"
        if supports_resume and how == "shorten":
            assert start > 0, RESUME

    def test_a_token_of_another_file_starts_over(self, session: Session,
                                                 supports_resume: bool) -> None:
        first, second = random_bytes(self.SIZE, seed=12), random_bytes(self.SIZE, seed=13)
        token = self._interrupted(session, "a/first.ofi", first)
        other = RecordingSource(second)
        session.put("b/second.ofi", other, resume=token)
        assert other.offsets == [0], f"{RESUME_TRUTH}: a token of a/first.ofi resumed b/"
        assert read_all(session, "b/second.ofi") == second, ROUNDTRIP
        mine = RecordingSource(first)  # and the first upload's own token still serves it
        session.put("a/first.ofi", mine, resume=token)
        assert read_all(session, "a/first.ofi") == first, ROUNDTRIP
        if supports_resume:
            assert mine.offsets[0] > 0, RESUME

    def test_token_is_saved_before_the_first_byte(self, session: Session,
                                                  large_size: int) -> None:
        # A kill -9 may come at any byte: by then a token must be in the
        # journal, or the next run cannot find (and clean up) the upload.
        said: list[str] = []
        session.put("t/first.ofi", GeneratedSource(large_size, seed=14),
                    on_token=lambda t: said.append("token"),
                    on_progress=lambda done: said.append("bytes") if done else None)
        assert "bytes" in said, PROGRESS
        assert "token" in said[: said.index("bytes")], \
            f"{TOKEN}: bytes reached the target before any token was saved"

    def test_discard_cleans_up_an_abandoned_put(self, session: Session) -> None:
        old, new = random_bytes(3 * MiB, seed=7), random_bytes(self.SIZE, seed=8)
        session.put("set/kept.ofi", BytesSource(old))
        tokens: list[dict[str, object]] = []
        with pytest.raises(SourceError):  # a second upload of that name breaks off
            session.put("set/kept.ofi", FailingSource(new, self.FAIL_AT),
                        on_token=lambda t: tokens.append(dict(t)))
        assert tokens, TOKEN
        if "discard" not in session.transport.info.hooks:
            assert session.discard("set/kept.ofi", tokens[-1]) is False, DISCARD
            return
        assert session.discard("set/kept.ofi", tokens[-1]) is True, DISCARD
        assert session.discard("set/kept.ofi", tokens[-1]) is True, DISCARD
        assert read_all(session, "set/kept.ofi") == old, DISCARD
        assert raw_paths(session) == {"set/kept.ofi"}, DISCARD
        again = RecordingSource(new)
        session.put("set/kept.ofi", again, resume=tokens[-1])
        assert again.offsets == [0], DISCARD
        assert read_all(session, "set/kept.ofi") == new, ROUNDTRIP

    def test_stale_token_starts_over(self, session: Session) -> None:
        data = random_bytes(100_000, seed=6)
        bogus = {"partial": "elsewhere/.x.offsite-partial", "offset": 50_000, "upload": "bogus"}
        session.put("fresh.ofi", BytesSource(data), resume=bogus)
        assert read_all(session, "fresh.ofi") == data, RESUME

    def test_finished_put_leaves_no_partial(self, session: Session) -> None:
        session.put("f/one.ofi", BytesSource(b"1" * 1000))
        assert raw_paths(session) == {"f/one.ofi"}, NO_LEFTOVER


class StreamingTests:
    """put and get keep memory bounded (measured with tracemalloc)."""

    def test_put_and_get_stream(
        self, session: Session, stream_size: int, heap_limit: int, get_heap_limit: int
    ) -> None:
        source = GeneratedSource(stream_size, seed=7)
        # Each phase is measured as growth over a collected baseline, so that
        # garbage the put leaves for the collector is not charged to the get.
        gc.collect()
        tracemalloc.start()
        try:
            session.put("big/stream.bin", source)
            put_peak = tracemalloc.get_traced_memory()[1]
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            got = sha256_of(session, "big/stream.bin")
            get_peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert put_peak < heap_limit, f"{STREAMING}: put peaked at {put_peak / MiB:.1f} MiB"
        assert get_peak < get_heap_limit, f"{STREAMING}: get grew by {get_peak / MiB:.1f} MiB"
        assert got == source.sha256(), ROUNDTRIP


class ThreadTests:
    """Separate connections, used at once from separate threads."""

    def test_two_connections_in_two_threads(self, transport: Transport,
                                            endpoint: Endpoint) -> None:
        def work(n: int) -> None:
            with transport.connect(endpoint) as session:
                for k in range(4):
                    data = random_bytes(300_000 + 7 * k + n, seed=100 * n + k)
                    session.put(f"thread{n}/f{k}.ofi", BytesSource(data))
                    assert read_all(session, f"thread{n}/f{k}.ofi") == data, THREADS
                    assert {f.path for f in session.list(f"thread{n}")} >= {
                        f"thread{n}/f{k}.ofi"}, THREADS

        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(work, n) for n in range(2)]:
                done.result()
        with transport.connect(endpoint) as session:
            assert len(session.list()) == 8, THREADS

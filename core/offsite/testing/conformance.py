"""The transport conformance suite: fixtures to fill in, and test mixins.

Fixtures come in two tiers:

* **to provide** (they raise ``NotImplementedError`` here):
  :meth:`TransportFixtures.endpoint`, a fresh, empty, working target folder
  for each test; :meth:`TransportFixtures.broken_endpoint`, a target that
  cannot work, with the name of the check step that must fail.
* **capabilities and limits** (override when yours differ):
  ``supports_resume``, ``stream_size``, ``heap_limit``, ``get_heap_limit``, ``large_size``,
  ``wrong_credentials``.

The core fixtures ``transport`` and ``session`` are never overridden: they
discover your plugin through its installed entry point, exactly as offsite
does at run time, and talk to it through the core's typed wrapper.

Every assertion message starts with the contract point it checks (the
constants below), so a failure tells a plugin author what to fix.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import time
import traceback
import tracemalloc
import unicodedata
from collections.abc import Iterator

import attrs
import pytest

from offsite.errors import NotFound, SourceError, TargetError
from offsite.session import Session, Transport
from offsite.testing.sources import (
    FailingSource,
    GeneratedSource,
    MiB,
    RecordingSource,
    random_bytes,
)
from offsite.transport import BytesSource, Endpoint, RemoteFile

ROUNDTRIP = "contract: put then get returns identical bytes"
PUT_RESULT = "contract: put returns the placed file's path and size"
OVERWRITE = "contract: put over an existing file replaces it whole"
GET_OFFSET = "contract: get from an offset returns the bytes from there"
ATOMIC = "contract: put is atomic (nothing under the final name until complete)"
NO_LEFTOVER = "contract: a finished put leaves no partial file behind"
TOKEN = "contract: put saves a resume token before the first byte moves"
RESUME = "contract: a resumed put continues at the offset the target holds"
DISCARD = ("contract: discard cleans up after an abandoned put (its token no longer "
           "resumes), twice is fine, and the finished file under that name stays")
STREAMING = "contract: put and get stream (bounded memory whatever the size)"
PROGRESS = "contract: progress is monotonic and ends at the size"
FOLDERS = "contract: put creates missing nested folders"
LISTING = "contract: list returns path, size and mtime of every file, recursively"
LIST_MISSING = "contract: list of a missing folder is empty"
CHECKSUMS = ("contract: put reports the checksum list shows for the file ('kind:value', "
             "or None for both), so a replaced file is noticed")
STAMPS = ("contract: put reports the mtime list shows for the file (within a second), so a "
          "file changed at the target is noticed and a placed one is not uploaded again")
UNICODE = "contract: Unicode names (NFC) round-trip"
DELETE = "contract: delete removes the file"
DELETE_MISSING = "contract: delete of a missing file raises NotFound"
GET_MISSING = "contract: get of a missing file raises NotFound"
CHECK_OK = "contract: check passes every step on a working target"
CHECK_STEPS = "contract: check reports the step that failed, with a fix"
SECRETS = "contract: no secret in a repr, str, message, traceback or log line"

#: A credential value that must never show up anywhere.
CANARY = "canary-S3cr3t-7f3a9e"

#: Names that must survive the trip: accents, CJK, spaces, emoji, RTL, and
#: a name that is NFD on the way in (macOS) and must come back NFC.
UNICODE_NAMES = (
    "café/naïve résumé.ofi",
    "日本語/バックアップ-b001.ofi",
    "with space/a b  c.ofi",
    "emoji 🎉/💾 disk.ofi",
    "עברית/גיבוי.ofi",
    "Ünïcödé-Ω≈ç√.ofi",
)
NFD_NAME = unicodedata.normalize("NFD", "décomposé/fichier-é.ofi")


def read_all(session: Session, path: str, offset: int = 0) -> bytes:
    with session.get(path, offset) as stream:
        return stream.read()


def sha256_of(session: Session, path: str) -> str:
    digest = hashlib.sha256()
    with session.get(path) as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def raw_paths(session: Session, folder: str = "") -> set[str]:
    """What the plugin's own ``list`` returns, partial files included."""
    files = session.transport.pm.hook.list(conn=session.conn, folder=folder)
    return {f.path for f in files}


class TransportFixtures:
    """Fixtures the suite runs on; subclass it and provide the first two."""

    # -- to provide ---------------------------------------------------------

    @pytest.fixture
    def endpoint(self) -> Endpoint:
        """A working target whose folder is fresh and empty for each test."""
        raise NotImplementedError("provide an `endpoint` fixture: a fresh, empty target folder")

    @pytest.fixture
    def broken_endpoint(self) -> tuple[Endpoint, str]:
        """A target that cannot work, and the name of the check step that fails."""
        raise NotImplementedError(
            "provide a `broken_endpoint` fixture: (endpoint, name of the step that must fail)"
        )

    # -- capabilities and limits ---------------------------------------------

    @pytest.fixture
    def supports_resume(self) -> bool:
        """Whether an interrupted put continues where it stopped (not from 0)."""
        return True

    @pytest.fixture
    def wrong_credentials(self, endpoint: Endpoint) -> Endpoint | None:
        """The endpoint with the secret fields set to :data:`CANARY`, which the
        server must refuse; ``None`` for a protocol without credentials."""
        return None

    @pytest.fixture
    def large_size(self) -> int:
        """A size past your protocol's largest chunk or part, not a multiple of any."""
        return 3 * MiB + 4097

    @pytest.fixture
    def stream_size(self) -> int:
        """The size of the streaming test's upload."""
        return 256 * MiB

    @pytest.fixture
    def heap_limit(self) -> int:
        """The Python heap peak allowed while putting ``stream_size``."""
        return 32 * MiB

    @pytest.fixture
    def get_heap_limit(self, heap_limit: int) -> int:
        """The heap growth allowed while getting ``stream_size`` (default: as put).

        A client library that reads ahead may buffer what its flow-control
        window allows; say how much here, and why, in your fixtures."""
        return heap_limit

    # -- the core's (never overridden) ---------------------------------------

    @pytest.fixture
    def transport(self, endpoint: Endpoint) -> Transport:
        return Transport.for_endpoint(endpoint)

    @pytest.fixture
    def session(self, transport: Transport, endpoint: Endpoint) -> Iterator[Session]:
        with transport.connect(endpoint) as session:
            yield session


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
        assert read_all(session, "o.ofi", len(data)) == b"", GET_OFFSET

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


class ListTests:
    """list: every file, recursively, with size and mtime."""

    def test_list_files(self, session: Session) -> None:
        before = time.time()
        wanted = {
            "x.ofi": 10, "w.ofi": 3, "set1/y.ofi": 2000, "set1/y2.ofi": 7,
            "set1/deep/z.ofi": 1, "set1/deep/z2.ofi": 2, "set2/e.ofi": 0,
        }
        for path, size in wanted.items():
            session.put(path, BytesSource(random_bytes(size, seed=size)))
        after = time.time()
        listed = session.list()
        assert {f.path: f.size for f in listed} == wanted, LISTING
        for f in listed:
            assert isinstance(f, RemoteFile), LISTING
            # Servers may round mtimes to seconds or run a little off: allow slack.
            assert before - 300 <= f.mtime <= after + 300, f"{LISTING}: mtime {f.mtime}"

    def test_put_reports_the_checksum_list_shows(self, session: Session,
                                                 large_size: int) -> None:
        placed = {path: session.put(path, BytesSource(random_bytes(size, seed=size)))
                  for path, size in (("a.ofi", 100), ("set/b.ofi", large_size))}
        for f in session.list():
            assert f.checksum == placed[f.path].checksum, CHECKSUMS
            assert abs(f.mtime - placed[f.path].mtime) <= 1.0, \
                f"{STAMPS}: put said {placed[f.path].mtime}, list says {f.mtime}"
            if f.checksum is not None:
                kind, colon, value = f.checksum.partition(":")
                assert kind and colon and value, CHECKSUMS
        again = session.put("a.ofi", BytesSource(random_bytes(100, seed=7)))
        if again.checksum is not None:
            assert again.checksum != placed["a.ofi"].checksum, \
                f"{CHECKSUMS}: other bytes of the same size must get another checksum"

    def test_list_subfolder(self, session: Session) -> None:
        for path in ("a.ofi", "sub/b.ofi", "sub/inner/c.ofi", "subway/d.ofi"):
            session.put(path, BytesSource(b"x"))
        assert [f.path for f in session.list("sub")] == ["sub/b.ofi", "sub/inner/c.ofi"], LISTING

    def test_list_missing_folder_is_empty(self, session: Session) -> None:
        assert session.list("does/not/exist") == [], LIST_MISSING

    def test_list_empty_target(self, session: Session) -> None:
        assert session.list() == [], LISTING


class DeleteTests:
    """delete removes; a missing file is NotFound."""

    def test_delete_removes(self, session: Session) -> None:
        session.put("d/gone.ofi", BytesSource(b"bye"))
        session.put("d/kept.ofi", BytesSource(b"stay"))
        session.delete("d/gone.ofi")
        assert [f.path for f in session.list()] == ["d/kept.ofi"], DELETE
        with pytest.raises(NotFound):
            read_all(session, "d/gone.ofi")

    def test_delete_missing_raises_not_found(self, session: Session) -> None:
        with pytest.raises(NotFound) as caught:
            session.delete("never/was.ofi")
        assert caught.value.path == "never/was.ofi", DELETE_MISSING


class UnicodeTests:
    """Unicode names round-trip through put, list, get and delete."""

    def test_unicode_names(self, session: Session) -> None:
        for i, name in enumerate(UNICODE_NAMES):
            session.put(name, BytesSource(name.encode() * (i + 1)))
        assert {f.path for f in session.list()} == set(UNICODE_NAMES), UNICODE
        for i, name in enumerate(UNICODE_NAMES):
            assert read_all(session, name) == name.encode() * (i + 1), UNICODE
        for name in UNICODE_NAMES:
            session.delete(name)
        assert session.list() == [], UNICODE

    def test_nfd_input_comes_back_nfc(self, session: Session) -> None:
        session.put(NFD_NAME, BytesSource(b"nfd"))
        nfc = unicodedata.normalize("NFC", NFD_NAME)
        assert [f.path for f in session.list()] == [nfc], UNICODE
        assert read_all(session, nfc) == b"nfd", UNICODE


class CheckTests:
    """check: every step on a working target; the failing step on a broken one."""

    def test_check_passes_and_cleans_up(self, transport: Transport, endpoint: Endpoint) -> None:
        report = transport.check(endpoint)
        assert report.ok, f"{CHECK_OK}: {report.failed}"
        names = [s.name for s in report.steps]
        for probe in ("probe-write", "probe-list", "probe-read", "probe-delete"):
            assert probe in names, CHECK_OK
        assert names.index("probe-write") > 0, f"{CHECK_OK}: connect records its own steps"
        with transport.connect(endpoint) as session:
            assert raw_paths(session) == set(), f"{CHECK_OK}: the probe is cleaned up"

    def test_check_names_failing_step(
        self, transport: Transport, broken_endpoint: tuple[Endpoint, str]
    ) -> None:
        endpoint, step = broken_endpoint
        report = transport.check(endpoint)
        assert not report.ok, CHECK_STEPS
        failed = report.failed
        assert failed is not None and failed.name == step, f"{CHECK_STEPS}: {report.steps}"
        assert isinstance(failed.error, TargetError), CHECK_STEPS
        assert failed.error.step == step, CHECK_STEPS
        assert failed.error.hint, f"{CHECK_STEPS}: the error must say how to fix it"
        assert report.steps[-1] is failed, f"{CHECK_STEPS}: steps stop at the failure"

    def test_connect_raises_typed_error(
        self, transport: Transport, broken_endpoint: tuple[Endpoint, str]
    ) -> None:
        endpoint, step = broken_endpoint
        with pytest.raises(TargetError) as caught:
            transport.connect(endpoint).close()
        assert caught.value.step == step, CHECK_STEPS
        assert caught.value.target == endpoint.label, CHECK_STEPS


class SecretTests:
    """No secret leaks through a repr, a message, a traceback or the log."""

    @staticmethod
    def _texts(*things: object) -> list[str]:
        out: list[str] = []
        for thing in things:
            out += [repr(thing), str(thing)]
            if isinstance(thing, BaseException):
                out.append("".join(traceback.format_exception(thing)))
        return out

    def test_no_secret_in_session_or_errors(
        self,
        transport: Transport,
        endpoint: Endpoint,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        # The canary rides along as every credential field the endpoint has,
        # plus a password, whether or not this protocol uses them.
        fields = set(endpoint.credentials) | {"password"}
        canary = attrs.evolve(endpoint, credentials={f: CANARY for f in fields})
        things: list[object] = [canary, canary.credentials.keys(), transport]
        try:
            session = transport.connect(canary)
        except TargetError as exc:
            things.append(exc)
        else:
            with session:
                things += [session, session.conn]
                for call in (lambda: read_all(session, "missing.ofi"),
                             lambda: session.delete("missing.ofi")):
                    try:
                        call()
                    except TargetError as exc:
                        things.append(exc)
        for text in self._texts(*things):
            assert CANARY not in text, f"{SECRETS}: {text[:200]}"
        assert CANARY not in caplog.text, SECRETS

    def test_wrong_credentials_refused_without_leak(
        self,
        transport: Transport,
        wrong_credentials: Endpoint | None,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        if wrong_credentials is None:
            return  # a protocol without credentials has nothing to refuse
        caplog.set_level(logging.DEBUG)
        report = transport.check(wrong_credentials)
        assert report.failed is not None and report.failed.name == "auth", CHECK_STEPS
        for text in self._texts(report.failed.error, report):
            assert CANARY not in text, SECRETS
        assert CANARY not in caplog.text, SECRETS

    def test_endpoint_repr_hides_credentials(self, endpoint: Endpoint) -> None:
        secret = attrs.evolve(endpoint, credentials={"password": CANARY})
        for text in self._texts(secret, secret.url, secret.label):
            assert CANARY not in text, SECRETS


class AllTests(
    PutGetTests,
    AtomicResumeTests,
    StreamingTests,
    ListTests,
    DeleteTests,
    UnicodeTests,
    CheckTests,
    SecretTests,
):
    """Every conformance test: ``class TestMine(AllTests, MyFixtures): pass``."""

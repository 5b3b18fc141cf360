"""The journal: round trips, upserts, atomicity, migrations, threads and processes."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from offsite import journal as journal_mod
from offsite.errors import JournalError
from offsite.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    InFlight,
    Journal,
    Placed,
    TargetStatus,
)

JOB, TARGET = "nightly", "nas"


def full(path: str = "sets/a/full.ofi", **kw: Any) -> Placed:
    """A fully populated Placed, so every column is exercised."""
    values: dict[str, Any] = {
        "remote_path": path,
        "size": 1234,
        "sha256": "ab" * 32,
        "kind": "full",
        "set_id": "set-a",
        "seq_first": 0,
        "seq_last": 0,
        "state": "s0",
        "parent_state": None,
        "sources": ("full-0000.ofi",),
        "source_size": 1200,
        "source_mtime": 1_700_000_000.25,
        "placed_at": 1_700_000_100.5,
    }
    values.update(kw)
    return Placed(**values)


def incr(path: str, first: int, last: int) -> Placed:
    return Placed(
        remote_path=path,
        size=10 * (last - first + 1),
        sha256=None,
        kind="incremental",
        set_id="set-a",
        seq_first=first,
        seq_last=last,
        state=f"s{last}",
        parent_state=f"s{first - 1}",
        sources=tuple(f"inc-{n:04d}.ofi" for n in range(first, last + 1)),
        source_size=30,
        source_mtime=1_700_000_200.0,
        placed_at=1_700_000_300.0,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "config" / "journal.db"


@pytest.fixture
def j(db: Path) -> Any:
    with Journal(db) as journal:
        yield journal


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection, to look at the file behind the journal's back."""
    return sqlite3.connect(path, isolation_level=None, timeout=10)


def user_version(path: Path) -> int:
    conn = raw(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# --- opening ------------------------------------------------------------------


def test_schema_version_matches_migrations() -> None:
    assert SCHEMA_VERSION == 6
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_creates_file_and_folder_at_current_version(db: Path) -> None:
    assert not db.parent.exists()
    Journal(db).close()
    assert db.is_file()
    assert user_version(db) == SCHEMA_VERSION
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_wal_mode_and_busy_timeout(j: Journal, db: Path) -> None:
    conn = raw(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert j._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_reopen_keeps_data(db: Path) -> None:
    with Journal(db) as first:
        first.record_placed(JOB, TARGET, full())
    with Journal(db) as second:
        assert second.placed(JOB, TARGET) == [full()]
    assert user_version(db) == SCHEMA_VERSION


def test_the_targets_stamp_and_a_distrust_mark_are_kept(db: Path) -> None:
    placed = attrs.evolve(full(), remote_mtime=1_800_000_123.25)
    with Journal(db) as j:
        j.record_placed(JOB, TARGET, placed)
        j.distrust(JOB, TARGET, [(placed.remote_path, "changed by hand"), ("nope", "x")])
    with Journal(db) as j:
        assert j.placed(JOB, TARGET) == [attrs.evolve(placed, problem="changed by hand")]
        j.record_placed(JOB, TARGET, placed)  # placed again: trusted again
        assert j.placed(JOB, TARGET) == [placed]


def test_the_targets_checksum_is_kept(db: Path) -> None:
    placed = attrs.evolve(full(), remote_checksum="etag:9b2cf535f27731c974343645a3985328")
    with Journal(db) as j:
        j.record_placed(JOB, TARGET, placed)
    with Journal(db) as j:
        assert j.placed(JOB, TARGET) == [placed]


def test_newer_schema_is_refused_and_left_alone(db: Path) -> None:
    db.parent.mkdir()
    conn = raw(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(JournalError) as info:
        Journal(db)
    assert str(db) in str(info.value)
    assert "newer offsite" in str(info.value)
    assert "upgrade offsite" in str(info.value)
    assert user_version(db) == 7
    conn = raw(db)
    try:  # not switched to WAL either: a newer offsite's file is not ours to change
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()


def test_not_a_database_is_refused(db: Path) -> None:
    db.parent.mkdir()
    content = b"this is not an SQLite database, just some text\n" * 100
    db.write_bytes(content)
    with pytest.raises(JournalError) as info:
        Journal(db)
    assert str(db) in str(info.value)
    assert db.read_bytes() == content


def test_a_folder_in_the_way_is_refused(db: Path) -> None:
    db.mkdir(parents=True)
    with pytest.raises(JournalError) as info:
        Journal(db)
    assert str(db) in str(info.value)


def test_closed_journal_raises_journal_error(db: Path) -> None:
    with Journal(db) as journal:
        pass
    journal.close()  # twice is harmless
    with pytest.raises(JournalError):
        journal.placed(JOB, TARGET)
    with pytest.raises(JournalError):
        journal.record_placed(JOB, TARGET, full())


# --- placed files -------------------------------------------------------------


def test_placed_round_trip(j: Journal) -> None:
    a = full()
    b = incr("sets/a/inc-0003.ofi", 1, 3)
    j.record_placed(JOB, TARGET, a)
    j.record_placed(JOB, TARGET, b)
    got = j.placed(JOB, TARGET)
    assert got == [a, b]  # "sets/a/full.ofi" < "sets/a/inc-0003.ofi"
    assert got[0].sources == ("full-0000.ofi",)
    assert got[1].sources == ("inc-0001.ofi", "inc-0002.ofi", "inc-0003.ofi")
    assert isinstance(got[1].sources, tuple)
    assert got[1].sha256 is None and got[1].parent_state == "s0"


def test_placed_defaults_round_trip(j: Journal) -> None:
    bare = Placed("notes.txt", 3, None, "other")
    j.record_placed(JOB, TARGET, bare)
    assert j.placed(JOB, TARGET) == [bare]


def test_placed_sorted_and_scoped(j: Journal) -> None:
    for path in ("c", "a", "b"):
        j.record_placed(JOB, TARGET, full(path))
    j.record_placed(JOB, "cloud", full("z"))
    j.record_placed("weekly", TARGET, full("y"))
    assert [p.remote_path for p in j.placed(JOB, TARGET)] == ["a", "b", "c"]
    assert [p.remote_path for p in j.placed(JOB, "cloud")] == ["z"]
    assert [p.remote_path for p in j.placed("weekly", TARGET)] == ["y"]
    assert j.placed("other", TARGET) == []


def test_record_placed_upserts_by_remote_path(j: Journal) -> None:
    j.record_placed(JOB, TARGET, full(size=1))
    j.record_placed(JOB, TARGET, full(size=2, sha256=None, sources=("x", "y")))
    assert j.placed(JOB, TARGET) == [full(size=2, sha256=None, sources=("x", "y"))]


def test_forget(j: Journal) -> None:
    for path in ("a", "b", "c"):
        j.record_placed(JOB, TARGET, full(path))
    j.record_placed(JOB, "cloud", full("a"))
    j.forget(JOB, TARGET, (p for p in ["a", "c", "never-there"]))
    assert [p.remote_path for p in j.placed(JOB, TARGET)] == ["b"]
    assert [p.remote_path for p in j.placed(JOB, "cloud")] == ["a"]
    j.forget(JOB, TARGET, [])
    assert [p.remote_path for p in j.placed(JOB, TARGET)] == ["b"]


def test_placed_validates_kind_and_converts_sources() -> None:
    with pytest.raises(ValueError, match="kind"):
        Placed("x", 1, None, "differential")
    assert Placed("x", 1, None, "other", sources=["a", "b"]).sources == ("a", "b")


# --- uploads in flight --------------------------------------------------------


def test_begin_upload_round_trip(j: Journal) -> None:
    before = time.time()
    j.begin_upload(JOB, TARGET, full())
    after = time.time()
    [flight] = j.in_flight(JOB, TARGET)
    assert flight.placed == full()
    assert flight.token is None
    assert flight.bytes_done == 0
    assert before <= flight.started_at <= after
    assert j.in_flight(JOB, "cloud") == []
    assert j.placed(JOB, TARGET) == []  # not placed until it finishes


def test_begin_upload_upserts_and_resets_token(j: Journal) -> None:
    j.begin_upload(JOB, TARGET, full(size=1))
    j.save_token(JOB, TARGET, full().remote_path, {"offset": 5}, bytes_done=5)
    j.begin_upload(JOB, TARGET, full(size=2))
    [flight] = j.in_flight(JOB, TARGET)
    assert flight.placed.size == 2
    assert flight.token is None
    assert flight.bytes_done == 0


def test_in_flight_sorted(j: Journal) -> None:
    for path in ("c", "a", "b"):
        j.begin_upload(JOB, TARGET, full(path))
    assert [f.placed.remote_path for f in j.in_flight(JOB, TARGET)] == ["a", "b", "c"]


def test_token_round_trips_as_json(j: Journal, db: Path) -> None:
    token = {
        "upload_id": "2~abc",
        "parts": [{"n": 1, "etag": '"e1"'}, {"n": 2, "etag": '"e2"'}],
        "offset": 2 * 1024**3,
        "partial": ".offsite-partial-ünïcode",
        "done": False,
        "ratio": 0.5,
        "none": None,
    }
    j.begin_upload(JOB, TARGET, full())
    j.save_token(JOB, TARGET, full().remote_path, token, bytes_done=2 * 1024**3)
    [flight] = j.in_flight(JOB, TARGET)
    assert flight == InFlight(
        placed=full(), token=token, started_at=flight.started_at, bytes_done=2 * 1024**3
    )
    conn = raw(db)
    try:
        stored = conn.execute("SELECT token FROM in_flight").fetchone()[0]
    finally:
        conn.close()
    assert json.loads(stored) == token  # stored as JSON text, readable by anything

    j.save_token(JOB, TARGET, full().remote_path, {"offset": 7})
    [flight] = j.in_flight(JOB, TARGET)
    assert flight.token == {"offset": 7}
    assert flight.bytes_done == 0


def test_save_token_needs_an_upload_in_flight(j: Journal) -> None:
    with pytest.raises(KeyError):
        j.save_token(JOB, TARGET, "nowhere", {"offset": 1})
    assert j.in_flight(JOB, TARGET) == []


def test_save_token_refuses_non_json_and_keeps_the_old_one(j: Journal) -> None:
    j.begin_upload(JOB, TARGET, full())
    j.save_token(JOB, TARGET, full().remote_path, {"offset": 1}, bytes_done=1)
    with pytest.raises(TypeError):
        j.save_token(JOB, TARGET, full().remote_path, {"blob": object()}, bytes_done=9)
    [flight] = j.in_flight(JOB, TARGET)
    assert (flight.token, flight.bytes_done) == ({"offset": 1}, 1)


def test_finish_upload_moves_the_row(j: Journal) -> None:
    j.begin_upload(JOB, TARGET, full(sha256=None))
    j.begin_upload(JOB, TARGET, full("other"))
    j.save_token(JOB, TARGET, full().remote_path, {"offset": 1})
    j.finish_upload(JOB, TARGET, full())
    assert [f.placed.remote_path for f in j.in_flight(JOB, TARGET)] == ["other"]
    assert j.placed(JOB, TARGET) == [full()]


def test_finish_upload_is_one_transaction(j: Journal, db: Path) -> None:
    j.begin_upload(JOB, TARGET, full())
    conn = raw(db)
    # Make the second half (the placed row) fail: the first half must roll back.
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON placed BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    conn.close()
    with pytest.raises(JournalError, match="refused"):
        j.finish_upload(JOB, TARGET, full())
    assert [f.placed for f in j.in_flight(JOB, TARGET)] == [full()]
    assert j.placed(JOB, TARGET) == []
    # And the connection is usable afterwards (no transaction left open).
    j.abandon_upload(JOB, TARGET, full().remote_path)
    assert j.in_flight(JOB, TARGET) == []


def test_abandon_upload(j: Journal) -> None:
    j.begin_upload(JOB, TARGET, full("a"))
    j.begin_upload(JOB, TARGET, full("b"))
    j.begin_upload(JOB, "cloud", full("a"))
    j.abandon_upload(JOB, TARGET, "a")
    j.abandon_upload(JOB, TARGET, "never-there")
    assert [f.placed.remote_path for f in j.in_flight(JOB, TARGET)] == ["b"]
    assert [f.placed.remote_path for f in j.in_flight(JOB, "cloud")] == ["a"]
    assert j.placed(JOB, TARGET) == []


# --- baselines ----------------------------------------------------------------


def test_baseline_is_set_once_and_cleared(j: Journal) -> None:
    assert j.baseline(JOB, TARGET, "new_images_only", 100.5) == 100.5
    assert j.baseline(JOB, TARGET, "new_images_only", 200.0) == 100.5
    assert j.baseline(JOB, TARGET, "new_sets_only", 300.0) == 300.0
    assert j.baseline(JOB, "cloud", "new_images_only", 400.0) == 400.0
    j.clear_baseline(JOB, TARGET, "new_images_only")
    assert j.baseline(JOB, TARGET, "new_images_only", 500.0) == 500.0
    assert j.baseline(JOB, TARGET, "new_sets_only", 0.0) == 300.0
    assert j.baseline(JOB, "cloud", "new_images_only", 0.0) == 400.0
    j.clear_baseline(JOB, TARGET, "never-set")  # harmless


# --- status -------------------------------------------------------------------


def test_set_status_creates_with_defaults(j: Journal) -> None:
    before = time.time()
    j.set_status(JOB, TARGET, bytes_total=10)
    after = time.time()
    [status] = j.statuses()
    assert status == TargetStatus(
        job=JOB, target=TARGET, state="idle", bytes_total=10, updated_at=status.updated_at
    )
    assert before <= status.updated_at <= after


def test_set_status_changes_only_the_given_fields(j: Journal) -> None:
    j.set_status(
        JOB, TARGET, state="running", current="a.ofi", bytes_total=100, rate=5.5, last_run=1.0
    )
    [first] = j.statuses()
    time.sleep(0.01)
    j.set_status(JOB, TARGET, bytes_done=40)
    [second] = j.statuses()
    assert second == attrs.evolve(first, bytes_done=40, updated_at=second.updated_at)
    assert second.updated_at > first.updated_at
    j.set_status(JOB, TARGET, state="failed", current=None, last_error="boom")
    [third] = j.statuses()
    assert (third.state, third.current, third.last_error) == ("failed", None, "boom")
    assert (third.bytes_done, third.bytes_total, third.rate, third.last_run) == (40, 100, 5.5, 1.0)


def test_set_status_rejects_unknown_fields_and_states(j: Journal) -> None:
    with pytest.raises(TypeError, match="colour"):
        j.set_status(JOB, TARGET, colour="blue")
    with pytest.raises(TypeError, match="updated_at"):
        j.set_status(JOB, TARGET, updated_at=1.0)
    with pytest.raises(ValueError, match="state"):
        j.set_status(JOB, TARGET, state="exploded")
    assert j.statuses() == []


def test_statuses_sorted_by_job_and_target(j: Journal) -> None:
    for job, target in [("b", "x"), ("a", "z"), ("a", "y")]:
        j.set_status(job, target, state="ok")
    assert [(s.job, s.target) for s in j.statuses()] == [("a", "y"), ("a", "z"), ("b", "x")]


# --- other connections: threads and processes -----------------------------------


def test_second_journal_in_another_thread_sees_committed_data(j: Journal, db: Path) -> None:
    seen: list[list[TargetStatus]] = []
    errors: list[BaseException] = []
    written = threading.Event()

    def other() -> None:
        try:
            with Journal(db) as mine:
                mine.set_status(JOB, "cloud", state="running", bytes_done=3)
                written.set()
                j.set_status(JOB, TARGET, state="ok")  # through the shared one
                seen.append(mine.statuses())
        except BaseException as exc:
            errors.append(exc)
            written.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert written.wait(30)
    thread.join(30)
    assert not errors
    assert [(s.target, s.state, s.bytes_done) for s in j.statuses()] == [
        ("cloud", "running", 3),
        (TARGET, "ok", 0),
    ]
    assert [(s.target, s.state) for s in seen[0]] == [("cloud", "running"), (TARGET, "ok")]


CHILD = """
import json, sys
from pathlib import Path
import attrs
from offsite.journal import Journal, Placed
with Journal(Path(sys.argv[1])) as j:
    if sys.argv[2] == "write":
        j.set_status("nightly", "cloud", state="running", current="b.ofi", bytes_done=7)
        j.record_placed("nightly", "cloud", Placed("b.ofi", 7, None, "full"))
    print(json.dumps([attrs.asdict(s) for s in j.statuses()]))
"""


def run_child(db: Path, mode: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def test_another_process_sees_committed_data(j: Journal, db: Path) -> None:
    j.set_status(JOB, TARGET, state="running", bytes_done=1, bytes_total=9)
    # The child reads what this process committed ...
    read = run_child(db, "read")
    assert [(s["target"], s["state"], s["bytes_done"]) for s in read] == [(TARGET, "running", 1)]
    # ... and this process reads what the child committed.
    run_child(db, "write")
    assert [(s.target, s.state, s.current, s.bytes_done) for s in j.statuses()] == [
        ("cloud", "running", "b.ofi", 7),
        (TARGET, "running", None, 1),
    ]
    assert j.placed(JOB, "cloud") == [Placed("b.ofi", 7, None, "full")]


def test_status_reader_is_not_blocked_by_a_writer(j: Journal, db: Path) -> None:
    j.set_status(JOB, TARGET, state="ok")
    writer = raw(db)
    writer.execute("BEGIN IMMEDIATE")  # a run in the middle of a write
    writer.execute("UPDATE status SET state = 'failed'")
    try:
        started = time.monotonic()
        read = run_child(db, "read")
        elapsed = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [s["state"] for s in read] == ["ok"]  # the committed state only
    assert elapsed < 8  # did not sit out the 10 s busy timeout


# --- migrations -----------------------------------------------------------------


def make_v1(db: Path) -> None:
    """A database as offsite schema version 1 left it, with rows in every table."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = raw(db)
    conn.execute("BEGIN")
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.execute(
        "INSERT INTO placed (job, target, remote_path, size, sha256, kind, set_id, seq_first, "
        "seq_last, state, parent_state, sources, source_size, source_mtime, placed_at) "
        "VALUES ('nightly', 'nas', 'sets/a/full.ofi', 1234, ?, 'full', 'set-a', 0, 0, 's0', "
        "NULL, '[\"full-0000.ofi\"]', 1200, 1700000000.25, 1700000100.5)",
        ("ab" * 32,),
    )
    conn.execute(
        "INSERT INTO in_flight (job, target, remote_path, size, sha256, kind, sources, "
        "token, bytes_done, started_at) VALUES ('nightly', 'nas', 'sets/a/inc-0001.ofi', 10, "
        "NULL, 'incremental', '[\"inc-0001.ofi\"]', '{\"offset\": 4}', 4, 1700000500.0)"
    )
    conn.execute(
        "INSERT INTO baselines (job, target, option, recorded) "
        "VALUES ('nightly', 'nas', 'new_images_only', 1600000000.0)"
    )
    conn.close()


def test_migrates_version_1_keeping_rows(db: Path) -> None:
    make_v1(db)
    assert user_version(db) == 1
    with Journal(db) as j:
        assert user_version(db) == SCHEMA_VERSION
        assert j.placed(JOB, TARGET) == [full()]
        assert j.placed(JOB, TARGET)[0].remote_checksum is None, "unknown before v3"
        [flight] = j.in_flight(JOB, TARGET)
        assert flight.placed == Placed(
            "sets/a/inc-0001.ofi", 10, None, "incremental", sources=("inc-0001.ofi",)
        )
        assert (flight.token, flight.bytes_done, flight.started_at) == (
            {"offset": 4},
            4,
            1_700_000_500.0,
        )
        assert j.baseline(JOB, TARGET, "new_images_only", 1.0) == 1_600_000_000.0
        assert j.statuses() == []
        j.set_status(JOB, TARGET, state="ok")
        assert [s.state for s in j.statuses()] == ["ok"]


def test_fresh_file_has_the_same_schema_as_a_migrated_one(tmp_path: Path) -> None:
    fresh, migrated = tmp_path / "fresh.db", tmp_path / "migrated.db"
    Journal(fresh).close()
    make_v1(migrated)
    Journal(migrated).close()

    def schema(path: Path) -> list[tuple[str, str]]:
        conn = raw(path)
        try:
            return conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
        finally:
            conn.close()

    assert [name for name, _ in schema(fresh)] == ["baselines", "in_flight", "placed", "status"]
    assert schema(fresh) == schema(migrated)


def test_failed_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Journal(db) as j:
        j.record_placed(JOB, TARGET, full())

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("ALTER TABLE no_such_table ADD COLUMN y")

    monkeypatch.setattr(journal_mod, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(journal_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(JournalError) as info:
        Journal(db)
    assert f"version {SCHEMA_VERSION} to {SCHEMA_VERSION + 1}" in str(info.value)
    assert str(db) in str(info.value)
    assert user_version(db) == SCHEMA_VERSION
    conn = raw(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "half_done" not in tables
    monkeypatch.undo()
    with Journal(db) as j:
        assert j.placed(JOB, TARGET) == [full()]


# --- concurrency ----------------------------------------------------------------


def record_many(journal: Journal, target: str, worker: int, errors: list[BaseException]) -> None:
    try:
        for n in range(200):
            journal.record_placed(JOB, target, full(f"w{worker}/f{n:03d}"))
    except BaseException as exc:
        errors.append(exc)


def test_four_threads_share_one_journal(j: Journal) -> None:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=record_many, args=(j, TARGET, w, errors)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    placed = j.placed(JOB, TARGET)
    assert len(placed) == 800
    assert len({p.remote_path for p in placed}) == 800


def test_threads_on_two_journals_wait_for_each_other(db: Path) -> None:
    errors: list[BaseException] = []
    with Journal(db) as one, Journal(db) as two:
        threads = [
            threading.Thread(target=record_many, args=(journal, TARGET, w, errors))
            for w, journal in enumerate([one, two, one, two])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        assert len(one.placed(JOB, TARGET)) == 800
        assert len(two.placed(JOB, TARGET)) == 800


def test_journal_file_is_private(db: Path) -> None:
    with Journal(db) as j:
        j.record_placed(JOB, TARGET, full())
        wal = Path(f"{db}-wal")
        assert wal.exists()
        assert stat.S_IMODE(wal.stat().st_mode) & 0o077 == 0

"""The journal: a SQLite record of what offsite placed where.

One database file (in the config folder) holds, per job and target:

* every file offsite placed there (:class:`Placed`), so the planner knows
  what a target already has without trusting a listing alone;
* every upload that started and has not finished (:class:`InFlight`), with
  the plugin's resume token, so the engine resumes them after a crash before
  planning anything new;
* the baseline times of the "new images only" / "new generation sets only"
  policies, recorded once when an option is first seen and never guessed;
* the live status and progress of each target (:class:`TargetStatus`),
  which ``offsite status`` reads from another process while a run writes.

Concurrency: targets run in parallel threads of one process, and other
processes read (and may write) the same file. The database runs in WAL mode,
so readers never block the writer nor the writer the readers; every
connection waits up to :data:`BUSY_TIMEOUT_MS` for a lock instead of failing
at once. A :class:`Journal` holds one connection, shared by its threads
under a :class:`threading.Lock`; every write is one ``BEGIN IMMEDIATE``
transaction, which takes the write lock up front so two writers never
deadlock upgrading a read transaction.

Schema versions live in SQLite's ``PRAGMA user_version`` (in the file's
header, written in the same transaction as the migration it records).
:data:`MIGRATIONS` is the ordered list of migrations, ``MIGRATIONS[n]``
taking a database from version ``n`` to ``n + 1``. A migration's DDL is
frozen history: a later schema change is a new migration, never an edit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs

from offsite.errors import JournalError

log = logging.getLogger(__name__)

#: The schema version this offsite writes; ``len(MIGRATIONS)``.
SCHEMA_VERSION = 6

#: How long a statement waits for another connection's lock, in milliseconds.
BUSY_TIMEOUT_MS = 10_000

KINDS = frozenset({"full", "incremental", "other"})
STATES = frozenset({"idle", "running", "ok", "failed"})


def _names(value: Iterable[str]) -> tuple[str, ...]:
    # A typed converter: with plain ``tuple`` mypy cannot infer the item type.
    return tuple(value)


@attrs.frozen
class Placed:
    """A file that offsite placed at a target.

    :ivar remote_path: relative to the target folder.
    :ivar size: its size in bytes at the target.
    :ivar sha256: what identifies the bytes placed, when known: for an image
        ``ofi:`` and its root digest (the footer's SHA-256 over header and
        index, which holds every block's SHA-256: ``offsite image info``
        shows it, ``offsite image verify`` proves a copy matches it); for
        another file the SHA-256 of its bytes, in hex.
    :ivar kind: ``"full"``, ``"incremental"`` or ``"other"``.
    :ivar set_id: the generation set it belongs to, for an image.
    :ivar seq_first: the first sequence number it covers.
    :ivar seq_last: the last sequence number it covers (> ``seq_first`` for a
        consolidation of several incrementals).
    :ivar state: the state restoring it leaves.
    :ivar parent_state: the state it applies to (incrementals).
    :ivar sources: the local file names it was made from (several for a
        consolidation); any iterable is stored as a tuple.
    :ivar source_size: the sum of their sizes when placed.
    :ivar source_mtime: the newest of their mtimes when placed.
    :ivar placed_at: epoch seconds.
    :ivar remote_checksum: the target's own checksum of the file as ``put``
        reported it (``etag:…`` on S3), of the kind ``list`` reports; None
        where the target has none. A listing that shows another one means
        the file was replaced at the target.
    :ivar remote_mtime: the modification time the target reported for the
        file when it was placed (the one ``list`` shows), None where unknown.
        A listing with another one means the file changed at the target.
    :ivar problem: why the file at the target is no longer trusted (changed
        by hand, or found damaged by ``offsite verify``), None while it is:
        the next run puts it again, and that clears the mark.
    :ivar adopted: another tool put the file there and offsite found it to
        hold the destination's file (:mod:`offsite.adopt`): it counts as
        placed, but a mirror never deletes it (offsite did not write it).
    """

    remote_path: str
    size: int
    sha256: str | None
    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    set_id: str | None = None
    seq_first: int | None = None
    seq_last: int | None = None
    state: str | None = None
    parent_state: str | None = None
    sources: tuple[str, ...] = attrs.field(default=(), converter=_names)
    source_size: int = 0
    source_mtime: float = 0.0
    placed_at: float = 0.0
    remote_checksum: str | None = None
    remote_mtime: float | None = None
    problem: str | None = None
    adopted: bool = False


@attrs.frozen
class InFlight:
    """An upload that started and has not finished.

    :ivar placed: what will be recorded when it completes (``size`` is the
        full upload size).
    :ivar token: the plugin's resume token, ``None`` until it saved one.
    :ivar started_at: epoch seconds :meth:`Journal.begin_upload` was called.
    :ivar bytes_done: the bytes known durable at the target with the token.
    """

    placed: Placed
    token: Mapping[str, Any] | None
    started_at: float
    bytes_done: int = 0


@attrs.frozen
class TargetStatus:
    """The live status of one target of one job.

    :ivar state: ``"idle"``, ``"running"``, ``"ok"`` or ``"failed"``.
    :ivar current: the remote path being uploaded.
    :ivar bytes_done: bytes moved in this run.
    :ivar bytes_total: bytes this run has to move.
    :ivar rate: recent bytes per second.
    :ivar last_error: the last error's message, for an operator.
    :ivar last_run: epoch seconds the last run of this target ended.
    :ivar updated_at: epoch seconds of the last change.
    :ivar queued: uploads this run still has to start after the current one.
    :ivar retries: how often this run has retried the target so far.
    """

    job: str
    target: str
    state: str = attrs.field(validator=attrs.validators.in_(STATES))
    current: str | None = None
    bytes_done: int = 0
    bytes_total: int = 0
    rate: float = 0.0
    last_error: str | None = None
    last_run: float | None = None
    updated_at: float = 0.0
    queued: int = 0
    retries: int = 0


# --- schema -----------------------------------------------------------------

Migration = Callable[[sqlite3.Connection], None]


def _v0_to_v1(conn: sqlite3.Connection) -> None:
    """Version 1: placed files, uploads in flight, policy baselines."""
    # One statement per execute(): executescript() would commit the
    # transaction the migration runs in.
    conn.execute(
        """
        CREATE TABLE placed (
            job           TEXT NOT NULL,
            target        TEXT NOT NULL,
            remote_path   TEXT NOT NULL,
            size          INTEGER NOT NULL,
            sha256        TEXT,
            kind          TEXT NOT NULL,
            set_id        TEXT,
            seq_first     INTEGER,
            seq_last      INTEGER,
            state         TEXT,
            parent_state  TEXT,
            sources       TEXT NOT NULL DEFAULT '[]',  -- JSON array of names
            source_size   INTEGER NOT NULL DEFAULT 0,
            source_mtime  REAL NOT NULL DEFAULT 0,
            placed_at     REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (job, target, remote_path)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE in_flight (
            job           TEXT NOT NULL,
            target        TEXT NOT NULL,
            remote_path   TEXT NOT NULL,
            size          INTEGER NOT NULL,
            sha256        TEXT,
            kind          TEXT NOT NULL,
            set_id        TEXT,
            seq_first     INTEGER,
            seq_last      INTEGER,
            state         TEXT,
            parent_state  TEXT,
            sources       TEXT NOT NULL DEFAULT '[]',
            source_size   INTEGER NOT NULL DEFAULT 0,
            source_mtime  REAL NOT NULL DEFAULT 0,
            placed_at     REAL NOT NULL DEFAULT 0,
            token         TEXT,                        -- JSON object, or NULL
            bytes_done    INTEGER NOT NULL DEFAULT 0,
            started_at    REAL NOT NULL,
            PRIMARY KEY (job, target, remote_path)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE baselines (
            job       TEXT NOT NULL,
            target    TEXT NOT NULL,
            option    TEXT NOT NULL,
            recorded  REAL NOT NULL,
            PRIMARY KEY (job, target, option)
        )
        """
    )


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Version 2: the live status of each target."""
    # "current" is quoted: it is an SQL keyword (CURRENT ROW, CURRENT_TIME).
    conn.execute(
        """
        CREATE TABLE status (
            job          TEXT NOT NULL,
            target       TEXT NOT NULL,
            state        TEXT NOT NULL DEFAULT 'idle',
            "current"    TEXT,
            bytes_done   INTEGER NOT NULL DEFAULT 0,
            bytes_total  INTEGER NOT NULL DEFAULT 0,
            rate         REAL NOT NULL DEFAULT 0,
            last_error   TEXT,
            last_run     REAL,
            updated_at   REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (job, target)
        )
        """
    )


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Version 3: the target's own checksum of each placed file (NULL before)."""
    for table in ("placed", "in_flight"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN remote_checksum TEXT")


def _v3_to_v4(conn: sqlite3.Connection) -> None:
    """Version 4: the target's modification time of each placed file, and
    the reason a placed file is no longer trusted (NULL before, and while it is)."""
    for table in ("placed", "in_flight"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN remote_mtime REAL")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN problem TEXT")


def _v4_to_v5(conn: sqlite3.Connection) -> None:
    """Version 5: a target's queue (uploads still to start) and retries in
    this run, for ``offsite status`` and the replicator's metrics."""
    conn.execute("ALTER TABLE status ADD COLUMN queued INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE status ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")


def _v5_to_v6(conn: sqlite3.Connection) -> None:
    """Version 6: whether a placed file was adopted (found at the target,
    put there by another tool) rather than uploaded (0 before)."""
    for table in ("placed", "in_flight"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0")


#: ``MIGRATIONS[n]`` takes a database from schema version ``n`` to ``n + 1``.
#: Each runs in its own transaction together with the version bump.
MIGRATIONS: Sequence[Migration] = (_v0_to_v1, _v1_to_v2, _v2_to_v3, _v3_to_v4, _v4_to_v5,
                                 _v5_to_v6)

assert len(MIGRATIONS) == SCHEMA_VERSION

# The columns holding a Placed, in table order; shared by placed and in_flight.
_PLACED_COLUMNS = (
    "remote_path",
    "size",
    "sha256",
    "kind",
    "set_id",
    "seq_first",
    "seq_last",
    "state",
    "parent_state",
    "sources",
    "source_size",
    "source_mtime",
    "placed_at",
    "remote_checksum",
    "remote_mtime",
    "problem",
    "adopted",
)

# The TargetStatus fields set_status may change (job and target are the key,
# updated_at is always "now").
_STATUS_FIELDS = (
    "state",
    "current",
    "bytes_done",
    "bytes_total",
    "rate",
    "last_error",
    "last_run",
    "queued",
    "retries",
)


# The statements built with f-strings below (S608) interpolate only table
# and column names from this module's constants; values are always bound.


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    conflict = ", ".join(key)
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


_PLACED_UPSERT = _upsert_sql(
    "placed", ("job", "target", *_PLACED_COLUMNS), ("job", "target", "remote_path")
)
_IN_FLIGHT_UPSERT = _upsert_sql(
    "in_flight",
    ("job", "target", *_PLACED_COLUMNS, "token", "bytes_done", "started_at"),
    ("job", "target", "remote_path"),
)
_PLACED_SELECT = ", ".join(_PLACED_COLUMNS)


def _placed_values(placed: Placed) -> tuple[Any, ...]:
    return (
        placed.remote_path,
        placed.size,
        placed.sha256,
        placed.kind,
        placed.set_id,
        placed.seq_first,
        placed.seq_last,
        placed.state,
        placed.parent_state,
        json.dumps(list(placed.sources)),
        placed.source_size,
        placed.source_mtime,
        placed.placed_at,
        placed.remote_checksum,
        placed.remote_mtime,
        placed.problem,
        int(placed.adopted),
    )


def _placed_from_row(row: sqlite3.Row) -> Placed:
    return Placed(
        remote_path=row["remote_path"],
        size=row["size"],
        sha256=row["sha256"],
        kind=row["kind"],
        set_id=row["set_id"],
        seq_first=row["seq_first"],
        seq_last=row["seq_last"],
        state=row["state"],
        parent_state=row["parent_state"],
        sources=tuple(json.loads(row["sources"])),
        source_size=row["source_size"],
        source_mtime=float(row["source_mtime"]),
        placed_at=float(row["placed_at"]),
        remote_checksum=row["remote_checksum"],
        remote_mtime=None if row["remote_mtime"] is None else float(row["remote_mtime"]),
        problem=row["problem"],
        adopted=bool(row["adopted"]),
    )


def _create_private(path: Path) -> None:
    """Create an empty journal file readable by its owner only.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so
    this covers them too. Resume tokens are no secrets, but the journal sits
    next to the credential store and says what is where: keep it private.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Journal:
    """The journal database at ``path``; safe to share between threads.

    Creates the file (and its folder) if missing and migrates an older schema.

    :raises JournalError: the file cannot be opened, is not an SQLite
        database, or was written by a newer offsite.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        except OSError as exc:
            raise JournalError(f"cannot create it: {exc}", file=self.path) from exc
        try:
            # isolation_level=None: no implicit transactions, so that every
            # BEGIN/COMMIT below is ours and visible in the code.
            # timeout is SQLite's busy_timeout: wait for another connection's
            # lock rather than fail with "database is locked" at once.
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open it: {exc}", file=self.path) from exc
        try:
            self._conn.row_factory = sqlite3.Row
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    def _setup(self) -> None:
        with self._errors():
            # The first read of the file: fails here if it is not a database.
            version = self._version()
            self._refuse_newer(version)
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                # Still correct, only readers and the writer block each other.
                log.warning("journal %s: WAL mode unavailable, using %s", self.path, mode)
            # FULL: a committed placed row or resume token survives a power
            # cut; NORMAL could roll the last ones back.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate()

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"written by a newer offsite (schema version {version}, "
                f"this offsite knows up to {SCHEMA_VERSION})",
                file=self.path,
                fix="upgrade offsite",
            )

    def _migrate(self) -> None:
        """Bring the schema up to :data:`SCHEMA_VERSION`, one step per transaction."""
        # Module globals are read at call time on purpose (tests extend them).
        target = SCHEMA_VERSION
        # Up to date is the common case; it must not wait for the write lock,
        # or `offsite status` would queue behind a running replicator.
        if self._version() == target:
            return
        while True:
            with self._transaction():
                # Read inside the write transaction: another process may have
                # migrated since we looked.
                version = self._version()
                self._refuse_newer(version)
                if version >= target:
                    return
                try:
                    MIGRATIONS[version](self._conn)
                except sqlite3.Error as exc:
                    raise JournalError(
                        f"migrating the schema from version {version} to {version + 1} "
                        f"failed: {exc}",
                        file=self.path,
                    ) from exc
                # The version lives in the file header, changed in this same
                # transaction: a failed migration leaves both untouched.
                self._conn.execute(f"PRAGMA user_version = {version + 1:d}")
                log.info("journal %s: schema migrated to version %d", self.path, version + 1)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite's errors (locked past the timeout, disk I/O, not a
        database, closed) into a :class:`JournalError` naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalError(str(exc), file=self.path) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the caller holds the lock (or is __init__)."""
        with self._errors():
            # IMMEDIATE takes the write lock now (waiting up to busy_timeout)
            # rather than at the first write, where SQLite cannot wait.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT, which can leave the transaction
                # open; the original error is the one worth reporting.
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._transaction() as conn:
            yield conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        # One statement is one read transaction: a consistent snapshot.
        with self._lock, self._errors():
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {str(self.path)!r}>"

    # --- placed files ---------------------------------------------------------

    def placed(self, job: str, target: str) -> list[Placed]:
        """Every file recorded as placed at ``target``, sorted by remote path."""
        rows = self._read(
            f"SELECT {_PLACED_SELECT} FROM placed WHERE job = ? AND target = ? "  # noqa: S608
            "ORDER BY remote_path",
            (job, target),
        )
        return [_placed_from_row(row) for row in rows]

    def record_placed(self, job: str, target: str, placed: Placed) -> None:
        """Record ``placed``, replacing any record of the same remote path."""
        with self._write() as conn:
            conn.execute(_PLACED_UPSERT, (job, target, *_placed_values(placed)))

    def distrust(self, job: str, target: str, problems: Iterable[tuple[str, str]]) -> None:
        """Mark placed files as no longer trusted: ``(remote_path, why)`` pairs.

        The mark stays until the file is recorded as placed again; paths
        without a record are ignored.
        """
        params = [(why, job, target, path) for path, why in problems]
        with self._write() as conn:
            conn.executemany(
                "UPDATE placed SET problem = ? WHERE job = ? AND target = ? AND remote_path = ?",
                params,
            )

    def forget(self, job: str, target: str, remote_paths: Iterable[str]) -> None:
        """Drop the records of ``remote_paths`` (deleted, or gone by hand).

        Paths without a record are ignored.
        """
        # Materialised before the lock: a generator must not run under it.
        params = [(job, target, path) for path in remote_paths]
        with self._write() as conn:
            conn.executemany(
                "DELETE FROM placed WHERE job = ? AND target = ? AND remote_path = ?", params
            )

    # --- uploads in flight ----------------------------------------------------

    def begin_upload(self, job: str, target: str, placed: Placed) -> None:
        """Record that the upload of ``placed`` starts now, without a token.

        Replaces an earlier in-flight record of the same remote path.
        """
        with self._write() as conn:
            conn.execute(
                _IN_FLIGHT_UPSERT,
                (job, target, *_placed_values(placed), None, 0, time.time()),
            )

    def save_token(
        self,
        job: str,
        target: str,
        remote_path: str,
        token: Mapping[str, Any],
        bytes_done: int = 0,
    ) -> None:
        """Store the plugin's resume token (as JSON) for an upload in flight.

        :raises TypeError: the token is not JSON-serialisable.
        :raises KeyError: no upload of ``remote_path`` is in flight there
            (:meth:`begin_upload` was not called, or it already finished).
        """
        text = json.dumps(dict(token), sort_keys=True)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE in_flight SET token = ?, bytes_done = ? "
                "WHERE job = ? AND target = ? AND remote_path = ?",
                (text, bytes_done, job, target, remote_path),
            )
            if cursor.rowcount == 0:
                raise KeyError(f"no upload of {remote_path!r} to {job}/{target} is in flight")

    def in_flight(self, job: str, target: str) -> list[InFlight]:
        """The uploads to ``target`` that started and have not finished,
        sorted by remote path."""
        rows = self._read(
            f"SELECT {_PLACED_SELECT}, token, bytes_done, started_at FROM in_flight "  # noqa: S608
            "WHERE job = ? AND target = ? ORDER BY remote_path",
            (job, target),
        )
        return [
            InFlight(
                placed=_placed_from_row(row),
                token=None if row["token"] is None else json.loads(row["token"]),
                started_at=float(row["started_at"]),
                bytes_done=row["bytes_done"],
            )
            for row in rows
        ]

    def finish_upload(self, job: str, target: str, placed: Placed) -> None:
        """Record a completed upload: in one transaction, drop its in-flight
        record and record ``placed``, so a crash leaves one or the other."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM in_flight WHERE job = ? AND target = ? AND remote_path = ?",
                (job, target, placed.remote_path),
            )
            conn.execute(_PLACED_UPSERT, (job, target, *_placed_values(placed)))

    def abandon_upload(self, job: str, target: str, remote_path: str) -> None:
        """Drop the in-flight record of ``remote_path`` (the upload will not
        be resumed); nothing happens if there is none."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM in_flight WHERE job = ? AND target = ? AND remote_path = ?",
                (job, target, remote_path),
            )

    # --- policy baselines -----------------------------------------------------

    def baseline(self, job: str, target: str, option: str, now: float) -> float:
        """The time ``option`` was first enabled for ``target``.

        Records ``now`` if no time is recorded yet; later calls return that
        first time whatever ``now`` they pass, until :meth:`clear_baseline`.
        """
        with self._write() as conn:
            conn.execute(
                "INSERT INTO baselines (job, target, option, recorded) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job, target, option) DO NOTHING",
                (job, target, option, now),
            )
            row = conn.execute(
                "SELECT recorded FROM baselines WHERE job = ? AND target = ? AND option = ?",
                (job, target, option),
            ).fetchone()
        return float(row["recorded"])

    def recorded_baseline(self, job: str, target: str, option: str) -> float | None:
        """The baseline of ``option`` if one is recorded; records nothing."""
        rows = self._read(
            "SELECT recorded FROM baselines WHERE job = ? AND target = ? AND option = ?",
            (job, target, option),
        )
        return float(rows[0]["recorded"]) if rows else None

    def clear_baseline(self, job: str, target: str, option: str) -> None:
        """Forget the baseline of ``option`` (it was switched off)."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM baselines WHERE job = ? AND target = ? AND option = ?",
                (job, target, option),
            )

    # --- status and progress --------------------------------------------------

    def set_status(self, job: str, target: str, **fields: Any) -> None:
        """Change the given :class:`TargetStatus` fields of ``target``; the
        others keep their value (or their default for a new row).
        ``updated_at`` becomes now.

        :raises TypeError: a field that is not a settable TargetStatus field
            (``job``, ``target`` and ``updated_at`` are not).
        :raises ValueError: ``state`` is not one of :data:`STATES`.
        """
        unknown = sorted(set(fields) - set(_STATUS_FIELDS))
        if unknown:
            raise TypeError(f"set_status: not a settable status field: {', '.join(unknown)}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"set_status: state must be one of {sorted(STATES)}")
        # Only the given columns appear in the statement, so the others are
        # left alone on update and take the table's defaults on insert.
        columns = [c for c in _STATUS_FIELDS if c in fields]
        sql = _upsert_sql("status", ("job", "target", *columns, "updated_at"), ("job", "target"))
        with self._write() as conn:
            conn.execute(sql, (job, target, *(fields[c] for c in columns), time.time()))

    def statuses(self) -> list[TargetStatus]:
        """The status of every target of every job, sorted by job and target."""
        rows = self._read(
            'SELECT job, target, state, "current", bytes_done, bytes_total, rate, '
            "last_error, last_run, updated_at, queued, retries FROM status ORDER BY job, target"
        )
        return [
            TargetStatus(
                job=row["job"],
                target=row["target"],
                state=row["state"],
                current=row["current"],
                bytes_done=row["bytes_done"],
                bytes_total=row["bytes_total"],
                rate=float(row["rate"]),
                last_error=row["last_error"],
                last_run=None if row["last_run"] is None else float(row["last_run"]),
                updated_at=float(row["updated_at"]),
                queued=row["queued"],
                retries=row["retries"],
            )
            for row in rows
        ]


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "InFlight",
    "Journal",
    "JournalError",
    "Placed",
    "TargetStatus",
]

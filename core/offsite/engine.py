"""The engine: carries out plans at targets, and says what it is doing.

For each job: scan the destination once; then run its targets in priority
order (lower first; equal priorities in parallel threads). For each target:

1. connect (credentials from the store, a bandwidth limit if configured);
2. finish the uploads the journal says were in flight, from their resume
   tokens, before anything new;
3. list the target, take the policy baselines, and :func:`offsite.plan.plan`;
4. carry out the plan: images and consolidations stream straight from the
   destination into ``put`` and check every payload before handing it on
   (:mod:`offsite.image.stream`), every step is recorded in the journal,
   deletes only in mirror mode.

A :class:`~offsite.errors.Transient` failure reconnects and starts again
from step 2 (so the interrupted upload resumes), up to ``retries`` times with
exponential backoff and jitter; authentication, permission and other fatal
errors fail the target at once. Damaged images and broken chains are
reported and skipped, never replicated past. One target failing never stops
the others. Everything that happens is an :data:`Event`, delivered to the
listeners (progress display, JSON lines, the journal's live status).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from offsite import overlap
from offsite.adopt import adopt
from offsite.config import Config, Job, TargetConfig
from offsite.credentials import CredentialStore
from offsite.destination import scan_destination
from offsite.errors import (
    ConfigError,
    CredentialError,
    Fatal,
    ImageError,
    Locked,
    NotFound,
    OffsiteError,
    PluginError,
    SourceError,
    TargetError,
    Transient,
    UsageError,
    find_cause,
)
from offsite.events import (
    EXIT_BAD_DATA,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_TARGET_FAILED,
    EXIT_USAGE,
    Adopted,
    BytesProgressed,
    Cancelled,
    DataProblem,
    Deleted,
    Event,
    Listener,
    RetryScheduled,
    RunDone,
    RunStarted,
    TargetDone,
    TargetFailed,
    TargetResult,
    UploadDone,
    UploadStarted,
    event_name,
    exit_code,
)
from offsite.image.consolidate import Consolidation
from offsite.image.stream import ImageSource
from offsite.journal import Journal, Placed
from offsite.lock import JobLock
from offsite.plan import Delete, LocalFile, Note, Options, Plan, Put, plan
from offsite.plugins import Registry, discover_for
from offsite.session import Session, Transport
from offsite.throttle import BandwidthLimit
from offsite.transport import Endpoint, FileSource, Readable, Source

log = logging.getLogger(__name__)


def _named(job: Job, file: object) -> str:
    """A damaged file as the planner's notes name it: relative to the
    destination (the message itself gives the full path)."""
    try:
        return Path(str(file)).relative_to(job.destination).as_posix()
    except ValueError:
        return str(file)


class HashingSource:
    """A source that computes the SHA-256 of what a ``put`` read, end to end."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.sha256: str | None = None

    @property
    def size(self) -> int:
        return self.inner.size

    def open(self, offset: int = 0) -> Readable:
        digest = hashlib.sha256()
        if offset:  # a resumed upload: hash the part that is already there
            with _closing(self.inner.open(0)) as head:
                left = offset
                while left:
                    chunk = head.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    digest.update(chunk)
                    left -= len(chunk)
        return _HashingReader(self, self.inner.open(offset), digest, offset)


class _closing:
    def __init__(self, thing: Readable) -> None:
        self.thing = thing

    def __enter__(self) -> Readable:
        return self.thing

    def __exit__(self, *exc: object) -> None:
        self.thing.close()


class _HashingReader:
    def __init__(self, owner: HashingSource, inner: Readable, digest: Any, at: int) -> None:
        self._owner, self._inner, self._digest, self._at = owner, inner, digest, at

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._digest.update(data)
        self._at += len(data)
        # Done at the announced size: the core's reader never asks past it.
        if self._at == self._owner.size or not data:
            self._owner.sha256 = self._digest.hexdigest()
        return data

    def close(self) -> None:
        self._inner.close()


# ---------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------


def target_endpoint(job: Job, target: TargetConfig,
                    credentials: CredentialStore | None) -> Endpoint:
    """The target's endpoint with its stored credentials (none stored: none)."""
    creds = credentials.get(f"{job.name}.{target.name}") if credentials else {}
    return attrs.evolve(target.endpoint, credentials=creds)


def target_transport(job: Job, target: TargetConfig, credentials: CredentialStore | None,
                     registry: Registry | None = None) -> Transport:
    """The transport for a target, with its bandwidth limit if it has one."""
    wrappers = [BandwidthLimit(target.bwlimit)] if target.bwlimit else []
    return Transport.for_endpoint(target_endpoint(job, target, credentials), registry,
                                  wrappers)


class Engine:
    """Runs jobs. One engine per process; targets run on worker threads.

    :param sleep: how to wait between retries (tests pass a fake).
    """

    def __init__(
        self,
        config: Config,
        journal: Journal,
        credentials: CredentialStore | None = None,
        *,
        registry: Registry | None = None,
        listeners: Sequence[Listener] = (),
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_delete: int | None = None,
        wait: bool = False,
        command: str = "offsite run",
    ) -> None:
        self.config = config
        #: Wait for a job another process works, instead of leaving it.
        self.wait = wait
        #: What this process is, in the lock (other processes' messages, status).
        self.command = command
        #: Overrides every mirror target's ``max_delete`` for this engine's runs.
        self.max_delete = max_delete
        self.guard = overlap.Guard(j.destination for j in config.jobs)
        self.journal = journal
        self.credentials = credentials
        self.registry = registry or discover_for(config)
        self.listeners = list(listeners)
        self._sleep = sleep
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.cancel = threading.Event()

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken display must not break replication
                log.exception("event listener failed on %s", event_name(event))

    # -- public ---------------------------------------------------------------

    def jobs(self, names: Sequence[str] | None) -> list[Job]:
        return [self.config.job(n) for n in names] if names else list(self.config.jobs)

    def endpoint(self, job: Job, target: TargetConfig) -> Endpoint:
        return target_endpoint(job, target, self.credentials)

    def transport(self, job: Job, target: TargetConfig) -> Transport:
        return target_transport(job, target, self.credentials, self.registry)

    def run(self, names: Sequence[str] | None = None) -> list[TargetResult]:
        """One pass over the jobs (all, or ``names``); returns every target's result."""
        results: list[TargetResult] = []
        for job in self.jobs(names):
            try:
                results += self.run_job(job)
            except Locked as exc:  # another process works it: the other jobs run
                for target in job.targets:
                    self.emit(TargetFailed(job.name, target.name, "lock", str(exc)))
                    results.append(TargetResult(job.name, target.name, False, error=str(exc),
                                                locked=True))
            except (UsageError, ConfigError) as exc:
                # e.g. its destination is missing: the other jobs still run
                for target in job.targets:
                    self.emit(TargetFailed(job.name, target.name, "setup", str(exc)))
                    results.append(TargetResult(job.name, target.name, False, error=str(exc),
                                                setup_error=True))
        self.emit(RunDone(exit_code(results)))
        return results

    def lock(self, job: Job) -> JobLock:
        """Take ``job``'s lock (waiting if the engine was told to).

        :raises Locked: another process works the job.
        """
        lock = JobLock(self.config.folder, job.name, self.command)
        lock.acquire(wait=self.wait, cancel=self.cancel)
        return lock

    def run_job(self, job: Job) -> list[TargetResult]:
        """Work one job, holding its lock.

        :raises Locked: another process works it.
        """
        lock = self.lock(job)
        try:
            return self._run_job(job)
        finally:
            lock.release()

    def _run_job(self, job: Job) -> list[TargetResult]:
        overlap.check_job(self.config.jobs, job, self.config.path)
        job.require_destination()
        local = scan_destination(job.destination, job.settle)
        self.emit(RunStarted(job.name, tuple(t.name for t in job.targets)))
        results: list[TargetResult] = []
        for priority in sorted({t.priority for t in job.targets}):
            group = [t for t in job.targets if t.priority == priority]
            if self.cancel.is_set():
                break
            with ThreadPoolExecutor(len(group), thread_name_prefix=f"offsite-{job.name}") as pool:
                futures = [pool.submit(self.run_target, job, t, local) for t in group]
                try:
                    results += [f.result() for f in futures]
                except BaseException:
                    # Ctrl-C (or a crash) here: tell the uploads to stop now,
                    # before the pool waits for them.
                    self.cancel.set()
                    raise
        return results

    def plan_target(self, job: Job, target: TargetConfig,
                    local: Sequence[LocalFile] | None = None) -> Plan:
        """What ``run`` would do at one target (connects and lists; changes nothing)."""
        if local is None:
            job.require_destination()
            local = scan_destination(job.destination, job.settle)
        with self.transport(job, target).connect(self.endpoint(job, target)) as session:
            return self._plan(job, target, session, local, record_baselines=False)

    # -- one target -------------------------------------------------------------

    def run_target(self, job: Job, target: TargetConfig,
                   local: Sequence[LocalFile]) -> TargetResult:
        j = self.journal
        j.set_status(job.name, target.name, state="running", current=None, bytes_done=0,
                     bytes_total=0, rate=0.0, last_error=None, queued=0, retries=0)
        tally = _Tally()
        attempt = 0
        try:
            transport = self.transport(job, target)
            endpoint = self.endpoint(job, target)
            while True:
                try:
                    with transport.connect(endpoint) as session:
                        self._work(job, target, session, local, tally)
                    break
                except Transient as exc:
                    attempt += 1
                    if attempt > target.retries:
                        raise
                    delay = self._backoff(attempt)
                    j.set_status(job.name, target.name, retries=attempt, last_error=str(exc))
                    self.emit(RetryScheduled(job.name, target.name, attempt, delay, str(exc)))
                    self._wait(delay)
        except Cancelled:
            j.set_status(job.name, target.name, state="idle", current=None,
                         last_error="interrupted: the next run resumes", last_run=time.time())
            raise
        except OffsiteError as exc:
            step = exc.step or "" if isinstance(exc, TargetError) else "setup"
            self.emit(TargetFailed(job.name, target.name, step, str(exc)))
            j.set_status(job.name, target.name, state="failed", current=None,
                         last_error=str(exc), last_run=time.time())
            return TargetResult(job.name, target.name, False, tally.bad_data, str(exc),
                                tally.uploaded, tally.bytes, tally.deleted,
                                setup_error=isinstance(exc, (CredentialError, PluginError,
                                                             ConfigError, UsageError)))
        j.set_status(job.name, target.name, state="ok", current=None, queued=0,
                     last_error=tally.problem, last_run=time.time())
        self.emit(TargetDone(job.name, target.name, tally.uploaded, tally.bytes, tally.deleted))
        return TargetResult(job.name, target.name, True, tally.bad_data, tally.problem,
                            tally.uploaded, tally.bytes, tally.deleted)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    def _wait(self, seconds: float) -> None:
        if self.cancel.wait(0) or seconds <= 0:
            return
        self._sleep(seconds)

    def _plan(self, job: Job, target: TargetConfig, session: Session,
              local: Sequence[LocalFile], *, record_baselines: bool) -> Plan:
        j, now = self.journal, time.time()

        def baseline(option: str, enabled: bool) -> float | None:
            if not enabled:
                if record_baselines:
                    j.clear_baseline(job.name, target.name, option)
                return None
            if record_baselines:
                return j.baseline(job.name, target.name, option, now)
            # plan only: the recorded baseline, or "now" as if enabled this moment
            recorded = j.recorded_baseline(job.name, target.name, option)
            return now if recorded is None else recorded

        options = Options(
            mirror=target.mirror,
            types=frozenset(target.types),
            subfolder="" if target.mirror else target.subfolder,
            images_since=None if target.mirror else baseline("new_images_only",
                                                             target.new_images_only),
            sets_since=None if target.mirror else baseline("new_sets_only",
                                                           target.new_sets_only),
            max_delete=self.max_delete if self.max_delete is not None else target.max_delete,
        )
        self._guard(target, options.subfolder, "replicate into")
        listing = session.list(options.subfolder)
        placed = [p for p in j.placed(job.name, target.name)
                  if not options.subfolder or p.remote_path.startswith(options.subfolder + "/")]
        # Files another tool put there that are the destination's own count as
        # placed: read (header and footer) before the pure planner sees them.
        # Reading is all it does: `offsite plan` records nothing.
        adopted = adopt(session, job.destination, local, placed, listing, options, now)
        return plan(local, placed, listing, options, adopted)

    def _work(self, job: Job, target: TargetConfig, session: Session,
              local: Sequence[LocalFile], tally: _Tally) -> None:
        self._resume(job, target, session, tally)
        the_plan = self._plan(job, target, session, local, record_baselines=True)
        self.journal.forget(job.name, target.name, the_plan.forget)
        self.journal.distrust(job.name, target.name, the_plan.distrust)
        for found in the_plan.adopted:
            self.journal.record_placed(job.name, target.name, found)
            self.emit(Adopted(job.name, target.name, found.remote_path, found.size))
        for path, why in the_plan.distrust:
            self.emit(DataProblem(job.name, target.name, path, f"{why}; it is put again"))
        withheld = [n for n in the_plan.notes if n.kind == "deletes-withheld"]
        for note in the_plan.notes:
            if note not in withheld:
                self._note(job, target, note, tally)
        broken_sets: set[str] = set()
        puts_left = sum(isinstance(a, Put) for a in the_plan.actions)
        for action in the_plan.actions:
            if self.cancel.is_set():
                raise Cancelled
            if isinstance(action, Put):
                puts_left -= 1
                self.journal.set_status(job.name, target.name, queued=puts_left)
            if isinstance(action, Delete):
                self._delete(job, target, session, action, tally)
            elif action.set_id is None or action.set_id not in broken_sets:
                # A damaged image stops its set: later images chain onto it.
                ok = self._put(job, target, session, action, tally)
                if not ok and action.set_id is not None:
                    broken_sets.add(action.set_id)
        if withheld:
            raise Fatal(withheld[0].message, step="mirror", fix=(
                "find out why the destination lacks them (an unmounted disk, a wrong "
                "path?); if they went on purpose, run once with "
                f"offsite run --max-delete 100 {job.name}, or raise max_delete"))

    def _note(self, job: Job, target: TargetConfig, note: Note, tally: _Tally) -> None:
        if note.bad_data:
            tally.bad_data = True
            tally.problem = f"{note.file}: {note.message}"
        self.emit(DataProblem(job.name, target.name, note.file, f"{note.kind}: {note.message}"))

    def _resume(self, job: Job, target: TargetConfig, session: Session, tally: _Tally) -> None:
        """Finish what was in flight when the last run stopped."""
        for flight in self.journal.in_flight(job.name, target.name):
            p = flight.placed
            paths = [job.destination / name for name in p.sources]
            try:
                stats = [path.stat() for path in paths]
            except FileNotFoundError:
                stats = []
            same = (stats and sum(s.st_size for s in stats) == p.source_size
                    and max(s.st_mtime for s in stats) == p.source_mtime)
            if not same:  # the sources changed or went: plan afresh
                self._abandon(job, target, session, p.remote_path, flight.token)
                continue
            action = Put(p.remote_path, p.sources, p.kind, "resumed",  # type: ignore[arg-type]
                         p.set_id, p.seq_first, p.seq_last, p.state, p.parent_state)
            self._put(job, target, session, action, tally, resume=flight.token)

    def _abandon(self, job: Job, target: TargetConfig, session: Session, remote: str,
                 token: Any) -> None:
        """Give up an upload for good: the plugin cleans up after it (a partial
        file, a multipart upload), then the journal forgets it. A consolidation
        is often planned again under another name, so nothing else would."""
        if token:
            self._guard(target, remote, "clean up after an upload of")
            try:
                session.discard(remote, token)
            except TargetError as exc:  # a leftover costs space, not data: go on
                log.warning("%s.%s: could not clean up the abandoned upload of %s: %s",
                            job.name, target.name, remote, exc)
        self.journal.abandon_upload(job.name, target.name, remote)

    def _source(self, job: Job, action: Put) -> Source:
        """What to upload for ``action``: images check themselves as they stream.

        Structure, index and footer hash are checked here, before any byte
        moves; every payload is checked before any of its bytes are handed to
        the plugin. Damage in what is sent thus fails the upload before the
        file is complete at the target, and every byte is read once. A
        consolidation reads only the blocks it sends: those a newer
        incremental rewrote are not part of what the target gets.

        :raises ImageError: a source is not a sound image (nothing has moved).
        """
        paths = [job.destination / name for name in action.sources]
        if action.kind == "other":
            return FileSource(paths[0])
        if action.consolidated:
            return Consolidation(paths, check=True)
        return ImageSource(paths[0])

    def _put(self, job: Job, target: TargetConfig, session: Session, action: Put,
             tally: _Tally, resume: Any = None) -> bool:
        """Upload one planned file; False if its data was bad (the set stops)."""
        j = self.journal
        paths = [job.destination / name for name in action.sources]
        self._guard(target, action.remote, "write")
        try:
            source = self._source(job, action)
        except ImageError as exc:
            self._note(job, target, Note("bad-image", _named(job, exc.file), str(exc)), tally)
            self._abandon(job, target, session, action.remote, resume)
            return False
        stats = [p.stat() for p in paths]
        # An image is identified by its root digest, known before a byte moves
        # (its payloads are checked as they stream); hashing every byte once
        # more just for the journal cost 15% of the upload rate. Other files
        # are hashed as they go.
        digest = (f"ofi:{source.digest}" if isinstance(source, (ImageSource, Consolidation))
                  else None)
        hashing = HashingSource(source) if digest is None else None
        placed = Placed(
            remote_path=action.remote, size=source.size, sha256=None, kind=action.kind,
            set_id=action.set_id, seq_first=action.seq_first, seq_last=action.seq_last,
            state=action.state, parent_state=action.parent_state, sources=action.sources,
            source_size=sum(s.st_size for s in stats),
            source_mtime=max(s.st_mtime for s in stats), placed_at=time.time(),
        )
        if resume is None:
            j.begin_upload(job.name, target.name, placed)
        started = time.monotonic()
        # A target that cannot resume (its plugin says so) starts again at 0:
        # the operator hears that, not "resuming".
        restarted = resume is not None and not session.transport.info.resumable
        self.emit(UploadStarted(job.name, target.name, action.remote, source.size,
                                action.sources, resume is not None, restarted))
        progress = _Progress(self, job.name, target.name, action.remote, source.size)
        last_token = resume

        def keep(token: Any) -> None:
            nonlocal last_token
            last_token = token
            j.save_token(job.name, target.name, action.remote, token, progress.done)

        try:
            remote = session.put(action.remote, hashing or source, resume=resume,
                                 on_token=keep, on_progress=progress)
        except SourceError as exc:
            cause = find_cause(exc, ImageError)
            if cause is None:
                raise
            self._note(job, target, Note("bad-image", _named(job, cause.file), str(cause)),
                       tally)
            self._abandon(job, target, session, action.remote, last_token)
            return False
        finally:
            if isinstance(source, Consolidation):
                source.close()
        j.finish_upload(job.name, target.name,
                        attrs.evolve(placed, size=remote.size,
                                     sha256=digest if hashing is None else hashing.sha256,
                                     placed_at=time.time(), remote_checksum=remote.checksum,
                                     remote_mtime=remote.mtime or None))
        tally.uploaded += 1
        tally.bytes += remote.size
        self.emit(UploadDone(job.name, target.name, action.remote, remote.size,
                             time.monotonic() - started))
        return True

    def _guard(self, target: TargetConfig, remote: str, action: str) -> None:
        """The last check before a target on this machine is changed: never
        under a destination (a symlink at the target may lead into one)."""
        root = overlap.local_folder(target.endpoint)
        if root is not None:
            self.guard.check(root, remote, action)

    def _delete(self, job: Job, target: TargetConfig, session: Session, action: Delete,
                tally: _Tally) -> None:
        self._guard(target, action.remote, "delete")
        with contextlib.suppress(NotFound):  # gone already: the goal is met
            session.delete(action.remote)
        self.journal.forget(job.name, target.name, [action.remote])
        tally.deleted += 1
        self.emit(Deleted(job.name, target.name, action.remote))


@attrs.define
class _Tally:
    uploaded: int = 0
    bytes: int = 0
    deleted: int = 0
    bad_data: bool = False
    problem: str | None = None


class _Progress:
    """Turns a plugin's progress calls into events and live journal status."""

    def __init__(self, engine: Engine, job: str, target: str, remote: str, size: int) -> None:
        self.engine, self.job, self.target, self.remote, self.size = (
            engine, job, target, remote, size)
        self.done = 0
        self._started = time.monotonic()
        self._first = -1
        self._last_status = 0.0

    def __call__(self, done: int) -> None:
        if self.engine.cancel.is_set():
            raise Cancelled
        if self._first < 0:
            self._first = done
        self.done = done
        self.engine.emit(BytesProgressed(self.job, self.target, self.remote, done, self.size))
        now = time.monotonic()
        if now - self._last_status >= 0.5 or done == self.size:
            self._last_status = now
            elapsed = max(now - self._started, 1e-6)
            self.engine.journal.set_status(
                self.job, self.target, current=self.remote, bytes_done=done,
                bytes_total=self.size, rate=(done - self._first) / elapsed)


# The events and results live in offsite.events, the scan in
# offsite.destination; they are named here too, where callers met them first.
__all__ = [
    "EXIT_BAD_DATA",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_TARGET_FAILED",
    "EXIT_USAGE",
    "Adopted",
    "BytesProgressed",
    "Cancelled",
    "DataProblem",
    "Deleted",
    "Engine",
    "Event",
    "Listener",
    "RetryScheduled",
    "RunDone",
    "RunStarted",
    "TargetDone",
    "TargetFailed",
    "TargetResult",
    "UploadDone",
    "UploadStarted",
    "event_name",
    "exit_code",
    "scan_destination",
    "target_endpoint",
    "target_transport",
]

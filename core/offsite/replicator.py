"""The replicator: ``offsite replicator``, the long-running service.

One worker thread per job. Each runs the job (the same pass as ``offsite run
JOB``, under the same per-job lock) when it starts, which resumes the
uploads the journal holds in flight and places what is pending; then
whenever its destination folder changed and stayed quiet for a moment
(bursts of writes make one pass); again a few seconds later while an image is
still being written (it goes once its footer is valid); and again, with a
growing delay, after a pass that failed.

How a change is noticed: the kernel tells (inotify, through ``watchdog``),
so an idle replicator costs nothing. Network file systems do not report
other machines' writes to inotify: a destination on one (NFS, CIFS, FUSE …)
is polled instead, as is every destination with ``--poll``. A destination
that goes away (an unmounted disk) is looked for again, and watched again
when it is back.

Signals: SIGTERM and SIGINT stop the uploads at their next chunk (each
resumes from its token) and end the service within a few seconds; SIGHUP
reads the configuration again (a broken one is reported and the old one
kept), stopping and resuming what was in flight. Under systemd
(``Type=notify``) the service says READY, RELOADING and STOPPING.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from offsite.config import Job
from offsite.destination import scan_destination
from offsite.engine import Engine
from offsite.errors import ConfigError, Locked, OffsiteError, UsageError
from offsite.events import Cancelled, TargetFailed

log = logging.getLogger(__name__)

#: File systems whose changes made by other machines inotify does not see.
NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph",
                        "glusterfs", "lustre", "davfs", "ncpfs", "virtiofs"})


@attrs.frozen
class Timing:
    """How long the replicator waits, in seconds.

    :ivar quiet: no change for this long before a pass: coalesces a burst of
        writes (a backup writing an image) into one pass.
    :ivar poll: how often a polled destination is looked at.
    :ivar recheck: how soon to look again while an image is still written.
    :ivar retry_min: the first wait after a failed pass; it doubles up to
        ``retry_max``.
    :ivar alive: how often a watched destination is checked to still be
        there (a stat: an unmount sends inotify nothing useful).
    :ivar coalesce_max: a pass no later than this after the first change,
        even while changes go on.
    """

    quiet: float = 0.5
    coalesce_max: float = 10.0
    poll: float = 5.0
    recheck: float = 2.0
    retry_min: float = 30.0
    retry_max: float = 900.0
    alive: float = 5.0


# -- noticing changes ----------------------------------------------------------


def mount_type(folder: Path) -> str | None:
    """The file system type of the mount ``folder`` is on (Linux), or None."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        where = os.path.realpath(folder)
    except OSError:
        return None
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def needs_polling(folder: Path) -> bool:
    """Whether inotify would miss changes to ``folder`` (a network mount)."""
    kind = mount_type(folder) or ""
    return kind in NETWORK_FS or kind.startswith("fuse.")


def _snapshot(folder: Path) -> frozenset[tuple[str, int, int]] | None:
    """Names, sizes and mtimes of the files directly in ``folder`` (the scan
    looks at nothing deeper), or None when the folder is gone."""
    try:
        with os.scandir(folder) as entries:
            found = set()
            for e in entries:
                with contextlib.suppress(OSError):
                    st = e.stat()
                    found.add((e.name, st.st_size, st.st_mtime_ns))
            return frozenset(found)
    except OSError:
        return None


class _Watch:
    """Tells a worker that its destination changed, by inotify or by polling."""

    def __init__(self, folder: Path, poke: Callable[[], None], poll: float | None) -> None:
        self.folder, self._poke, self.poll = folder, poke, poll
        self._observer: Any = None
        self._ident: tuple[int, int] | None = None
        self._seen: frozenset[tuple[str, int, int]] | None = None
        self.how = "none"

    def ensure(self) -> bool:
        """Watch the folder if it is there (again); False while it is missing."""
        try:
            st = self.folder.stat()
        except OSError:
            self._stop_observer()
            self._ident = None
            return False
        ident = (st.st_dev, st.st_ino)
        if ident == self._ident:
            return True
        # New, or back after an unmount or a re-creation: a new watch.
        self._stop_observer()
        self._ident = ident
        self._seen = _snapshot(self.folder)
        if self.poll is None and not needs_polling(self.folder):
            try:
                self._start_observer()
                self.how = "inotify"
                return True
            except OSError as exc:  # e.g. the inotify watch limit
                log.warning("cannot watch %s with inotify (%s): polling it instead",
                            self.folder, exc)
        self.how = "polling"
        return True

    def polled_change(self) -> bool:
        """For a polled folder: whether it changed since the last look."""
        if self.how != "polling":
            return False
        now = _snapshot(self.folder)
        changed = now != self._seen
        self._seen = now
        return changed

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers.inotify import InotifyObserver

        poke, folder = self._poke, os.fspath(self.folder)

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # Reading changes nothing, and neither does the atime a read
                # sets (our own passes read every image).
                if event.event_type in ("opened", "closed_no_write", "attrib"):
                    return
                if os.fsdecode(event.src_path) == folder:
                    if event.event_type in ("deleted", "moved"):  # the folder went
                        poke()
                    return  # its mtime: the event of the file that changed says more
                # Hidden files are temporary files and hash maps: the scan
                # ignores them, and so do we.
                names = [os.path.basename(os.fsdecode(p))
                         for p in (event.src_path, getattr(event, "dest_path", "")) if p]
                if any(n and not n.startswith(".") for n in names):
                    poke()

        observer = InotifyObserver()
        observer.daemon = True
        observer.schedule(Handler(), str(self.folder), recursive=False)
        observer.start()
        self._observer = observer

    def _stop_observer(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
            self._observer = None

    def close(self) -> None:
        self._stop_observer()


# -- one job -------------------------------------------------------------------


class Worker(threading.Thread):
    """Runs one job whenever its destination calls for it, until stopped."""

    def __init__(self, engine: Engine, job: Job, timing: Timing, poll: bool) -> None:
        super().__init__(name=f"offsite-replicator-{job.name}", daemon=True)
        self.engine, self.job, self.timing = engine, job, timing
        self._wake = threading.Event()
        self._changed_at = self._first_change = 0.0
        self.watch = _Watch(job.destination, self.poke, timing.poll if poll else None)
        self.passes = 0

    def poke(self) -> None:
        """Something changed in the destination."""
        self._changed_at = time.monotonic()
        if not self._first_change:
            self._first_change = self._changed_at
        self._wake.set()

    def stop(self) -> None:
        self.engine.cancel.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self.engine.cancel.is_set()

    def run(self) -> None:
        try:
            self._loop()
        except Cancelled:
            pass
        except Exception:  # a bug: say so, the other jobs go on
            log.exception("job %s: the replicator's worker stopped", self.job.name)
        finally:
            self.watch.close()

    def _loop(self) -> None:
        due: float | None = time.monotonic()  # a pass at start: resume, then what is pending
        failures = 0
        was_present = True
        while not self.stopping:
            present = self.watch.ensure()
            if present != was_present:  # gone (unmounted?) or back: a pass says which
                was_present = present
                self.poke()
            if self.watch.polled_change():
                self.poke()
            now = time.monotonic()
            if self._first_change:
                # A pass once the folder has been quiet for a moment, but no
                # later than `settle_max` after the first change: a backup
                # writing for hours must not hold back what is complete.
                calm = min(self._changed_at + self.timing.quiet,
                           self._first_change + self.timing.coalesce_max)
                due = calm if due is None else min(due, calm)
            if due is not None and now >= due:
                self._first_change = self._changed_at = 0.0
                ok, writing = self._pass()
                failures = 0 if ok else failures + 1
                if not ok:
                    due = time.monotonic() + min(self.timing.retry_max,
                                                 self.timing.retry_min * 2 ** (failures - 1))
                else:
                    due = time.monotonic() + self.timing.recheck if writing else None
                continue
            wait = self.timing.alive if due is None else due - now
            if self.watch.how == "polling" or not present:
                wait = min(wait, self.timing.poll)
            if self._wake.wait(max(wait, 0.0)):
                self._wake.clear()

    def _pass(self) -> tuple[bool, bool]:
        """One pass over the job: (every target ok, an image is still being written)."""
        self.passes += 1
        name = self.job.name
        try:
            results = self.engine.run_job(self.job)
        except Locked:
            raise Cancelled from None  # only when told to stop while waiting for the lock
        except (UsageError, ConfigError) as exc:  # e.g. the destination is not there
            for target in self.job.targets:
                self.engine.emit(TargetFailed(name, target.name, "setup", str(exc)))
            return False, False
        except Cancelled:
            raise
        except Exception as exc:
            # A file that went while it was read (a disk unmounted mid-pass),
            # or a bug: `run` would exit; a service says so and tries again.
            log.exception("job %s: the pass failed", name)
            for target in self.job.targets:
                self.engine.emit(TargetFailed(name, target.name, "internal", repr(exc)))
            return False, False
        ok = all(r.ok for r in results)
        try:
            writing = any(f.status == "incomplete"
                          for f in scan_destination(self.job.destination, self.job.settle))
        except OffsiteError:
            writing = False
        return ok, writing


# -- the service -----------------------------------------------------------------


def notify(message: str) -> None:
    """Tell systemd (``Type=notify``) how the service is; nothing without it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)


class Replicator:
    """The service over ``names`` (every job when empty).

    :param build: makes a fresh engine from the configuration as it is now
        (called at start and on SIGHUP); raises :class:`OffsiteError` for a
        broken configuration.
    :param tick: called every ``tick_every`` seconds in the main thread
        (the metrics file).
    """

    def __init__(self, build: Callable[[], Engine], names: Sequence[str] = (), *,
                 timing: Timing = Timing(), poll: bool = False,
                 tick: Callable[[], None] | None = None, tick_every: float = 2.0) -> None:
        self._build, self.names, self.timing, self.poll = build, tuple(names), timing, poll
        self._tick, self.tick_every = tick, tick_every
        self._signalled = threading.Event()
        self._stop_signal: int | None = None
        self._reload = False
        self.workers: list[Worker] = []

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; the signal's number, for the exit code.

        :raises OffsiteError: the configuration is broken at start.
        """
        self._start(self._build())
        with self._signals():
            notify("READY=1\nSTATUS=replicating " + ", ".join(w.job.name for w in self.workers))
            while self._stop_signal is None:
                self._signalled.wait(self.tick_every)
                self._signalled.clear()
                if self._reload:
                    self._reload = False
                    self.reload()
                self._run_tick()
            notify("STOPPING=1")
            self._stop()
            self._run_tick()
        return self._stop_signal

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._stop_signal = signum
        self._signalled.set()

    def reload(self) -> None:
        """Read the configuration again; keep the old one if the new is broken."""
        notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            engine = self._build()
        except OffsiteError as exc:
            log.error("configuration not reloaded, the old one stays in force: %s", exc)
            notify("READY=1")
            return
        log.warning("configuration reloaded: uploads in flight stop and resume")
        self._stop()
        self._start(engine)
        notify("READY=1")

    def _start(self, engine: Engine) -> None:
        jobs = engine.jobs(self.names or None)
        self.workers = [Worker(engine, job, self.timing, self.poll) for job in jobs]
        for w in self.workers:
            w.start()
        for w in self.workers:
            log.info("job %s: watching %s", w.job.name, w.job.destination)

    def _stop(self, grace: float = 10.0) -> None:
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + grace
        for w in self.workers:
            w.join(max(0.0, deadline - time.monotonic()))
            if w.is_alive():  # a plugin stuck in the network: its token is saved
                log.warning("job %s: an upload did not stop in time; it resumes next start",
                            w.job.name)

    def _run_tick(self) -> None:
        if self._tick is not None:
            try:
                self._tick()
            except Exception:
                log.exception("the replicator's periodic task failed")

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def stop(signum: int, _frame: object) -> None:
            self.request_stop(signum)

        def hup(_signum: int, _frame: object) -> None:
            self._reload = True
            self._signalled.set()

        old = {s: signal.signal(s, h) for s, h in
               ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, hup))}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


__all__ = ["NETWORK_FS", "Replicator", "Timing", "Worker", "mount_type", "needs_polling",
           "notify"]

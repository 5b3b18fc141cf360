"""Consumers of engine events: a progress display, JSON lines, plain log lines.

Data goes to stdout (``--json``: one event per line), everything for people
to stderr. The rich display shows one bar per upload in flight with bytes,
rate and ETA, under a line per target; it is used only on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

import attrs

if TYPE_CHECKING:  # rich costs 0.1 s to import: only the terminal display loads it
    from rich.console import Console
    from rich.progress import TaskID
    from rich.table import Table

from offsite.events import (
    Adopted,
    BytesProgressed,
    DataProblem,
    Deleted,
    Event,
    RetryScheduled,
    RunDone,
    TargetDone,
    TargetFailed,
    UploadDone,
    UploadStarted,
    event_name,
)
from offsite.status import LiveStatus

log = logging.getLogger("offsite")
MiB = 1 << 20


class JsonLines:
    """Every event as one compact JSON object per line (``offsite run --json``)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, event: Event) -> None:
        doc = {"event": event_name(event), "time": round(time.time(), 3), **attrs.asdict(event)}
        with self._lock:
            if self._closed:
                return
            try:
                self.out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
                self.out.flush()
            except BrokenPipeError:
                # The reader went away (``offsite run --json | head``). The
                # replication goes on: a consumer's exit is no reason to leave
                # an upload half done. Said once, not once per event.
                self._closed = True
                log.warning("the reader of --json output closed it: no more events; "
                            "the run goes on")
                self._silence()

    def _silence(self) -> None:
        # The unflushed rest would fail again at exit ("Exception ignored ...").
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)


def describe(event: Event) -> str | None:
    """One line for a person, or None for events too frequent to print."""
    where = f"{getattr(event, 'job', '')}.{getattr(event, 'target', '')}"
    match event:
        case UploadDone():
            rate = event.size / max(event.seconds, 1e-6) / MiB
            return (f"{where}: placed {event.remote} ({event.size / MiB:.1f} MiB, "
                    f"{event.seconds:.1f} s, {rate:.0f} MiB/s)")
        case UploadStarted() if event.restarted:
            return (f"{where}: {event.remote}: restarted from the beginning: the target "
                    "cannot resume an upload")
        case UploadStarted() if event.resumed:
            return f"{where}: resuming {event.remote}"
        case Deleted():
            return f"{where}: deleted {event.remote}"
        case Adopted():
            return f"{where}: adopted {event.remote} (already at the target: matches)"
        case RetryScheduled():
            return (f"{where}: attempt {event.attempt} failed, retrying in {event.delay:.1f} s: "
                    f"{event.error}")
        case DataProblem():
            return f"{where}: {event.file}: {event.message}"
        case TargetFailed():
            return f"{where}: FAILED: {event.error}"
        case TargetDone():
            return (f"{where}: done: {event.uploaded} placed ({event.bytes / MiB:.1f} MiB), "
                    f"{event.deleted} deleted")
        case RunDone():
            return f"run done (exit code {event.exit_code})"
    return None


#: C0 and C1 control characters (and DEL), shown as "?" in log lines.
_NO_CONTROLS = {c: "?" for c in [*range(0x20), *range(0x7F, 0xA0)]}


def to_journald() -> bool:
    """Whether stderr is connected to systemd's journal (``JOURNAL_STREAM``
    names its device and inode), which reads a ``<N>`` prefix as the
    line's syslog priority."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


#: syslog priorities, as journald reads them from a ``<N>`` prefix.
_ERR, _WARNING, _INFO = 3, 4, 6


class JournaldFormatter(logging.Formatter):
    """Log records as journald reads them: ``<N>`` priority, no time stamp
    (the journal adds its own)."""

    def format(self, record: logging.LogRecord) -> str:
        level = (_ERR if record.levelno >= logging.ERROR else
                 _WARNING if record.levelno >= logging.WARNING else _INFO)
        return f"<{level}>{record.name}: {super().format(record)}"


class LogLines:
    """Plain lines on stderr, for logs and pipes (no progress bars).

    :param priorities: prefix each line with its syslog priority (``<3>``
        for a failed target, ``<4>`` for a problem or a retry, ``<6>``
        else), for systemd's journal.
    """

    def __init__(self, out: TextIO | None = None, *, errors_only: bool = False,
                 priorities: bool = False) -> None:
        self.out = out
        self.errors_only = errors_only
        self.priorities = priorities
        self._lock = threading.Lock()  # targets run in parallel threads

    def __call__(self, event: Event) -> None:
        if self.errors_only and not isinstance(event, (TargetFailed, DataProblem)):
            return
        line = describe(event)
        if line is not None:
            line = line.translate(_NO_CONTROLS)  # a file name must not drive the terminal
            if self.priorities:
                level = (_ERR if isinstance(event, TargetFailed) else
                         _WARNING if isinstance(event, (DataProblem, RetryScheduled)) else _INFO)
                line = f"<{level}>{line}"
            out = self.out or sys.stderr  # looked up late: tests swap sys.stderr
            with self._lock:
                out.write(line + "\n")
                out.flush()


class ProgressDisplay:
    """A live progress display on the terminal: a bar per upload in flight."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=console or Console(stderr=True), transient=False,
        )
        self._tasks: dict[tuple[str, str, str], TaskID] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, UploadStarted):
                key = (event.job, event.target, event.remote)
                self._tasks[key] = self.progress.add_task(
                    f"{event.job}.{event.target} {event.remote}", total=event.size)
            elif isinstance(event, BytesProgressed):
                task = self._tasks.get((event.job, event.target, event.remote))
                if task is not None:
                    self.progress.update(task, completed=event.done)
            elif isinstance(event, UploadDone):
                task = self._tasks.pop((event.job, event.target, event.remote), None)
                if task is not None:
                    self.progress.update(task, completed=event.size)
            else:
                line = describe(event)
                if line is not None and not isinstance(event, RunDone):
                    self.progress.console.print(line, markup=False, highlight=False)


def _size(n: int) -> str:
    return f"{n / MiB:,.1f} MiB"


def status_table(statuses: Sequence[LiveStatus]) -> Table:
    """``offsite status``: one row per target, from the journal and the locks."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("target", "state", "in flight", "done / total", "rate", "ETA", "queue",
                   "retries", "last run", "last error"):
        table.add_column(column, overflow="fold", no_wrap=column != "last error")
    for s in statuses:
        running = s.running and s.current is not None
        eta = f"{s.eta:,.0f} s" if running and s.eta is not None else "-"
        last = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_run)) if s.last_run else "-"
        state = f"running (pid {s.pid})" if s.running and s.pid else s.state
        current, done = "-", "-"
        if running:
            current, done = s.current or "-", f"{_size(s.bytes_done)} / {_size(s.bytes_total)}"
        elif s.in_flight and not s.running:  # what the next run resumes
            first = s.in_flight[0]
            more = f" (+{len(s.in_flight) - 1})" if len(s.in_flight) > 1 else ""
            current, done = first.remote + more, f"{_size(first.bytes_done)} / {_size(first.size)}"
        row: list[Any] = [
            f"{s.job}.{s.target}", state, current, done,
            f"{s.rate / MiB:,.1f} MiB/s" if running and s.rate else "-", eta,
            str(s.queued) if s.running else "-", str(s.retries) if s.retries else "-", last,
            s.last_error or "",
        ]
        table.add_row(*(Text(str(cell)) for cell in row))  # plain text: never markup
    return table

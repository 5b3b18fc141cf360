"""What ``offsite status`` shows: the journal's live status, checked against the locks.

The journal says what a run last wrote about each target, but a run killed
with -9 (or a machine that lost power) never writes "stopped": its targets
would look busy forever, with an ETA. The job's lock tells the truth: the
kernel drops it with its process. A target the journal calls running whose
job's lock is free is *interrupted*; so is one with uploads in flight that
nothing works on. Those uploads resume on the next run.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from offsite import lock
from offsite.journal import Journal, TargetStatus

_NEXT = "the next run resumes"
#: What ``last_error`` says of an interrupted target with nothing better to say.
RESUMES = f"interrupted: {_NEXT}"


@attrs.frozen
class Upload:
    """An upload that started and has not finished."""

    remote: str
    bytes_done: int
    size: int


@attrs.frozen
class LiveStatus:
    """One target's status as ``offsite status`` shows it.

    The journal's :class:`~offsite.journal.TargetStatus` fields, with
    ``state`` one of ``idle``, ``running``, ``ok``, ``failed`` or
    ``interrupted``, plus the process working the job (``pid``, None when
    none does), the seconds the current upload still needs at its rate
    (``eta``, None when nothing runs) and the uploads in flight.
    """

    job: str
    target: str
    state: str
    current: str | None
    bytes_done: int
    bytes_total: int
    rate: float
    last_error: str | None
    last_run: float | None
    updated_at: float
    queued: int = 0
    retries: int = 0
    pid: int | None = None
    eta: float | None = None
    in_flight: tuple[Upload, ...] = ()

    @property
    def running(self) -> bool:
        return self.state == "running"


def live(journal: Journal, folder: Path) -> list[LiveStatus]:
    """Every target's status, checked against its job's lock in ``folder``."""
    locks: dict[str, lock.LockState] = {}
    found = []
    for s in journal.statuses():
        held = locks.setdefault(s.job, lock.state(folder, s.job))
        flights = tuple(Upload(f.placed.remote_path, f.bytes_done, f.placed.size)
                        for f in journal.in_flight(s.job, s.target))
        found.append(_judge(s, held, flights))
    return found


def _judge(s: TargetStatus, held: lock.LockState, flights: tuple[Upload, ...]) -> LiveStatus:
    values = attrs.asdict(s)
    if held.held:
        eta = None
        if s.state == "running" and s.current and s.rate > 0 and s.bytes_total >= s.bytes_done:
            eta = (s.bytes_total - s.bytes_done) / s.rate
        return LiveStatus(**values, pid=held.holder.pid if held.holder else None, eta=eta,
                          in_flight=flights)
    # Nothing works the job: "running" is a run that died; "idle" with
    # uploads in flight, one that was stopped (Ctrl-C). A failed target
    # keeps its reason, which says more.
    if s.state == "running":
        why = RESUMES
        if held.died and held.holder is not None:
            why = f"the run ({held.holder.describe()}) ended without finishing; {_NEXT}"
        values.update(state="interrupted", last_error=why, rate=0.0)
    elif s.state == "idle" and flights:
        values.update(state="interrupted", last_error=s.last_error or RESUMES, rate=0.0)
    return LiveStatus(**values, in_flight=flights)


__all__ = ["RESUMES", "LiveStatus", "Upload", "live"]

"""What the engine says while it works, and what a run comes to.

Events (DESIGN §9) are attrs values, one per thing that happens: a run or an
upload starts, bytes reach a target, a file is placed or deleted, a retry is
scheduled, a data problem is found, a target fails or is done, the run ends.
Listeners (the progress display, JSON lines, log lines) receive each one.

A run returns one :class:`TargetResult` per target; :func:`exit_code` ranks
them into the documented exit code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs


@attrs.frozen
class RunStarted:
    job: str
    targets: tuple[str, ...]


@attrs.frozen
class UploadStarted:
    job: str
    target: str
    remote: str
    size: int
    sources: tuple[str, ...]
    #: An interrupted upload of this file is being finished (it had a token).
    resumed: bool = False
    #: ... but its target cannot resume an upload (its plugin's ``resume``
    #: capability is False): it starts again from the first byte.
    restarted: bool = False


@attrs.frozen
class BytesProgressed:
    job: str
    target: str
    remote: str
    done: int
    size: int


@attrs.frozen
class UploadDone:
    job: str
    target: str
    remote: str
    size: int
    seconds: float


@attrs.frozen
class Deleted:
    job: str
    target: str
    remote: str


@attrs.frozen
class Adopted:
    """A file found at the target, put there by another tool, holds the
    destination's file: recorded as placed, nothing sent."""

    job: str
    target: str
    remote: str
    size: int


@attrs.frozen
class RetryScheduled:
    job: str
    target: str
    attempt: int
    delay: float
    error: str


@attrs.frozen
class DataProblem:
    job: str
    target: str
    file: str
    message: str


@attrs.frozen
class TargetFailed:
    job: str
    target: str
    step: str
    error: str


@attrs.frozen
class TargetDone:
    job: str
    target: str
    uploaded: int
    bytes: int
    deleted: int


@attrs.frozen
class RunDone:
    exit_code: int


Event = (RunStarted | UploadStarted | BytesProgressed | UploadDone | Deleted | RetryScheduled
         | Adopted | DataProblem | TargetFailed | TargetDone | RunDone)
Listener = Callable[[Event], None]


def event_name(event: Event) -> str:
    """``upload-started`` for UploadStarted, as JSON lines name them."""
    name = type(event).__name__
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


class Cancelled(BaseException):
    """The run was interrupted; raised inside uploads so they stop cleanly."""


@attrs.frozen
class TargetResult:
    job: str
    target: str
    ok: bool
    bad_data: bool = False
    error: str | None = None
    uploaded: int = 0
    bytes: int = 0
    deleted: int = 0
    #: The target could not even start: credentials, plugin, configuration.
    setup_error: bool = False
    #: Not started: another process works the job.
    locked: bool = False


EXIT_OK, EXIT_TARGET_FAILED, EXIT_USAGE, EXIT_BAD_DATA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Another process works a job (sysexits' EX_TEMPFAIL: try again later).
EXIT_LOCKED = 75


def exit_code(results: Iterable[TargetResult]) -> int:
    """The run's exit code: 2 if a target's setup (credentials, plugin) is
    wrong, else 3 if bad data was found, else 1 if a target failed, else 75
    if a job was left alone because another process works it, else 0. The
    more an operator has to fix by hand, the higher it ranks."""
    results = list(results)
    if any(r.setup_error for r in results):
        return EXIT_USAGE
    if any(r.bad_data for r in results):
        return EXIT_BAD_DATA
    if any(not r.ok and not r.locked for r in results):
        return EXIT_TARGET_FAILED
    if any(r.locked for r in results):
        return EXIT_LOCKED
    return EXIT_OK

"""What an operator sees when offsite meets an error it does not know: a bug.

Known failures are :class:`~offsite.errors.OffsiteError` and end with a
message and a documented exit code. Anything else ends here: one line that
says offsite hit an internal error, with the exception's type and text and
the file holding the full report; the traceback itself is printed only with
``-v``. The report goes to offsite's state folder (``~/.local/state/offsite``
on Linux), readable by its owner only, so that a run from cron or systemd
still leaves something to send to the developers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

#: Longest exception text shown on the one line (the report has it all).
MAX_TEXT = 300


def _report_folder() -> Path:
    import platformdirs

    return platformdirs.user_state_path("offsite") / "crash"


def _write(text: str) -> Path | None:
    """Write ``text`` to a new private report file; None if nowhere is writable."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (_report_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = folder / f"offsite-crash-{stamp}-{os.getpid()}.txt"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
        return path
    return None


def report(exc: BaseException, argv: Sequence[str], *, verbose: bool = False) -> str:
    """Write the crash report for ``exc`` and return what to print on stderr.

    :param argv: the command line, recorded in the report (offsite never
        takes a secret on its command line).
    :param verbose: also return the traceback, before the one line.
    """
    from offsite import __version__
    from offsite.redact import redact_remembered

    # A chained library exception is not scrubbed: blank every credential
    # this process has seen (offsite.redact), in the report and on stderr.
    trace = redact_remembered("".join(traceback.format_exception(exc)))
    text = (f"offsite {__version__} on Python {sys.version.split()[0]} ({sys.platform})\n"
            f"command: {' '.join(argv)}\n\n{trace}")
    where = _write(text)
    detail = " ".join(redact_remembered(str(exc)).split())
    if len(detail) > MAX_TEXT:
        detail = detail[: MAX_TEXT - 1] + "…"
    said = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    line = f"error: internal error (a bug in offsite or one of its plugins): {said}. "
    line += (f"The full report is in {where}: please send it to the developers"
             if where else "Run the command again with -v for the full report")
    if not verbose:
        line += " (-v prints it here)"
    return f"{trace}{line}" if verbose else line


__all__ = ["MAX_TEXT", "report"]

"""Blanking credential values out of text, in the shapes libraries put them in.

A server's reply or a library's message may quote a password as it is, but
also percent-encoded (a URL with ``user:password@``) or base64-encoded (an
HTTP basic ``Authorization`` header, ``user:password`` encoded as one run).
:func:`redact` replaces each of those shapes with ``***``; the base64 run is
matched at every byte alignment, so a secret inside a longer encoded value
is blanked too (its neighbours' characters may go with it: the text only
has to stay readable, not decodable).

Errors that cross the plugin contract are scrubbed with their target's own
credentials (:meth:`offsite.errors.TargetError.scrub`). What prints whole
tracebacks cannot know the target: a crash report, ``log.exception``. A
traceback shows every chained exception, and a translated error is raised
``from`` the library's own, unscrubbed. So the credential store
:func:`remember` s every value it decrypts (and the passphrase it is
given), and the crash report and the command line's log handlers
(:class:`RedactingFormatter`) blank whatever this process has remembered.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import re
import threading
import urllib.parse
from collections.abc import Iterable

#: Encoded runs shorter than this are not blanked: they would match by chance.
MIN_ENCODED = 8


@functools.lru_cache(maxsize=256)  # every log line asks again, for the same few secrets
def shapes(secret: str) -> tuple[str, ...]:
    """``secret`` and its encoded shapes, longest first (a shape never hides a longer one)."""
    found = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe="")}
    raw = secret.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        # Only the characters made of the secret's bits alone: the others
        # depend on what surrounds it.
        run = encoded[math.ceil(8 * offset / 6): (8 * (offset + len(raw))) // 6]
        if len(run) >= MIN_ENCODED:
            found |= {run, run.replace("+", "-").replace("/", "_")}
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every shape of every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            for shape in shapes(secret):
                text = text.replace(shape, "***")
    return text


_remembered: set[str] = set()
_lock = threading.Lock()


#: Remembered values shorter than this are blanked only where they stand as
#: a word of their own: a one-letter value (a password "b", a region "x")
#: blanked everywhere would take that letter out of every word of every
#: traceback. Errors scrubbed with their target's own credentials
#: (:meth:`offsite.errors.TargetError.scrub`) still blank every occurrence.
MIN_REMEMBERED = 4


def remember(values: Iterable[str]) -> None:
    """Blank these values from every crash report and log line of this process."""
    with _lock:
        _remembered.update(v for v in values if v)


def forget() -> None:
    """Forget every remembered value (for tests that run many stores in one process)."""
    with _lock:
        _remembered.clear()


def remembered() -> tuple[str, ...]:
    """Every value :func:`remember` was given."""
    with _lock:
        return tuple(_remembered)


def redact_remembered(text: str) -> str:
    """``text`` with every remembered value blanked: long ones in every shape
    (:func:`redact`), short ones (:data:`MIN_REMEMBERED`) where they stand as
    a word, not inside a longer one."""
    values = remembered()
    text = redact(text, [v for v in values if len(v) >= MIN_REMEMBERED])
    for short in (v for v in values if len(v) < MIN_REMEMBERED):
        text = re.sub(rf"(?<!\w){re.escape(short)}(?!\w)", "***", text)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats a record with ``inner`` (the traceback included), then blanks
    every remembered secret out of the text."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact_remembered(self.inner.format(record))


def redact_handlers(handlers: Iterable[logging.Handler]) -> None:
    """Wrap each handler's formatter in a :class:`RedactingFormatter` (once)."""
    for handler in handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))


__all__ = ["MIN_ENCODED", "MIN_REMEMBERED", "RedactingFormatter", "forget", "redact",
           "redact_handlers", "redact_remembered", "remember", "remembered", "shapes"]

"""The typed way the core talks to a transport; nothing else calls ``pm.hook``.

:class:`Transport` is one plugin in its own pluggy manager; ``connect`` gives
a :class:`Session`, one open connection, whose methods are the contract's
verbs with real signatures. Here, once for every plugin, the core:

* normalises remote paths (:mod:`offsite.paths`) before a plugin sees them;
* hides partial uploads from listings;
* wraps the upload source so local read errors are :class:`SourceError`;
* routes every exception a plugin lets escape through its
  ``translate_error`` hook, fills in path, step and target, and scrubs
  credential values from the message (a ``translate_error`` that raises is
  logged, once per plugin as a warning, and the original error goes on);
* runs the write/list/read/delete probe of ``offsite check``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pluggy

from offsite import paths
from offsite.checks import CheckReport, Steps
from offsite.errors import (
    Fatal,
    OffsiteError,
    PluginError,
    SourceError,
    TargetError,
    find_cause,
)
from offsite.plugins import PluginInfo, Registry, discover
from offsite.redact import redact
from offsite.transport import (
    BytesSource,
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    Source,
    Transfer,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

#: (scheme, distribution) of the plugins whose ``translate_error`` raised and
#: were warned about: once per plugin and process, not once per error.
_broken_translators: set[tuple[str, str]] = set()
_broken_translators_lock = threading.Lock()  # targets translate on their own threads


class Transport:
    """One transport plugin, loaded in its own plugin manager."""

    def __init__(self, info: PluginInfo, pm: pluggy.PluginManager) -> None:
        self.info = info
        self.pm = pm

    @classmethod
    def for_endpoint(cls, endpoint: Endpoint, registry: Registry | None = None,
                     wrappers: Sequence[object] = ()) -> Transport:
        """The transport for ``endpoint``'s URL scheme.

        :param registry: what :func:`~offsite.plugins.discover` found; by
            default only the plugins for ``endpoint``'s scheme are imported
            (an FTP upload does not pay for importing boto3: 0.4 s).
        :param wrappers: hook wrappers for this target only (a bandwidth limit).
        :raises PluginError: no usable plugin handles the scheme.
        """
        # Without a registry, only the plugins for this scheme are imported:
        # an SMB put does not pay for importing boto3 (0.1-0.2 s, more on a busy machine).
        info, pm = (registry or discover({endpoint.scheme})).manager(endpoint.scheme, wrappers)
        return cls(info, pm)

    def __repr__(self) -> str:
        return f"<Transport {self.info.scheme} from {self.info.distribution} {self.info.version}>"

    # -- errors -----------------------------------------------------------

    def translate(
        self, exc: BaseException, *, endpoint: Endpoint, step: str | None, path: str | None
    ) -> TargetError:
        """Turn anything a plugin raised into a scrubbed :class:`TargetError`."""
        error: TargetError | None = None
        if isinstance(exc, TargetError):
            error = exc
        elif isinstance(exc, OffsiteError):
            error = Fatal(str(exc), exc=exc)
        else:
            try:
                error = self.pm.hook.translate_error(exc=exc)
            except Exception as broken:
                # A broken translator must not hide the original error, which
                # goes on as Fatal below; but its author has to hear of it.
                self._translator_failed(exc, broken, endpoint)
            if not isinstance(error, TargetError):
                error = Fatal(f"{type(exc).__name__}: {exc}".rstrip(": "), exc=exc)
        if error.path is None:
            error.path = path
        if error.step is None:
            error.step = step
        if error.target is None:
            error.target = endpoint.label
        if error.name is None and endpoint.name:
            error.name = endpoint.name
        if error.exc is None and error is not exc:
            error.exc = exc
        return error.scrub(endpoint.secrets())

    def _translator_failed(self, exc: BaseException, broken: Exception,
                           endpoint: Endpoint) -> None:
        """Log a ``translate_error`` that raised: each time at debug level with
        its traceback, and once per plugin (per process) as a warning."""
        secrets = endpoint.secrets()

        def scrub(text: str) -> str:  # the traceback quotes both exceptions' messages
            return redact(text, secrets)

        name = f"plugin {self.info.distribution} ({self.info.scheme}://)"
        log.debug("%s: translate_error raised while translating %s:\n%s", name,
                  type(exc).__name__, scrub("".join(traceback.format_exception(broken))).rstrip())
        key = (self.info.scheme, self.info.distribution)
        with _broken_translators_lock:
            if key in _broken_translators:
                return
            _broken_translators.add(key)
        log.warning("%s: its translate_error hook raised %s while translating %s; errors it "
                    "should translate are reported untranslated, as Fatal (said once; -vv "
                    "logs each with its traceback). Fix: upgrade %s, or report it to its "
                    "authors", name, scrub(f"{type(broken).__name__}: {broken}"),
                    type(exc).__name__, self.info.distribution)

    def steps(self, endpoint: Endpoint) -> Steps:
        """A step recorder whose failures are translated like any other."""
        return Steps(lambda exc, step: self.translate(exc, endpoint=endpoint, step=step, path=None))

    # -- verbs ------------------------------------------------------------

    def connect(self, endpoint: Endpoint, steps: Steps | None = None) -> Session:
        """Open a session; ``steps`` records the phases (a fresh one if omitted).

        :raises TargetError: the phase that failed, with the fix.
        """
        steps = steps if steps is not None else self.steps(endpoint)
        # A failure outside the plugin's own steps is still a failed step.
        with steps.step("connect", endpoint.url, quiet=True):
            conn = self.pm.hook.connect(endpoint=endpoint, steps=steps)
        if conn is None:
            raise PluginError("connect returned nothing", plugin=self.info.scheme,
                              distribution=self.info.distribution)
        return Session(self, endpoint, conn)

    def check(self, endpoint: Endpoint) -> CheckReport:
        """Check a target step by step: connect, the plugin's own checks, and a
        probe file written, listed, read back and deleted. Never raises for a
        target problem: the report says which step failed and how to fix it."""
        steps = self.steps(endpoint)
        try:
            session = self.connect(endpoint, steps)
        except TargetError:
            return CheckReport(endpoint.label, tuple(steps.steps))
        try:
            if "check" in self.info.hooks:
                with steps.step("check", self.info.distribution, quiet=True):
                    self.pm.hook.check(conn=session.conn, steps=steps)
            session.probe(steps)
        except TargetError:
            pass
        finally:
            session.close()
        return CheckReport(endpoint.label, tuple(steps.steps))


class Session:
    """One open connection to a target, with the contract's verbs.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, transport: Transport, endpoint: Endpoint, conn: Any) -> None:
        self.transport = transport
        self.endpoint = endpoint
        self.conn = conn
        self._hook = transport.pm.hook
        self.closed = False

    def __repr__(self) -> str:
        return f"<Session {self.endpoint.url} via {self.transport.info.distribution}>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, step: str, path: str | None, call: Callable[[], T | None]) -> T:
        try:
            result = call()
        except Exception as exc:
            # A library may wrap the source's own failure in one of its errors.
            source_error = find_cause(exc, SourceError)
            if source_error is not None and source_error is not exc:
                raise source_error from exc
            if not isinstance(exc, OffsiteError):
                raise self.transport.translate(
                    exc, endpoint=self.endpoint, step=step, path=path
                ) from exc
            if isinstance(exc, TargetError):  # fill in path, step, target; scrub
                self.transport.translate(exc, endpoint=self.endpoint, step=step, path=path)
            raise
        if result is None:
            raise PluginError(f"{step} returned nothing", plugin=self.transport.info.scheme,
                              distribution=self.transport.info.distribution)
        return result

    def put(
        self,
        path: str,
        source: Source,
        *,
        resume: ResumeToken | None = None,
        on_token: Callable[[ResumeToken], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> RemoteFile:
        """Upload ``source`` to ``path`` atomically (see the ``put`` hook).

        :param resume: a token an earlier attempt saved through ``on_token``.
        :param on_token: receives resume tokens to keep (the journal).
        :param on_progress: receives the bytes done so far.
        :raises SourceError: reading the source failed; the partial upload stays.
        :raises TargetError: the target failed, or reports another size than
            the source's (:class:`~offsite.errors.Fatal`).
        """
        path = paths.normalise(path)
        transfer = Transfer(source, resume, on_token=on_token, on_progress=on_progress)
        placed: RemoteFile = self._call("put", path, lambda: self._hook.put(
            conn=self.conn, path=path, transfer=transfer))
        if placed.size != transfer.size:
            # A plugin's bug, or a store that assembled something else (a
            # multipart upload whose part list was cut short on the way).
            raise self.transport.translate(Fatal(
                f"the target holds {placed.size} bytes after the upload, not {transfer.size}",
                fix="run again: the upload starts over; if it repeats, report it"),
                endpoint=self.endpoint, step="put", path=path)
        return placed

    def get(self, path: str, offset: int = 0) -> io.RawIOBase:
        """Open ``path`` for reading from ``offset``; close the stream when done.

        :raises NotFound: there is no such file.
        """
        path = paths.normalise(path)
        stream: Readable = self._call("get", path, lambda: self._hook.get(
            conn=self.conn, path=path, offset=offset))
        return _ReadStream(stream, lambda exc: self.transport.translate(
            exc, endpoint=self.endpoint, step="get", path=path))

    def list(self, folder: str = "") -> list[RemoteFile]:
        """Every finished file under ``folder``, recursively, sorted by path."""
        folder = paths.normalise(folder)
        files = self._call("list", folder, lambda: self._hook.list(conn=self.conn, folder=folder))
        return sorted((f for f in files if not paths.is_partial(f.path)), key=lambda f: f.path)

    def delete(self, path: str) -> None:
        """Delete ``path``.

        :raises NotFound: there is no such file.
        """
        path = paths.normalise(path)
        self._call("delete", path, lambda: self._hook.delete(conn=self.conn, path=path))

    def discard(self, path: str, resume: ResumeToken) -> bool:
        """Clean up after an upload of ``path`` that will not be resumed (see
        the ``discard`` hook); False if the plugin cannot.

        :raises TargetError: the target refused (the caller decides whether it matters).
        """
        if "discard" not in self.transport.info.hooks:
            return False
        path = paths.normalise(path)
        done: bool = self._call("discard", path, lambda: self._hook.discard(
            conn=self.conn, path=path, resume=resume))
        return done

    def close(self) -> None:
        """Close the connection; safe to call twice, never raises a target error."""
        if self.closed:
            return
        self.closed = True
        # Closing a broken connection must not mask the error that broke it.
        with contextlib.suppress(Exception):
            self._hook.close(conn=self.conn)

    def probe(self, steps: Steps) -> None:
        """Write, list, read back and delete a small probe file, each a step."""
        name = f".offsite-probe-{uuid.uuid4().hex}"
        data = uuid.uuid4().bytes * 256
        with steps.step("probe-write", name):
            self.put(name, BytesSource(data))
        with steps.step("probe-list", self.endpoint.path or "/"):
            if name not in {f.path for f in self.list()}:
                raise Fatal("the probe file was written but the listing does not show it")
        with steps.step("probe-read", name):
            with self.get(name) as stream:
                back = stream.read()
            if back != data:
                raise Fatal(f"the probe file read back {len(back)} bytes that differ "
                            f"from the {len(data)} written")
        with steps.step("probe-delete", name):
            self.delete(name)


class _ReadStream(io.RawIOBase):
    """A plugin's read stream whose failures come out translated."""

    def __init__(self, stream: Readable, translate: Callable[[BaseException], TargetError]) -> None:
        super().__init__()
        self._stream = stream
        self._translate = translate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._stream.read(len(view))
        except OffsiteError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1, /) -> bytes:
        # Skip RawIOBase's readall-by-readinto for large reads: ask the plugin's
        # stream directly, which may read ahead in bigger pieces.
        if size is None or size < 0:
            return super().read(size)
        try:
            return self._stream.read(size)
        except OffsiteError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    @property
    def can_skip(self) -> bool:
        """Whether the plugin's stream skips forward cheaper than reading (see ``get``)."""
        return callable(getattr(self._stream, "skip", None))

    def skip(self, size: int, /) -> int:
        """Drop the next ``size`` bytes through the plugin's ``skip``; how many
        were dropped (fewer only at the end). Only where :attr:`can_skip`."""
        try:
            skipped: int = self._stream.skip(size)  # type: ignore[attr-defined]
        except OffsiteError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc
        return skipped

    @property
    def skip_horizon(self) -> int | None:
        """How far forward reading on beats a new ``get`` (the plugin's
        stream's ``skip_horizon``; None: the core's default)."""
        horizon = getattr(self._stream, "skip_horizon", None)
        return int(horizon) if horizon is not None else None

    @property
    def can_want(self) -> bool:
        """Whether the plugin's stream takes a plan of the ranges read next (see ``get``)."""
        return callable(getattr(self._stream, "want", None))

    def want(self, ranges: Sequence[tuple[int, int]], /) -> None:
        """Tell the plugin's stream the ``(offset, length)`` ranges read next,
        in order. Only where :attr:`can_want`."""
        try:
            self._stream.want(ranges)  # type: ignore[attr-defined]
        except OffsiteError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            except Exception:  # noqa: S110 - a failed close after reading is not a read error
                pass
            finally:
                super().close()

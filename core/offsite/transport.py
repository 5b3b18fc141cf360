"""The values that cross the transport contract (see :mod:`offsite.hookspecs`).

* :class:`Endpoint` — where a target is and how to log in: what ``connect``
  receives. Credentials are kept out of its repr.
* :class:`RemoteFile` — one file as ``list`` and ``put`` report it.
* :class:`Source` — what ``put`` uploads: a size known up front and a stream
  that can be opened at any offset (that is what makes resume possible, for
  files and for consolidations streamed straight from their inputs alike).
* :class:`Transfer` — one upload as ``put`` sees it: the source opened at
  an offset (as a size-checked :class:`SourceReader`), the previous resume
  token, where to save a new one, and where to report progress.
* :func:`pump` — the one copy loop every plugin uses to move a source into a
  writable remote file, reporting progress as it goes.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, Protocol

import attrs

from offsite import paths
from offsite.errors import SourceError

#: How much a plugin should move per read/write: large enough for full speed
#: on every protocol, small enough to keep memory flat.
CHUNK_SIZE = 1 << 20
#: How many chunks a :class:`SourceReader` reads ahead of the plugin.
READ_AHEAD = 4
#: How long closing a :class:`SourceReader` waits for its read-ahead thread.
CLOSE_WAIT = 1.0
#: A put saves a new resume token once this many bytes or seconds have
#: passed since the last (:meth:`Transfer.checkpoint_due`): what a kill -9
#: makes it send again is the smaller of the two.
CHECKPOINT_BYTES = 64 << 20
CHECKPOINT_SECONDS = 1.0

#: A plugin's own JSON-serialisable note of how to resume an upload
#: (a partial file's name and the offset known to be durable, an S3 upload
#: id and its parts …). The engine stores it in the journal verbatim.
ResumeToken = Mapping[str, Any]


class Readable(Protocol):
    """A stream of bytes: what ``get`` returns and what a source opens to."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # A read-only view, so a frozen Endpoint cannot be mutated through it.
    from types import MappingProxyType

    return MappingProxyType(dict(value or {}))


def _control_character(text: str) -> str | None:
    """The first control character in ``text``, described (``NUL (U+0000)``), or None.

    NUL ends a path in every operating system call; the others (a newline, an
    escape) have no place in a folder name and would garble logs.
    """
    for char in text:
        if unicodedata.category(char) == "Cc":
            name = "NUL" if char == "\x00" else repr(char)
            return f"{name} (U+{ord(char):04X})"
    return None


@attrs.frozen
class Endpoint:
    """Where a target lives and how to log in to it.

    Build one from a URL with :meth:`from_url`. ``path`` is the target folder
    (absolute for ``file`` and ``sftp``; the share/bucket and folder for
    others), already percent-decoded and Unicode.

    :ivar name: the target's name in its job, used in messages.
    :ivar credentials: secret fields (``password``, ``private_key``,
        ``passphrase``, ``access_key_id``, ``secret_access_key``); never in a
        repr, a message or a log line.
    """

    scheme: str
    host: str = ""
    port: int | None = None
    username: str = ""
    path: str = ""
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    credentials: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=False
    )
    name: str = ""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str = "",
        options: Mapping[str, Any] | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> Endpoint:
        """Parse a target URL such as ``sftp://backup@vault:22/srv/offsite``.

        :raises ValueError: for a URL without a scheme, with a password in it
            (passwords belong in the credential store), a bad port, a query
            string or fragment (which would silently be dropped), or a control
            character such as NUL, written as it is or percent-encoded.
        """
        bad = _control_character(url)
        if bad:
            raise ValueError(f"a target URL must not contain control characters; found {bad}")
        parts = urllib.parse.urlsplit(url)
        if not parts.scheme:
            raise ValueError(f"target URL {url!r} has no scheme, e.g. file:///srv/offsite")
        # A query or fragment would be dropped on the way to the plugin: the
        # data would then go to a folder other than the one written down.
        if parts.query or url.split("#", 1)[0].endswith("?"):
            raise ValueError("a target URL must not have a query string ('?…'); "
                             "protocol settings go into [job.target.options], and a '?' in "
                             "a folder name is written %3F")
        if parts.fragment or "#" in url:
            raise ValueError("a target URL must not have a fragment ('#…'); "
                             "a '#' in a folder name is written %23")
        if parts.password is not None:
            raise ValueError(
                "a target URL must not contain a password; "
                "store it with: offsite credentials set JOB.TARGET"
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"target URL has an invalid port: {exc}") from None
        username = urllib.parse.unquote(parts.username or "")
        path = urllib.parse.unquote(parts.path)
        for what, text in (("user name", username), ("path", path)):
            bad = _control_character(text)
            if bad:
                raise ValueError(f"the {what} of a target URL must not contain control "
                                 f"characters; its percent-encoding decodes to {bad}")
        return cls(
            scheme=parts.scheme.lower(),
            host=parts.hostname or "",
            port=port,
            username=username,
            path=path,
            options=options,
            credentials=credentials,
            name=name,
        )

    @property
    def url(self) -> str:
        """The URL for display: user, host, port and folder, never a secret."""
        user = f"{urllib.parse.quote(self.username)}@" if self.username else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{user}{self.host}{port}{urllib.parse.quote(self.path)}"

    @property
    def label(self) -> str:
        """How messages name this target: its job name, else its URL."""
        return self.name or self.url

    def secrets(self) -> tuple[str, ...]:
        """Every credential value, for scrubbing messages."""
        return tuple(v for v in self.credentials.values() if v)


@attrs.frozen
class RemoteFile:
    """One file at a target, as ``list`` and ``put`` report it.

    :ivar path: relative to the target folder, normalised (:mod:`offsite.paths`).
    :ivar size: in bytes.
    :ivar mtime: modification time, seconds since the epoch (UTC).
    :ivar checksum: what the server offers, prefixed with its kind
        (``"etag:…"``, ``"sha256:…"``), or ``None``; ``put`` reports the one
        ``list`` shows for the same file.
    """

    path: str
    size: int
    mtime: float
    checksum: str | None = None


class Source(Protocol):
    """What ``put`` uploads: a known size and a stream openable at an offset."""

    @property
    def size(self) -> int: ...

    def open(self, offset: int = 0) -> Readable:
        """A stream of the bytes from ``offset`` to the end."""
        ...


@attrs.frozen
class FileSource:
    """A local file as a :class:`Source`."""

    path: os.PathLike[str] | str

    @property
    def size(self) -> int:
        return os.stat(self.path).st_size

    def open(self, offset: int = 0) -> BinaryIO:
        f = open(self.path, "rb")  # noqa: SIM115 - the caller closes it
        f.seek(offset)
        return f


@attrs.frozen
class BytesSource:
    """Bytes in memory as a :class:`Source` (small files, tests, probes)."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")

    @property
    def size(self) -> int:
        return len(self.data)

    def open(self, offset: int = 0) -> BinaryIO:
        return io.BytesIO(self.data[offset:])


class SourceReader(io.RawIOBase):
    """The stream a plugin's ``put`` reads: the source, opened by the core.

    It counts what was read, and turns any failure of the underlying source
    into :class:`~offsite.errors.SourceError` so that a plugin (and the
    engine) never mistakes a local read error for a target error.

    A thread reads the source ahead of the plugin, at most
    :data:`READ_AHEAD` chunks of :data:`CHUNK_SIZE`: whatever the source
    does per byte (reading, checking an image's payloads, hashing) then runs
    beside the plugin's own work instead of between its writes. Both sides
    spend their time in C code that releases the GIL (``pread``, SHA-256,
    sockets, ciphers), so on two cores the two overlap.
    """

    def __init__(self, source: Source, offset: int = 0) -> None:
        super().__init__()
        self.size = source.size
        if not 0 <= offset <= self.size:
            raise SourceError(f"cannot resume at offset {offset} of a {self.size}-byte source")
        self.offset = offset
        self.position = offset
        try:
            self._stream = source.open(offset)
        except Exception as exc:
            raise SourceError(f"cannot open at offset {offset}: {exc}") from exc
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(READ_AHEAD)
        self._pending = memoryview(b"")
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stream_lock = threading.Lock()
        self._stream_closed = False

    def readable(self) -> bool:
        return True

    def _produce(self) -> None:
        # The read-ahead thread. Never hands out more than the announced size,
        # and fails loudly if the source ends early: a plugin must not rename
        # a short file into place.
        at = self.offset
        try:
            self._fill(at)
        finally:
            if self._halt.is_set():  # closed meanwhile: the stream is ours to close
                self._close_stream()

    def _fill(self, at: int) -> None:
        try:
            while at < self.size and not self._halt.is_set():
                want = min(CHUNK_SIZE, self.size - at)
                try:
                    data = self._stream.read(want)
                except Exception as exc:
                    raise SourceError(str(exc) or type(exc).__name__) from exc
                if not data:
                    raise SourceError(f"source ended at byte {at} of {self.size}")
                data = bytes(data[:want])
                at += len(data)
                self._put(data)
        except BaseException as exc:  # handed to the reading side, raised there
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._halt.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _next(self) -> bytes | BaseException:
        """The read-ahead's next chunk, or its failure (kept: every later
        read raises it too); starts the thread on the first call."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, daemon=True,
                                            name="offsite-read-ahead")
            self._thread.start()
        item = self._error or self._queue.get()
        if isinstance(item, BaseException):
            self._error = item
        return item

    def read(self, size: int = -1, /) -> bytes:
        # A read of a whole chunk (what pump asks for) gets the read-ahead's
        # own bytes object, not copied through readinto's buffer twice
        # (measured: 0.15 s of CPU per GiB, much of it page faults).
        if (size is not None and size > 0 and not self._pending and not self.closed
                and self.position < self.size):
            item = self._next()
            if isinstance(item, BaseException):
                raise item
            if len(item) == size or (len(item) < size and self.position + len(item) == self.size):
                self.position += len(item)
                return item
            self._pending = memoryview(item)  # a part of it: readinto hands that out
        data = super().read(size)
        return b"" if data is None else data

    def readinto(self, buffer: Any) -> int:
        # Fills the whole buffer unless the source is at its end, as a read of
        # a local file would: plugins may size S3 parts by what they ask for.
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self.position < self.size:
            if not self._pending:
                item = self._next()
                if isinstance(item, BaseException):
                    if filled:
                        break  # first hand out what arrived before the failure
                    raise item
                self._pending = memoryview(item)
            n = min(len(view) - filled, len(self._pending))
            view[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
            self.position += n
        return filled

    def _close_stream(self) -> None:
        with self._stream_lock:
            if not self._stream_closed:
                self._stream_closed = True
                self._stream.close()

    def close(self) -> None:
        if not self.closed:
            self._halt.set()
            try:
                thread = self._thread
                if thread is not None:
                    thread.join(CLOSE_WAIT)
                if thread is None or not thread.is_alive():
                    self._close_stream()
                # Else the thread is inside a slow read (a bandwidth limit's
                # pause, a stalled disk): it closes the stream when that returns,
                # and Ctrl-C or a failed upload need not wait for it.
            finally:
                super().close()


class Transfer:
    """One upload as a plugin's ``put`` sees it, made by the core for each call.

    It is the source (its size, and a stream openable at any offset), the
    resume token of an earlier attempt, and the channel back to the engine
    (save a new token, report progress). Keeping all of that in one object
    keeps ``put``'s signature stable as the engine grows.

    :ivar size: the number of bytes the finished file will have.
    :ivar resume: the token an earlier, interrupted ``put`` of the same path
        saved, or ``None`` to start from the beginning.
    """

    source: Source

    def __init__(
        self,
        source: Source,
        resume: ResumeToken | None = None,
        *,
        on_token: Callable[[ResumeToken], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.size = source.size
        self.resume = resume
        self._on_token = on_token
        self._on_progress = on_progress
        self.done = 0
        self._saved_at = (0, time.monotonic())

    def open(self, offset: int = 0) -> SourceReader:
        """The source's bytes from ``offset`` (where the target's partial file
        ends, when resuming) to the end; close it when done."""
        return SourceReader(self.source, offset)

    def save_token(self, token: ResumeToken) -> None:
        """Record how to resume this upload; call it before the first byte
        moves, and again whenever more bytes are known to be durable."""
        self._saved_at = (self.done, time.monotonic())
        if self._on_token is not None:
            self._on_token(dict(token))

    def checkpoint_due(self, done: int) -> bool:
        """Whether it is time to make the bytes up to ``done`` durable and save
        a token for them: :data:`CHECKPOINT_BYTES` or
        :data:`CHECKPOINT_SECONDS` since the last token, whichever comes
        first. Checkpoints cost (an fsync, a round trip, a journal write):
        this keeps them rare on a fast link and frequent enough on a slow
        one, so that a killed upload sends little again."""
        offset, when = self._saved_at
        if done <= offset:
            return False
        return (done - offset >= CHECKPOINT_BYTES
                or time.monotonic() - when >= CHECKPOINT_SECONDS)

    def resume_offset(self, partial: str, held: Callable[[], int | None]) -> int:
        """Where a put into the partial file ``partial`` resumes.

        No further than the offset the earlier attempt's token confirmed, than
        what the target really holds, nor than the source's size: bytes past
        the token (another writer's, or writes never confirmed) are not
        trusted, and the plugin cuts them off (or starts again) before it
        writes. 0 when there is no token, or it names another file.

        :param partial: the partial file's path relative to the target
            folder (:func:`offsite.paths.partial_path`), as saved by
            :meth:`save_partial`.
        :param held: asks the target how many bytes ``partial`` holds
            (``None`` when it is not there); only called when the token is
            this file's.
        """
        token = self.resume
        if not token or token.get("partial") != partial:
            return 0
        size = held()
        if size is None:
            return 0
        return max(0, min(int(token.get("offset", 0)), size, self.size))

    def save_partial(self, partial: str, offset: int) -> None:
        """Save the token that :meth:`resume_offset` reads: ``offset`` bytes of
        the partial file ``partial`` are known to be at the target."""
        self.save_token({"partial": partial, "offset": offset})

    def progress(self, done: int) -> None:
        """Report that ``done`` bytes of the source are now at the target
        (counting bytes a resumed upload skipped). Never decreases."""
        self.done = done
        if self._on_progress is not None:
            self._on_progress(done)


def owned_partial(path: str, resume: ResumeToken) -> str | None:
    """The partial file of ``path`` if ``resume`` (a token from
    :meth:`Transfer.save_partial`) names it, else ``None``: what a plugin's
    ``discard`` may remove, and never anything else."""
    partial = paths.partial_path(path)
    return partial if resume.get("partial") == partial else None


def pump(
    reader: SourceReader,
    write: Callable[[bytes], object],
    transfer: Transfer,
    *,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
    stop: int | None = None,
) -> int:
    """Copy ``reader`` to ``write`` in chunks, reporting progress; return the end offset.

    :param on_chunk: called with the new offset after each chunk, e.g. to
        flush and save a resume token every so often.
    :param stop: end at this offset of the source instead of at its end, so
        that a protocol that confirms bytes only at the end of a request (an
        FTP data connection) can send a long source as several requests,
        each a call to ``pump`` on the same reader.
    :raises SourceError: if the source fails or ends before its size.
    """
    done = reader.position
    transfer.progress(done)
    while True:
        want = chunk_size if stop is None else min(chunk_size, stop - done)
        if want <= 0:
            return done
        chunk = reader.read(want)
        if not chunk:
            return done
        write(chunk)
        done += len(chunk)
        transfer.progress(done)
        if on_chunk is not None:
            on_chunk(done)


__all__ = [
    "CHUNK_SIZE",
    "BytesSource",
    "Endpoint",
    "FileSource",
    "Readable",
    "RemoteFile",
    "ResumeToken",
    "Source",
    "SourceReader",
    "Transfer",
    "owned_partial",
    "paths",
    "pump",
]

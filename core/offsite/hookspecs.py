"""The transport contract: the one page a target-plugin author reads.

A target plugin teaches offsite one protocol. It is an object (usually an
instance of a class) whose methods carry ``@offsite.hookimpl`` and are named
after the hooks below, published under an entry point in the group
``offsite.targets`` whose name is the URL scheme it serves::

    [project.entry-points."offsite.targets"]
    sftp = "offsite_sftp:plugin"

For each target, the core builds a pluggy ``PluginManager`` holding these
specs, the core's own hook wrappers (cross-cutting concerns such as bandwidth
limiting and byte accounting, written once for every protocol) and exactly one
transport: yours. pluggy checks at load time that every method you mark is a
hook named here and takes only parameters the spec has, so a typo is refused
with a clear message, not discovered in production. Every hook is
``firstresult``: the single transport answers, and ``None`` means "not
implemented". ``connect``, ``put``, ``get``, ``list``, ``delete`` and
``close`` are required; ``options``, ``capabilities``, ``check``,
``translate_error`` and ``discard`` are optional.

The contract points, each checked by the conformance suite in
:mod:`offsite.testing` (run it: see docs/PLUGINS.md):

* **The endpoint.** ``connect`` gets the target's URL taken apart as an
  :class:`~offsite.transport.Endpoint`. For
  ``foo://user@host:2121/some%20folder``: ``scheme`` ``"foo"`` (lower case:
  your entry point's name), ``host`` ``"host"`` (lower case, no brackets
  around an IPv6 address, ``""`` when there is none), ``port`` ``2121``
  (``None`` when the URL has none: apply your default), ``username``
  ``"user"`` and ``path`` ``"/some folder"`` (both percent-decoded, full
  Unicode, ``""`` when absent; the path as written, leading ``/``
  included), ``options`` the target's ``[job.target.options]`` table
  (read-only, TOML values: strings, numbers, booleans, arrays, tables),
  ``credentials`` the fields stored with ``offsite credentials set
  JOB.TARGET`` (``password``, ``private_key``, ``passphrase``,
  ``access_key_id``, ``secret_access_key``; empty when none are stored),
  and ``name`` ``"JOB.TARGET"`` for messages. The core refuses, before any
  plugin sees it, a URL with a password (``user:secret@``), a query string
  (``?…``), a fragment (``#…``), a control character (also
  percent-encoded, such as ``%00``), a bad port, and a scheme no installed
  plugin claims.
* **Paths.** Every ``path`` a hook receives is relative to the target folder
  (``endpoint.path``), ``/``-separated, Unicode NFC, with no ``..``; the core
  normalises them (:mod:`offsite.paths`). Names are full Unicode: accents,
  CJK, spaces and emoji must round-trip. Map them to the protocol's encoding
  (UTF-8 almost everywhere) yourself.
* **Atomic put.** A file appears under its final name only when complete:
  write it under :func:`offsite.paths.partial_path` in the same folder and
  rename it over the final name (or complete an S3 multipart upload). A crash
  at any moment leaves no half file under a final name.
* **Streaming put with progress.** Read the source in chunks
  (:data:`offsite.transport.CHUNK_SIZE`); memory stays bounded whatever the
  size. Report progress through ``transfer.progress(done)``:
  :func:`offsite.transport.pump` does both for a writable remote file.
* **Resume.** Before the first byte moves, save a resume token with
  ``transfer.save_token({...})`` (JSON-serialisable; the engine keeps it in
  the journal). When ``transfer.resume`` is set, continue that upload from
  the offset the target really holds, not the token's word alone. When the
  engine gives an upload up, ``discard`` gets the token to clean up after it.
  A protocol that cannot continue an upload (WebDAV has no standard partial
  PUT) still saves a token, starts every put at 0, and says so with the
  ``capabilities`` hook; the engine then tells the operator.
* **Reading.** ``get`` at the end of a file, or past it, returns an empty
  stream, never an error.
* **Listing.** ``list`` returns path, size and mtime for every finished file
  under a folder, recursively, and a checksum where the server gives one:
  regular files only (a symlink to a file as that file; folders, and what
  symlinked folders hold, are not entries). ``put`` reports the mtime and
  checksum ``list`` will show for the file it placed.
* **Deleting.** ``delete`` removes one file (a symlink: the link, never
  what it points to); a folder's path, or a path with nothing there, raises
  :class:`~offsite.errors.NotFound`.
* **Threads.** One connection is used by one thread at a time, with at most
  one ``get`` stream open on it (the core closes it before its next call on
  that connection). Separate connections are used at once from separate
  threads: the engine runs a job's targets in parallel.
* **Typed errors.** Raise only :mod:`offsite.errors` types; translate your
  library's exceptions in one place, the ``translate_error`` hook. The core
  passes every other exception a hook raises through it, sets ``path``,
  ``step`` and ``target`` on the result, and blanks credential values out of
  its message. Only what a retry can cure is
  :class:`~offsite.errors.Transient`: never a permission denied
  (:class:`~offsite.errors.PermissionDenied`) or a full target
  (:class:`~offsite.errors.StorageFull`), which the engine would retry in
  vain.
* **Secrets.** No credential may appear in a log line, a message, a repr or
  a command line. Keep them out of your connection object's repr.
* **Options.** Declare the ``[job.target.options]`` keys you read with the
  ``options`` hook: a misspelt one (``sse`` as ``ssе``, ``ca_file`` as
  ``cafile``) is then refused with the configuration, naming the file and
  the key, instead of being ignored while the upload goes out unencrypted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from offsite import PROJECT

if TYPE_CHECKING:
    from offsite.checks import Steps
    from offsite.errors import TargetError
    from offsite.transport import Endpoint, Readable, RemoteFile, ResumeToken, Transfer

#: Marks the specifications below; plugins use :data:`offsite.hookimpl`.
hookspec = pluggy.HookspecMarker(PROJECT)

#: Whatever your ``connect`` returns; the core hands it back to every other
#: hook untouched. Keep secrets out of its repr.
Connection = Any


# -------------------------------------------------------------------------
# configuration
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def options() -> Mapping[str, str] | None:
    """The target options your plugin reads: each name, with one line on it.

    Stops at the first non-None result. Optional, but declare them: the core
    then refuses a configuration whose ``[job.target.options]`` for your
    scheme has any other key (exit code 2, naming the file, the key and the
    closest name you declared), before anything connects, and ``offsite
    targets --json`` lists them. Return ``{}`` when you take none. Without
    this hook every option reaches ``connect`` unchecked. Checking the
    *values* stays with ``connect`` (raise :class:`~offsite.errors.Fatal`
    naming the option).

    :returns: option name → what it does, e.g. ``{"region": "the bucket's
        region (default us-east-1)"}``.
    """


@hookspec(firstresult=True)
def capabilities() -> Mapping[str, bool] | None:
    """What your protocol can and cannot do, where the engine must know it.

    Stops at the first non-None result. Optional: without it (or for a key
    left out) everything is taken as possible. Known keys:

    * ``resume`` (default ``True``): ``put`` continues an interrupted
      upload from what the target holds. Return ``False`` when the protocol
      cannot (WebDAV: no standard partial PUT), and start every put at 0.
      Save tokens all the same (``discard`` needs them to clean up). When
      the engine finishes an interrupted upload for such a target, it
      reports "restarted from the beginning: the target cannot resume an
      upload" instead of "resuming", and ``offsite targets --json`` shows
      the capability.
    * ``parallel_gets`` (default ``False``): several ``get`` streams of one
      connection may be open at once (S3: each is a request of its own).
      A restore from the target then keeps one stream per image of the
      chain instead of reopening one at every switch between images (a
      new ``get`` at an offset each time: on a store that pays per
      request, or per range read, that decides the restore's time).

    :returns: capability name → whether the protocol has it, e.g.
        ``{"resume": False}``.
    """


# -------------------------------------------------------------------------
# connection
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def connect(endpoint: Endpoint, steps: Steps) -> Connection | None:
    """Open a connection (a session) to the target.

    Stops at the first non-None result.

    Run each phase inside ``with steps.step(NAME, DETAIL):`` so that
    ``offsite check`` can say which one failed: ``resolve`` (DNS),
    ``connect`` (TCP), ``tls`` or ``hostkey``, ``auth``, then ``folder``
    (the target folder exists, or is created, and is a folder). Skip what
    does not apply to your protocol. A protocol without a network (a local
    folder) has only ``folder``: a target path that is a file fails it, and
    that is the conformance suite's ``broken_endpoint`` for such a plugin.

    The connection you return is used by one thread at a time, and has at
    most one ``get`` stream open at once. The engine runs targets in
    parallel, so several connections (from several ``connect`` calls) may be
    in use at the same time from different threads: keep no shared state
    between them that is not thread-safe.

    :param endpoint: the target URL taken apart (scheme, host, port,
        username, percent-decoded ``path``), the ``[job.target.options]``
        table as ``options`` and the stored ``credentials``; see the
        module's contract points for what each holds.
    :param steps: the recorder for the phases above.
    :returns: your connection object.
    :raises ResolveFailed: the host name does not resolve.
    :raises ConnectFailed: refused, reset or timed out (retried).
    :raises TLSFailed: the certificate is not trusted.
    :raises HostKeyRejected: the SSH host key is unknown or changed.
    :raises AuthError: the credentials were refused.
    :raises PermissionDenied: the folder cannot be created or entered.
    :raises StorageFull: the folder cannot be created for want of space or
        quota.
    :raises Fatal: the folder is a file, an option is invalid.
    """


@hookspec(firstresult=True)
def check(conn: Connection, steps: Steps) -> bool | None:
    """Run checks beyond ``connect`` that only your protocol knows.

    Stops at the first non-None result. Optional.

    The core's check already connects (with your steps) and then writes,
    lists, reads back and deletes a probe file through your other hooks.
    Add what else an operator should learn before the first real run, each
    inside ``steps.step``: a server extension you rely on (posix-rename), a
    bucket's region or versioning, free space.

    :param conn: what ``connect`` returned.
    :param steps: the recorder to add steps to.
    :returns: ``True`` when your checks ran.
    :raises TargetError: from a failed step.
    """


@hookspec(firstresult=True)
def translate_error(exc: Exception) -> TargetError | None:
    """Translate one of your library's exceptions into the core error tree.

    Stops at the first non-None result. Optional, but it is the one place
    where a plugin maps its library's errors, so write it.

    The core calls it for every exception (other than an
    :class:`~offsite.errors.OffsiteError`) that escapes another hook, and
    sets ``path``, ``step`` and ``target`` on what you return. Return
    ``None`` for exceptions you do not know; the core then reports them as
    :class:`~offsite.errors.Fatal` naming the exception's type. Do not
    raise: a ``translate_error`` that raises is logged (once per plugin as a
    warning, each time with its traceback at debug level) and the original
    exception goes on untranslated, as ``Fatal``.

    Only what may cure itself is :class:`~offsite.errors.Transient` (the
    engine retries it, with backoff): a dropped connection, a timeout, a
    server that is busy. Never map a permission denied or a full target or
    exceeded quota to it: no retry can succeed, and the operator must act.

    :param exc: the exception raised inside one of your hooks.
    :returns: e.g. ``AuthError(str(exc), exc=exc)`` for an authentication
        failure, ``NotFound`` for a missing file, ``PermissionDenied``,
        ``StorageFull`` for no space left or an exceeded quota,
        ``Transient`` for a dropped connection or a timeout.
    """


# -------------------------------------------------------------------------
# transfer
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def put(conn: Connection, path: str, transfer: Transfer) -> RemoteFile | None:
    """Upload ``transfer``'s source to ``path``, atomically and resumably.

    Stops at the first non-None result.

    1. Create the missing folders of ``path``.
    2. Decide where to start: at 0, or, if ``transfer.resume`` is a token
       you saved for this path and the partial file is there, at the offset
       the target durably holds.
    3. ``transfer.save_token(...)`` before the first byte moves, then again
       whenever a larger offset is durable (after a flush/fsync).
    4. Open the source there, ``with transfer.open(offset) as reader:``,
       and copy it to the partial file in chunks, calling
       ``transfer.progress(done)`` as bytes land
       (:func:`offsite.transport.pump` does exactly this).
    5. Make it durable, then rename the partial file over ``path``.

    The reader raises :class:`~offsite.errors.SourceError` if the local
    source fails or ends early: let it propagate, and leave the partial file
    for a later resume.

    :param conn: what ``connect`` returned.
    :param path: the final remote path (normalised, relative to the folder).
    :param transfer: the source, the resume token and the progress channel.
    :returns: the placed file: its size, its mtime and a checksum if known,
        each the one ``list`` will show for it (stat the file after the
        rename, do not use the local clock). The journal keeps them, so that
        a listing with another checksum, or without checksums another mtime
        (by more than a second), is seen as a file changed at the target and
        put again: a put that reports another mtime than list makes every
        run upload the file again. Report 0 for an mtime the server cannot
        tell.
    :raises PermissionDenied: the folder or file cannot be written.
    :raises StorageFull: no space left at the target, or the user's quota
        is exceeded (never ``Transient``: a retry cannot succeed).
    :raises Transient: the connection dropped; the engine retries with the
        token you saved.
    :raises Fatal: the server lacks a needed feature.
    """


@hookspec(firstresult=True)
def get(conn: Connection, path: str, offset: int) -> Readable | None:
    """Open a remote file for reading, from ``offset`` to its end.

    Stops at the first non-None result.

    Restores and verification read through this; return a stream that reads
    ahead as your protocol allows (SFTP prefetch, HTTP streaming) but never
    loads the whole file. The caller closes it, before its next call on the
    same connection: a connection has at most one stream open at a time
    (unless the ``parallel_gets`` capability says it serves several).
    Errors raised while reading from the stream are translated like any
    other.

    Optionally the stream has ``skip(n) -> int``: drop the next ``n`` bytes
    more cheaply than reading them (e.g. by not asking for them), returning
    how many were dropped (fewer only at the end). A restore then jumps
    over the blocks it does not need on the stream it has, instead of
    reading them or opening a new one. And optionally ``want(ranges)``: the
    ``(offset, length)`` ranges, in file order, that the caller reads next
    (skipping between them), so a stream that asks ahead asks for just
    those; reading anything else afterwards must still return the file's
    bytes. offsite-sftp's streams have both: a restore then fetches only
    the winning blocks of each image. Without ``skip``, a forward gap up to
    1 MiB is read and dropped and a longer one opens a new stream; a stream
    whose new ``get`` costs more than reading on (an S3 request) says how far
    reading on still pays with an attribute ``skip_horizon`` (bytes).

    An ``offset`` at the end of the file or past it is not an error: return
    a stream whose first ``read`` returns ``b""`` (an HTTP server's 416 Range
    Not Satisfiable, for one, means exactly that).

    :param conn: what ``connect`` returned.
    :param path: the remote path (normalised, relative to the folder).
    :param offset: the first byte wanted (0 for the whole file); may be at
        or past the end.
    :returns: an object with ``read(size)`` and ``close()`` (and perhaps
        ``skip(n)`` and ``want(ranges)``); empty from an
        offset at or past the end.
    :raises NotFound: there is no file at ``path``.
    :raises PermissionDenied: it cannot be read.
    """


@hookspec(firstresult=True)
def discard(conn: Connection, path: str, resume: ResumeToken) -> bool | None:
    """Throw away what an interrupted ``put`` of ``path`` left behind.

    Stops at the first non-None result. Optional, but without it an
    abandoned upload lingers at the target until a ``put`` of the same path
    replaces it, and a consolidation is often re-planned under another name.

    The engine calls it when it gives up on resuming an upload: its sources
    changed or went, or they turned out to be damaged. ``resume`` is the last
    token your ``put`` saved for that path. Remove the partial file, abort
    the multipart upload, and so on. Something already gone is not an error;
    a token you do not recognise means there is nothing to do.

    :param conn: what ``connect`` returned.
    :param path: the final remote path the upload was for.
    :param resume: the token your ``put`` saved.
    :returns: ``True``.
    :raises PermissionDenied: the leftover may not be removed (the engine
        logs it and goes on: a leftover costs space, not data).
    """


# -------------------------------------------------------------------------
# listing
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def list(conn: Connection, folder: str) -> Sequence[RemoteFile] | None:
    """List every file under ``folder``, recursively.

    Stops at the first non-None result.

    Return regular files only, with paths relative to the target folder (so
    they can be passed straight to ``get`` and ``delete``), normalised to
    NFC. Folders are not entries. A symlink to a file is listed under the
    link's path as the file it points to, with that file's size and mtime;
    a symlink to a folder is not descended into (and a dangling one is left
    out). Partial uploads may be returned: the core hides them
    (:func:`offsite.paths.is_partial`).

    :param conn: what ``connect`` returned.
    :param folder: the folder to list (``""`` is the target folder).
    :returns: one :class:`~offsite.transport.RemoteFile` per file, with
        size and mtime, and a checksum where the server gives one; an empty
        sequence for an empty *or missing* folder.
    :raises PermissionDenied: the folder cannot be listed.
    """


@hookspec(firstresult=True)
def delete(conn: Connection, path: str) -> bool | None:
    """Delete one file.

    Stops at the first non-None result.

    Only the file at ``path``: on a symlink, remove the link, never what it
    points to. A folder is never deleted, empty or not.

    :param conn: what ``connect`` returned.
    :param path: the remote path (normalised, relative to the folder).
    :returns: ``True``.
    :raises NotFound: there is no file at ``path``: nothing is there, or a
        folder is.
    :raises PermissionDenied: it may not be deleted.
    """


# -------------------------------------------------------------------------
# teardown
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def close(conn: Connection) -> bool | None:
    """Close the connection and free what it holds.

    Stops at the first non-None result. Called once per ``connect``, also
    after a failure; it must not raise for a connection that already broke.

    :param conn: what ``connect`` returned.
    :returns: ``True``.
    """


#: The hooks a transport must implement to be loaded.
REQUIRED = ("connect", "put", "get", "list", "delete", "close")

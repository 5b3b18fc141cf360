"""offsite-local: the local-folder target, ``file:///absolute/path``.

The folder may be a local disk, a removable drive or a network share mounted
by the operating system. Atomic puts write a hidden partial file in the same
folder, fsync it and ``os.replace`` it over the final name (then fsync the
folder, so the rename survives a power cut). Resume continues the partial
file from the last offset known to be on disk: the plugin fsyncs and saves a
resume token at the core's checkpoints (every 64 MiB or 1 s, whichever
comes first: :meth:`offsite.transport.Transfer.checkpoint_due`), and once
more when the source fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from offsite import hookimpl, paths
from offsite.checks import Steps
from offsite.durable import fsync_dir
from offsite.errors import (
    Fatal,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    Transient,
)
from offsite.transport import (
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    Transfer,
    owned_partial,
    pump,
)


@attrs.frozen
class LocalConnection:
    """The open target: just its root folder."""

    root: Path

    def local(self, path: str) -> Path:
        return self.root / path if path else self.root


class LocalTransport:
    """The ``file`` scheme's transport (see :mod:`offsite.hookspecs`)."""

    @hookimpl
    def options(self) -> Mapping[str, str]:
        return {}  # a folder on this machine needs nothing more than its path

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> LocalConnection:
        if endpoint.host not in ("", "localhost"):
            raise Fatal(
                f"file:// URLs name a folder on this machine, not on host '{endpoint.host}'",
                fix="mount the share and use file:///mount/point, or use smb:// or sftp://",
            )
        root = Path(endpoint.path)
        with steps.step("folder", str(root)):
            if not root.is_absolute():
                raise Fatal(f"'{endpoint.path}' is not an absolute path",
                            fix="write the URL as file:///absolute/path")
            root.mkdir(parents=True, exist_ok=True)
            if not os.access(root, os.W_OK | os.X_OK):
                raise PermissionDenied(f"this user cannot write to '{root}'")
        return LocalConnection(root)

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        if not isinstance(exc, OSError):
            return None
        where = f"'{exc.filename}'" if exc.filename else "the target"
        if isinstance(exc, FileNotFoundError):
            return NotFound()
        if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
            return PermissionDenied(f"{exc.strerror} on {where}")
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            return Fatal(f"{where} is a file where a folder is needed",
                         fix="point the target URL at a folder, or move the file away")
        if isinstance(exc, IsADirectoryError):
            return Fatal(f"{where} is a folder where a file is expected",
                         fix="remove or rename that folder at the target")
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(f"{exc.strerror} on {where}")
        if exc.errno in (errno.EIO, errno.ESTALE, errno.ETIMEDOUT):
            return Transient(f"{exc.strerror} on {where}")
        return Fatal(f"{exc.strerror or exc} on {where}")

    @hookimpl
    def put(self, conn: LocalConnection, path: str, transfer: Transfer) -> RemoteFile:
        final = conn.local(path)
        partial_rel = paths.partial_path(path)
        partial = conn.local(partial_rel)
        final.parent.mkdir(parents=True, exist_ok=True)
        offset = transfer.resume_offset(partial_rel, lambda: _size(partial))
        with open(partial, "r+b" if offset else "wb") as out:
            out.truncate(offset)  # drop anything past what is known to be durable
            out.seek(offset)
            transfer.save_partial(partial_rel, offset)
            durable = offset

            def sync(done: int) -> None:
                nonlocal durable
                out.flush()
                os.fsync(out.fileno())
                durable = done
                transfer.save_partial(partial_rel, done)

            try:
                with transfer.open(offset) as reader:
                    pump(reader, out.write, transfer, on_chunk=lambda done: (
                        sync(done) if transfer.checkpoint_due(done) else None))
            except BaseException:
                # Keep what did arrive for the next attempt, if the disk lets us.
                with contextlib.suppress(OSError):
                    sync(max(transfer.done, durable))
                raise
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
        fsync_dir(final.parent)
        st = final.stat()
        return RemoteFile(path, st.st_size, st.st_mtime)

    @hookimpl
    def discard(self, conn: LocalConnection, path: str, resume: ResumeToken) -> bool:
        partial_rel = owned_partial(path, resume)
        if partial_rel is not None:  # never anything but our own partial
            with contextlib.suppress(FileNotFoundError):
                conn.local(partial_rel).unlink()
        return True

    @hookimpl
    def get(self, conn: LocalConnection, path: str, offset: int) -> Readable:
        f = open(conn.local(path), "rb")  # noqa: SIM115 - the caller closes it
        f.seek(offset)
        return f

    @hookimpl
    def list(self, conn: LocalConnection, folder: str) -> Sequence[RemoteFile]:
        base = conn.local(folder)
        if not base.is_dir():
            return []

        def fail(exc: OSError) -> None:
            raise exc  # os.walk would otherwise skip unreadable folders silently

        found = []
        for dirpath, _dirnames, filenames in os.walk(base, onerror=fail):
            for name in filenames:
                full = Path(dirpath, name)
                try:
                    st = full.stat()
                except FileNotFoundError:  # deleted while we walked
                    continue
                rel = paths.normalise(full.relative_to(conn.root).as_posix())
                found.append(RemoteFile(rel, st.st_size, st.st_mtime))
        return found

    @hookimpl
    def delete(self, conn: LocalConnection, path: str) -> bool:
        target = conn.local(path)
        # A folder is no file to delete (and what is in it must stay). On a
        # symlink, os.remove removes the link, never what it points to.
        if target.is_dir() and not target.is_symlink():
            raise NotFound("a folder, not a file")
        os.remove(target)
        return True

    @hookimpl
    def close(self, conn: LocalConnection) -> bool:
        return True


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


#: The object the ``file`` entry point names.
plugin = LocalTransport()

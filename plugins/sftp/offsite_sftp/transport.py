"""The ``sftp`` scheme's hooks (see :mod:`offsite.hookspecs`).

Every path the core gives is joined to the target folder
(:meth:`~offsite_sftp.connection.SftpConnection.remote`). Opening a session:
:mod:`offsite_sftp.connection`; puts and gets write and read through
:mod:`offsite_sftp.writes` and :mod:`offsite_sftp.reads`; errors:
:mod:`offsite_sftp.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import stat
from collections.abc import Mapping, Sequence

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from offsite import hookimpl, paths
from offsite.checks import Steps
from offsite.errors import NotFound, StorageFull, TargetError
from offsite.transport import (
    CHUNK_SIZE,
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    Transfer,
    owned_partial,
    pump,
)
from offsite_sftp import connection, errors
from offsite_sftp.connection import SftpConnection
from offsite_sftp.folders import makedirs
from offsite_sftp.reads import PipelinedReader
from offsite_sftp.writes import PipelinedWriter

#: What a put reads from its source at a time: the core reader's own chunk,
#: which it hands over without a copy (a read of 4 MiB was gathered from its
#: 1 MiB chunks, copied twice). Requests span chunks (PipelinedWriter carries
#: what is short of a whole request on to the next).
WRITE_CHUNK = CHUNK_SIZE


class SftpTransport:
    """The ``sftp`` scheme's transport (see :mod:`offsite.hookspecs`)."""

    @hookimpl
    def options(self) -> Mapping[str, str]:
        return {
            "known_hosts": "the known_hosts file host keys are checked against "
                           "(default ~/.ssh/known_hosts)",
            "private_key": "a private key file to log in with",
            "connect_timeout": "seconds to wait for the server (default 15)",
            "ciphers": "the ciphers to offer, in order of preference",
        }

    # -- connection -------------------------------------------------------------

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> SftpConnection:
        return connection.connect(endpoint, steps)

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        return errors.translate(exc)

    # -- transfer ---------------------------------------------------------------

    @hookimpl
    def put(self, conn: SftpConnection, path: str, transfer: Transfer) -> RemoteFile:
        sftp = conn.sftp
        final = conn.remote(path)
        partial_rel = paths.partial_path(path)
        partial = conn.remote(partial_rel)
        makedirs(sftp, posixpath.dirname(final))
        offset = transfer.resume_offset(partial_rel, lambda: _size(sftp, partial))
        if offset and offset < (_size(sftp, partial) or 0):
            sftp.truncate(partial, offset)  # cut what the token does not vouch for
        # (at 0, opening with "wb" below empties the file)
        transfer.save_partial(partial_rel, offset)
        with sftp.open(partial, "r+b" if offset else "wb") as out:
            writer = PipelinedWriter(sftp, out.handle, offset, conn.write_size,
                                     conn.in_flight)
            def keep(done: int) -> None:
                # The token holds only what the server confirmed.
                if transfer.checkpoint_due(done) and writer.answered > offset:
                    transfer.save_partial(partial_rel, writer.answered)

            try:
                with transfer.open(offset) as reader:
                    pump(reader, writer.write, transfer, chunk_size=WRITE_CHUNK, on_chunk=keep)
                writer.finish()
            except BaseException as exc:
                # What the server confirmed is what the next attempt resumes from.
                with contextlib.suppress(Exception):
                    transfer.save_partial(partial_rel, writer.answered)
                if isinstance(exc, OSError) and exc.errno is None and errors.out_of_space(
                        sftp, posixpath.dirname(partial)):
                    raise StorageFull(f"the server's disk is full under "
                                      f"'{posixpath.dirname(final) or '/'}'") from exc
                raise
        # finish() saw every write answered: the file is complete.
        try:
            sftp.posix_rename(partial, final)
        except OSError as exc:
            if getattr(exc, "errno", None) in (errno.ENOENT, errno.EACCES):
                raise
            # No posix-rename@openssh.com: SFTPv3 rename does not replace.
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(final)
            sftp.rename(partial, final)
        st = sftp.stat(final)
        return RemoteFile(path, st.st_size or 0, float(st.st_mtime or 0))

    @hookimpl
    def discard(self, conn: SftpConnection, path: str, resume: ResumeToken) -> bool:
        partial_rel = owned_partial(path, resume)
        if partial_rel is not None:  # never anything but our own partial
            with contextlib.suppress(FileNotFoundError):
                conn.sftp.remove(conn.remote(partial_rel))
        return True

    @hookimpl
    def get(self, conn: SftpConnection, path: str, offset: int) -> Readable:
        f = conn.sftp.open(conn.remote(path), "rb")
        try:
            size = f.stat().st_size or 0
        except BaseException:
            f.close()
            raise
        return PipelinedReader(f, offset, size, conn.read_size)

    # -- listing ----------------------------------------------------------------

    @hookimpl
    def list(self, conn: SftpConnection, folder: str) -> Sequence[RemoteFile]:
        found: list[RemoteFile] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                entries = conn.sftp.listdir_attr(conn.remote(current))
            except FileNotFoundError:
                if current == folder:
                    return []
                continue  # removed while we walked
            for entry in entries:
                rel = posixpath.join(current, entry.filename) if current else entry.filename
                mode = entry.st_mode or 0
                if stat.S_ISLNK(mode):
                    # The contract: a link to a file is that file; a link to a
                    # folder is not descended into; a dangling one is left out.
                    try:
                        entry = conn.sftp.stat(conn.remote(rel))
                    except FileNotFoundError:
                        continue
                    if not stat.S_ISREG(entry.st_mode or 0):
                        continue
                    mode = entry.st_mode or 0
                if stat.S_ISDIR(mode):
                    pending.append(rel)
                elif stat.S_ISREG(mode):
                    found.append(RemoteFile(paths.normalise(rel), entry.st_size or 0,
                                            float(entry.st_mtime or 0)))
        return found

    @hookimpl
    def delete(self, conn: SftpConnection, path: str) -> bool:
        remote = conn.remote(path)
        try:
            conn.sftp.remove(remote)  # on a symlink: the link, never what it points to
        except OSError as exc:
            # OpenSSH answers a folder with a bare "Failure": a folder is no
            # file to delete, and what is in it must stay.
            if exc.errno is None and stat.S_ISDIR(conn.sftp.lstat(remote).st_mode or 0):
                raise NotFound("a folder, not a file") from exc
            raise
        return True

    @hookimpl
    def close(self, conn: SftpConnection) -> bool:
        try:
            conn.sftp.close()
        finally:
            conn.transport.close()
        return True


def _size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    """The size of the file at ``path`` on the server (None: there is none)."""
    try:
        return sftp.stat(path).st_size or 0
    except FileNotFoundError:
        return None


__all__ = ["WRITE_CHUNK", "SftpTransport"]

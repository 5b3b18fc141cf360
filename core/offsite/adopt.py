"""Adoption: files another tool put at the target that are the destination's own.

A file at the target that the journal does not know is foreign, and the
planner leaves it alone. When it sits exactly where offsite would put a
file of the destination, has that file's size and holds the same bytes (an
image set copied there by hand with rclone, or a journal lost), uploading
it again would only cost time. :func:`adopt` reads such files through the
plugin's ``get`` and returns a :class:`~offsite.journal.Placed` record
(``adopted=True``) for each one that matches; the planner then counts it
as placed. It sits between the listing and the pure planner::

    scan_destination -> list -> adopt (reads the target) -> plan (pure) -> engine

What "matches" means, cheaply and without trusting names:

* an **image**: the target's copy opens as an image, and its header (the
  metadata: set, sequence numbers, states) and its footer (index offset,
  entry count and the SHA-256 over header and index, which holds every
  block's SHA-256) are byte for byte the local image's. Two ``get`` reads,
  whatever the image's size. The payload bytes are not read:
  ``offsite verify --read-data`` proves them, as for a file offsite placed;
* **another file** of at most :data:`SMALL` bytes: the SHA-256 of all its
  bytes is the local file's. A larger one is not read and stays foreign.

Anything else (another size, another header or footer, not an image,
unreadable) stays foreign. Adopted files are never deleted by a mirror:
offsite did not write them (docs/USAGE.md, "Files offsite finds at the
target").
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

from offsite import paths
from offsite.errors import ImageError, NotFound, PermissionDenied
from offsite.image.reader import ImageReader
from offsite.journal import Placed
from offsite.plan import LocalFile, Options
from offsite.remote import Getter, RemoteAccess, Streams
from offsite.transport import RemoteFile

#: The largest non-image file read whole to compare it; larger ones stay foreign.
SMALL = 1 << 20
#: How much of a non-image file one read asks for.
_CHUNK = 1 << 16


def candidates(local: Sequence[LocalFile], placed: Sequence[Placed],
               listing: Sequence[RemoteFile], options: Options
               ) -> list[tuple[LocalFile, RemoteFile]]:
    """Foreign files at the path of a sound local file, with its size (pure).

    A path the journal knows (placed, distrusted or not) is never a
    candidate: the planner's own rules decide about those.
    """
    known = {p.remote_path for p in placed}
    remote = {f.path: f for f in listing}
    found = []
    for f in local:
        path = paths.join(options.subfolder, f.name)
        seen = remote.get(path)
        if f.status == "ok" and path not in known and seen is not None and seen.size == f.size:
            found.append((f, seen))
    return found


def adopt(session: Getter, destination: Path, local: Sequence[LocalFile],
          placed: Sequence[Placed], listing: Sequence[RemoteFile], options: Options,
          now: float | None = None) -> list[Placed]:
    """The foreign files at the target that hold the destination's files, as placed.

    Reads the target (``get`` at offsets); writes nothing anywhere.

    :raises TargetError: the target failed other than by a file being gone
        or unreadable (a dropped connection: the caller retries).
    """
    now = time.time() if now is None else now
    adopted = []
    with Streams(session) as streams:
        for f, seen in candidates(local, placed, listing, options):
            try:
                digest = _same(streams, destination / f.name, f, seen)
            except (ImageError, NotFound, PermissionDenied):
                digest = None  # not an image, cut short, gone, unreadable: foreign
            if digest is not None:
                adopted.append(_record(f, seen, digest, now))
    return adopted


def _same(streams: Streams, mine: Path, f: LocalFile, seen: RemoteFile) -> str | None:
    """What identifies the file (as the journal records it) if the target's
    copy holds it, else None."""
    if f.meta is None:
        if f.size > SMALL:
            return None
        ours = hashlib.sha256(mine.read_bytes()).hexdigest()
        return ours if _remote_sha256(streams, seen) == ours else None
    with ImageReader(mine) as local, ImageReader(RemoteAccess(streams, seen.path,
                                                              seen.size)) as theirs:
        if (local.header, local.footer) != (theirs.header, theirs.footer):
            return None
        return "ofi:" + bytes(local.digest).hex()


def _remote_sha256(streams: Streams, seen: RemoteFile) -> str:
    digest = hashlib.sha256()
    with RemoteAccess(streams, seen.path, seen.size) as access:
        for offset in range(0, seen.size, _CHUNK):
            digest.update(access.pread(_CHUNK, offset))
    return digest.hexdigest()


def _record(f: LocalFile, seen: RemoteFile, digest: str, now: float) -> Placed:
    m = f.meta
    return Placed(
        remote_path=seen.path, size=seen.size, sha256=digest, kind=f.kind,
        set_id=m.set_id if m else None, seq_first=m.seq_first if m else None,
        seq_last=m.seq_last if m else None, state=m.state if m else None,
        parent_state=m.parent_state if m else None, sources=(f.name,),
        source_size=f.size, source_mtime=f.mtime, placed_at=now,
        remote_checksum=seen.checksum, remote_mtime=seen.mtime or None, adopted=True)


__all__ = ["SMALL", "adopt", "candidates"]

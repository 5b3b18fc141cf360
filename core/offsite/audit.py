"""``offsite verify``: is what the journal says was placed really at the target?

Every file the journal records as placed at a target is looked up in the
target's listing: missing, another size, another checksum of the kind the
target keeps, or another modification time (the planner's own rule,
:func:`offsite.plan.changed`) is a finding. With ``read_data`` every byte is
read back, as restic's ``check --read-data`` does: an image is checked
block by block against its own SHA-256s and its root digest against the one
recorded when it was placed (:func:`offsite.fetch.verify_remote_image`);
another file's SHA-256 against the recorded one. Memory stays bounded: the
bytes stream through.

The caller marks what is bad in the journal, so the next run puts it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import attrs

from offsite.errors import ImageError, NotFound
from offsite.fetch import verify_remote_image
from offsite.journal import Placed
from offsite.plan import changed
from offsite.session import Session
from offsite.transport import RemoteFile

CHUNK = 1 << 20


@attrs.frozen
class Finding:
    """One placed file, checked.

    :ivar problem: why it is not what was placed; None when it is.
    :ivar how: ``listed`` (size and stamp compared) or ``read`` (every byte).
    """

    path: str
    problem: str | None
    how: str

    @property
    def ok(self) -> bool:
        return self.problem is None


def _read_problem(session: Session, p: Placed, seen: RemoteFile) -> str | None:
    """Why the file's bytes are not the ones placed, having read them all."""
    if p.sha256 is None:
        return None  # nothing recorded to compare with: the listing said all
    try:
        if p.sha256.startswith("ofi:"):
            verify_remote_image(session, seen, digest=p.sha256)
            return None
        digest = hashlib.sha256()
        with session.get(p.remote_path) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    except NotFound:
        return "missing at the target (gone while it was checked)"
    except ImageError as exc:  # said of the file the finding names already
        return exc.message.removeprefix(f"{exc.file}: ")
    if digest.hexdigest() != p.sha256:
        return f"its SHA-256 is {digest.hexdigest()}, offsite placed {p.sha256}"
    return None


def audit(session: Session, placed: Sequence[Placed], *, read_data: bool = False,
          progress: Callable[[Finding], None] | None = None) -> list[Finding]:
    """Check every file of ``placed`` at the target ``session`` is connected to.

    :param progress: called with each finding as it is made.
    :raises TargetError: the target cannot be listed or read (a file found
        damaged is a finding, not an error).
    """
    listing = {f.path: f for f in session.list()}
    findings = []
    for p in placed:
        seen = listing.get(p.remote_path)
        how = "listed"
        if seen is None:
            problem: str | None = "missing at the target"
        elif seen.size != p.size:
            problem = f"{seen.size} bytes at the target, offsite placed {p.size}"
        else:
            problem = changed(p, seen)
            if problem is None and read_data:
                how = "read"
                problem = _read_problem(session, p, seen)
        finding = Finding(p.remote_path, problem, how)
        findings.append(finding)
        if progress is not None:
            progress(finding)
    return findings


__all__ = ["Finding", "audit"]

"""Reading images back from a target: restore a point straight from it.

The chain is worked out from the target itself, not from the journal, so a
restore works from any machine with the configuration and credentials: the
header of every image in the image's folder is read through ``get`` (a few
hundred bytes each), the chain is linked by states, and the chain's images
are streamed into a temporary folder beside the output, then restored with
every block checked. The temporary folder is removed afterwards, whatever
happens.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from pathlib import Path

from offsite import paths
from offsite.errors import CorruptImage, IncompleteImage, NotAnImage, NotFound
from offsite.image.chain import ImageFile, chain_to
from offsite.image.format import HEADER, MAGIC, MAX_METADATA, Metadata
from offsite.image.restore import restore_chain
from offsite.session import Session
from offsite.transport import Readable

CHUNK = 1 << 20


def _read_exactly(stream: Readable, n: int, what: str) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise IncompleteImage(f"ends inside its {what}", file=what)
        data += chunk
    return bytes(data)


def remote_header(session: Session, path: str) -> Metadata:
    """The metadata of a remote image, read through ``get``.

    :raises NotAnImage: the file is not an OFI image.
    """
    with session.get(path) as stream:
        head = _read_exactly(stream, HEADER.size, "header")
        magic, _major, _minor, length = HEADER.unpack(head)
        if magic != MAGIC:
            raise NotAnImage("wrong magic", file=path)
        if length > MAX_METADATA:
            raise CorruptImage(f"metadata length {length} exceeds {MAX_METADATA}", file=path)
        raw = _read_exactly(stream, length, "metadata")
    return Metadata.from_json(raw, file=path)


def remote_chain(session: Session, image: str) -> list[ImageFile]:
    """The chain from its full image to ``image``, as the target holds it.

    :raises NotFound: ``image`` is not at the target.
    :raises BrokenChain: the target's chain has a gap.
    """
    image = paths.normalise(image)
    folder = posixpath.dirname(image)
    listing = {f.path: f for f in session.list(folder)
               if posixpath.dirname(f.path) == folder and f.path.endswith(".ofi")}
    if image not in listing:
        raise NotFound(path=image, step="restore")
    images = []
    for path, remote in sorted(listing.items()):
        try:
            meta = remote_header(session, path)
        except (NotAnImage, CorruptImage, IncompleteImage):
            continue  # not part of any chain; the chain check reports a gap if needed
        images.append(ImageFile(Path(path), meta, remote.size, remote.mtime))
    wanted = next(i for i in images if i.path == Path(image))
    return chain_to(wanted, images)


def restore_from_target(session: Session, image: str, output: Path, *,
                        force: bool = False) -> list[ImageFile]:
    """Restore the volume at ``image`` from the target to ``output``."""
    chain = remote_chain(session, image)
    output = output.absolute()
    staging = Path(tempfile.mkdtemp(prefix=".offsite-restore-", dir=output.parent))
    try:
        local = []
        for item in chain:
            target = staging / item.path.name
            with session.get(str(item.path)) as stream, open(target, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            local.append(target)
        restore_chain(local, output, force=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return chain

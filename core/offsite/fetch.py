"""Reading images back from a target: restore a point, verify an image.

The chain is worked out from the target itself, not from the journal, so a
restore works from any machine with the configuration and credentials: the
header of every image in the image's folder is read through ``get`` (a few
hundred bytes each) and the chain is linked by states. The chain's images
are then read straight from the target, through
:class:`~offsite.remote.RemoteAccess`, and merged into the output with every
block checked, as a local restore does: nothing is staged on local disk, and
memory holds a round of index entries and one payload at a time, whatever
the size of the images.

:func:`verify_remote_image` reads every byte of one image at a target and
makes the checks ``offsite image verify`` makes, plus, given the digest
offsite recorded when it placed the file, that it is still that image.
"""

from __future__ import annotations

import contextlib
import posixpath
from pathlib import Path

from offsite import paths
from offsite.errors import (
    BrokenChain,
    CorruptImage,
    ImageError,
    NotFound,
    PermissionDenied,
)
from offsite.image.chain import ImageFile, chain_to
from offsite.image.format import NAME, Metadata
from offsite.image.reader import ImageReader, read_metadata
from offsite.image.restore import check_output, restore_readers
from offsite.image.verify import check_payloads
from offsite.remote import RemoteAccess, RemoteFiles, Streams
from offsite.session import Session
from offsite.transport import RemoteFile

#: The prefix of an image's digest as the journal records it (``ofi:`` + hex).
DIGEST_PREFIX = "ofi:"


def _listing(session: Session, folder: str) -> dict[str, RemoteFile]:
    return {f.path: f for f in session.list(folder) if posixpath.dirname(f.path) == folder}


def _reason(exc: ImageError) -> str:
    """An image error's message without the file name it starts with (and
    without its fix: the broken chain's is the one that applies)."""
    return exc.message.removeprefix(f"{exc.file}: ")


def _named_before(name: str, meta: Metadata) -> bool:
    """Whether ``name`` is the name of an image of ``meta``'s generation set
    with a sequence number before ``meta``'s first (its full image, its
    earlier incrementals and their consolidations)."""
    match = NAME.match(name)
    if match is None:
        return False
    seq = int(match["seq"]) if match["seq"] else 0
    return (match["label"], int(match["gen"])) == (meta.label, meta.generation) \
        and seq < meta.seq_first


def _may_belong(name: str, gap: Metadata) -> bool:
    """Whether a file named ``name`` may be an image the chain of ``gap``
    lacks: one of its set's, sequence before the gap (its name says, when it
    is an image's name; the header, not the name, is the truth)."""
    return NAME.match(name) is None or _named_before(name, gap)


def remote_chain(session: Session, image: str, *,
                 files: RemoteFiles | None = None) -> list[ImageFile]:
    """The chain from its full image to ``image``, as the target holds it.

    The headers of the images whose names place them before ``image`` in
    its generation set are read first; the other images' only when those do
    not make the chain (a file renamed: the header, not the name, is the
    truth). A folder that holds many generations then costs a few reads,
    not one per image in it.

    :param files: read the images through these and leave them open there
        (a restore reads the chain's images again through the same ones);
        by default through files of its own, closed on return.
    :raises NotFound: ``image`` is not at the target.
    :raises ImageError: ``image`` is not a sound image (not an image, cut
        short, a damaged header or footer), naming its remote path.
    :raises BrokenChain: the target's chain has a gap; images in the folder
        that might have filled it but cannot be read are named.
    """
    image = paths.normalise(image)
    folder = posixpath.dirname(image)
    listing = {p: f for p, f in _listing(session, folder).items() if p.endswith(".ofi")}
    if image not in listing:
        raise NotFound(path=image, step="restore")
    with contextlib.ExitStack() as stack:
        if files is None:
            files = stack.enter_context(RemoteFiles(Streams(session)))
        found = listing[image]
        # The image asked for is opened whole (header and footer): if it is
        # not an image, the operator hears that, not that its chain is broken.
        # (Not closed: ``files`` closes it, after a restore has read it again.)
        reader = ImageReader(files.open(image, found.size))
        wanted = ImageFile(Path(image), reader.meta, found.size, found.mtime)
        images = [wanted]
        damaged: list[tuple[str, str]] = []
        others = sorted((p, f) for p, f in listing.items() if p != image)
        before = {p for p, _f in others if _named_before(posixpath.basename(p), wanted.meta)}
        likely = [(p, f) for p, f in others if p in before]
        rest = [(p, f) for p, f in others if p not in before]
        for batch in (likely, rest):
            for path, remote in batch:
                try:
                    meta = read_metadata(files.open(path, remote.size))
                except ImageError as exc:
                    damaged.append((path, _reason(exc)))
                    continue
                except (NotFound, PermissionDenied) as exc:  # gone since the listing, or unreadable
                    damaged.append((path, f"cannot be read: {exc.message}"))
                    continue
                images.append(ImageFile(Path(path), meta, remote.size, remote.mtime))
            try:
                return chain_to(wanted, images)
            except BrokenChain as exc:
                broken = exc
    gap = next(i.meta for i in images if str(i.path) == broken.file)
    named = [f"{posixpath.basename(p)} at the target is damaged: {why}"
             for p, why in damaged if _may_belong(posixpath.basename(p), gap)]
    if not named:
        raise broken
    raise BrokenChain("; ".join([broken.detail, *named]), file=broken.file) from None


def restore_from_target(session: Session, image: str, output: Path, *,
                        force: bool = False) -> list[ImageFile]:
    """Restore the volume at ``image`` from the target to ``output``.

    The chain's images are read straight from the target and merged into
    ``output`` under a temporary name, renamed into place when complete.

    :raises NotFound: ``image`` is not at the target.
    :raises UsageError: ``output`` exists and not ``force``.
    :raises ImageError: a break in the chain or damaged data, naming the
        remote file; nothing is left under ``output`` then (unless it is a
        device), and no temporary file.
    :raises TargetError: reading from the target failed (the same).
    """
    # A restore merges the chain's images in rounds, switching between them:
    # where the connection serves several streams, each image keeps its own
    # (on moto every new ranged GET of a 1 GiB object cost seconds), and a
    # header's stream is where the payloads read on. At most 8: botocore's
    # pool keeps 10 connections.
    limit = 8 if session.transport.info.parallel_gets else 1
    # The chain is found and restored through the same files: the headers
    # and the asked-for image's footer are not read twice.
    with RemoteFiles(Streams(session, limit=limit)) as files:
        chain = remote_chain(session, image, files=files)
        output = output.absolute()
        check_output(output, force)
        readers: list[ImageReader] = []
        try:
            for item in chain:
                readers.append(ImageReader(files.open(str(item.path), item.size)))
            restore_readers(readers, output, force=force)
        finally:
            for reader in readers:
                reader.close()
    return chain


def verify_remote_image(session: Session, image: str | RemoteFile, *,
                        digest: str | None = None) -> ImageFile:
    """Read every byte of an image at the target and check it.

    The checks ``offsite image verify`` makes (every index entry, the
    footer's SHA-256, every payload's SHA-256), and, given ``digest``, that
    the image's root digest is that one.

    :param image: the image's remote path, or its entry in the target's
        listing (which saves listing its folder to learn its size).
    :param digest: what offsite recorded for the file when it placed it
        (``"ofi:"`` and the footer digest in hex, as the journal holds it and
        ``offsite image info`` shows it).
    :returns: the image, with its metadata and size.
    :raises NotFound: there is no such file at the target.
    :raises ImageError: the first problem found, naming the remote path; a
        :class:`~offsite.errors.CorruptImage` if the file is a sound image
        but not the one recorded.
    :raises ValueError: ``digest`` is not an image's digest.
    """
    if digest is not None and not digest.startswith(DIGEST_PREFIX):
        raise ValueError(f"{digest!r} is not an image digest ({DIGEST_PREFIX}…)")
    if isinstance(image, str):
        path = paths.normalise(image)
        found = _listing(session, posixpath.dirname(path)).get(path)
        if found is None:
            raise NotFound(path=path, step="verify")
        image = found
    with ImageReader(RemoteAccess(session, image.path, image.size)) as reader:
        # What check_image does, with the recorded digest compared as soon as
        # the footer's is proven: a file that is not the image placed is
        # named as such, before its payloads are read.
        reader.check_index()
        actual = DIGEST_PREFIX + reader.digest.hex()
        if digest is not None and actual != digest:
            raise CorruptImage(f"the file at the target is not the image that was placed: "
                               f"its digest is {actual}, offsite recorded {digest}",
                               file=image.path)
        check_payloads(reader)
        return ImageFile(Path(image.path), reader.meta, image.size, image.mtime)

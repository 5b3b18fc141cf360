"""Finding images in a folder and linking them into chains by state.

Continuity is by states, not by names: an image applies to its
``parent_state`` and leaves ``state``. Incremental 3 and "1..3 consolidated"
leave the same state, so incremental 4 chains onto either. A chain runs from
a full image (no parent) through images whose ``parent_state`` is the
previous image's ``state``; anything else is a break.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from offsite.errors import BrokenChain, ImageError, IncompleteImage
from offsite.image.format import Metadata
from offsite.image.reader import ImageReader

SUFFIX = ".ofi"


@attrs.frozen
class ImageFile:
    """A complete image found on disk: where, what its header says, how big."""

    path: Path
    meta: Metadata
    size: int
    mtime: float


@attrs.frozen
class Scan:
    """What a folder holds: complete images, images still being written,
    files that claim to be images but are not, and other files."""

    images: tuple[ImageFile, ...] = ()
    incomplete: tuple[Path, ...] = ()
    bad: tuple[tuple[Path, ImageError], ...] = ()
    other: tuple[Path, ...] = ()


def read_image_file(path: Path) -> ImageFile:
    """Open ``path`` just enough to trust its header and footer.

    :raises ImageError: not an image, incomplete, or corrupt header/footer.
    """
    with ImageReader(path) as reader:
        st = os.fstat(reader.fileno())
        return ImageFile(path, reader.meta, st.st_size, st.st_mtime)


def scan(folder: Path) -> Scan:
    """Look at every file directly in ``folder`` (hidden files are skipped:
    they are temporary files and offsite's own hash maps)."""
    images: list[ImageFile] = []
    incomplete: list[Path] = []
    bad: list[tuple[Path, ImageError]] = []
    other: list[Path] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if not entry.is_file():
                continue
            if not entry.name.endswith(SUFFIX):
                other.append(path)
                continue
            images.append(read_image_file(path))
        except IncompleteImage:
            incomplete.append(path)
        except ImageError as exc:
            bad.append((path, exc))
        except OSError as exc:  # unreadable: report this one file, go on with the rest
            bad.append((path, ImageError(f"cannot read it: {exc.strerror or exc}", file=path)))
    return Scan(tuple(images), tuple(incomplete), tuple(bad), tuple(other))


def chain_to(target: ImageFile, candidates: Iterable[ImageFile]) -> list[ImageFile]:
    """The chain from a full image to ``target``, oldest first.

    Where two images leave the same state (an incremental and a
    consolidation ending in it), the one covering more sequence numbers is
    taken: fewer images to read.

    :raises BrokenChain: some image's parent state is left by no candidate.
    """
    by_state: dict[str, ImageFile] = {}
    for image in candidates:
        if image.meta.set_id != target.meta.set_id:
            continue
        known = by_state.get(image.meta.state)
        if known is None or image.meta.seq_first < known.meta.seq_first:
            by_state[image.meta.state] = image
    chain = [target]
    seen = {target.meta.state}
    while chain[-1].meta.parent_state is not None:
        current = chain[-1]
        parent = by_state.get(current.meta.parent_state or "")
        if parent is None or parent.meta.state in seen:
            raise BrokenChain(
                f"no image of set {current.meta.set_id} leaves the state it applies to "
                f"({current.meta.parent_state}); the chain has a gap before sequence "
                f"{current.meta.seq_first}",
                file=current.path,
            )
        seen.add(parent.meta.state)
        chain.append(parent)
    chain.reverse()
    return chain


def check_segment(images: Sequence[ImageFile | Metadata], files: Sequence[Path]) -> None:
    """Check that images form one unbroken run (each applies to the previous).

    :raises BrokenChain: naming the first image that does not follow.
    """
    metas = [i.meta if isinstance(i, ImageFile) else i for i in images]
    first = metas[0]
    for prev, meta, file in zip(metas, metas[1:], files[1:], strict=False):
        if meta.set_id != first.set_id:
            raise BrokenChain(f"belongs to set {meta.set_id}, not {first.set_id}", file=file)
        if meta.parent_state != prev.state:
            raise BrokenChain(
                f"applies to state {meta.parent_state}, but the image before it leaves "
                f"{prev.state} (sequence {prev.seq_last} -> {meta.seq_first})",
                file=file,
            )
        if (meta.block_size, meta.volume_size) != (first.block_size, first.volume_size):
            raise BrokenChain("block size or volume size differs from the rest of the chain",
                              file=file)

"""``offsite image verify``: every byte of every image, and every chain.

For an image: header and footer, every index entry (order, bounds, tiling),
every payload's SHA-256, and the footer's SHA-256 over header and index.
For a folder: each image as above, images still being written are reported
as incomplete, and every image's chain must reach a full image without a
gap. Problems are collected, not raised, so one run reports them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from offsite.errors import ImageError
from offsite.image.chain import ImageFile, chain_to, read_image_file, scan
from offsite.image.reader import ImageReader


@attrs.frozen
class Report:
    """What verify found: the sound images and every problem."""

    ok: tuple[Path, ...] = ()
    problems: tuple[ImageError, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.problems


def check_image(reader: ImageReader) -> None:
    """Read and check every byte of an open image, wherever it is read from
    (:func:`verify_image` here, :func:`offsite.fetch.verify_remote_image` at
    a target).

    The cheapest and most basic checks first, so the first problem raised is
    the root cause: the index's structure and then the footer hash (one read
    of the index), then every payload's SHA-256 (:func:`check_payloads`).

    :raises ImageError: the first problem found.
    """
    reader.check_index()
    check_payloads(reader)


def check_payloads(reader: ImageReader) -> None:
    """Check every payload's SHA-256 against the index, in file order.

    :raises CorruptImage: the first payload that does not match.
    """
    for entry in reader.entries():
        if not entry.zero:
            reader.stored(entry)


def verify_image(path: Path) -> ImageFile:
    """Read and check every byte of one image.

    :raises ImageError: the first problem found.
    """
    with ImageReader(path) as reader:
        check_image(reader)
    return read_image_file(path)


def verify(paths: Iterable[str | os.PathLike[str]]) -> Report:
    """Verify image files and folders of images (chains included for folders)."""
    ok: list[Path] = []
    problems: list[ImageError] = []

    def check(path: Path) -> ImageFile | None:
        try:
            image = verify_image(path)
        except ImageError as exc:
            problems.append(exc)
            return None
        ok.append(path)
        return image

    for given in map(Path, paths):
        if not given.is_dir():
            check(given)
            continue
        found = scan(given)
        problems.extend(ImageError("incomplete image (still being written, or cut short)",
                                   file=p) for p in found.incomplete)
        problems.extend(exc for _p, exc in found.bad)
        sound = [image for image in map(check, (i.path for i in found.images)) if image]
        for image in sound:
            try:
                chain_to(image, sound)
            except ImageError as exc:
                problems.append(exc)
    return Report(tuple(ok), tuple(problems))

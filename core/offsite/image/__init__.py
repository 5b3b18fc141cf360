"""The OFI image format: create, read, verify, consolidate, restore.

docs/FORMAT.md specifies the bytes; :mod:`offsite.image.format` implements
them. The pieces, a small module each:

* :mod:`~offsite.image.reader` / :mod:`~offsite.image.writer` — one image;
* :mod:`~offsite.image.chain` — images in a folder, linked by states;
* :mod:`~offsite.image.create` — a full or the next incremental of a volume;
* :mod:`~offsite.image.consolidate` — the streaming k-way merge, also a
  :class:`~offsite.transport.Source` for uploads;
* :mod:`~offsite.image.restore` and :mod:`~offsite.image.verify`.
"""

from offsite.image.chain import ImageFile, Scan, chain_to, scan
from offsite.image.consolidate import Consolidation
from offsite.image.create import create
from offsite.image.format import Metadata, image_name
from offsite.image.reader import ImageReader
from offsite.image.restore import restore
from offsite.image.verify import verify

__all__ = [
    "Consolidation",
    "ImageFile",
    "ImageReader",
    "Metadata",
    "Scan",
    "chain_to",
    "create",
    "image_name",
    "restore",
    "scan",
    "verify",
]

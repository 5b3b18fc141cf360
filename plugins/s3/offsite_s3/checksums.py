"""S3's additional checksums: the ``checksum`` option, and a body's checksum.

Every upload (a PutObject, each part of a multipart upload) carries S3's
checksum of its bytes, which the store checks on arrival and keeps with the
object: ``SHA256`` by default, or ``CRC32``/``CRC32C``/``SHA1``/``CRC64NVME``;
``none`` for an S3-compatible store that rejects them. A body held whole
gets its checksum from :func:`body_checksum` (one pass over the bytes, sent
in a header); a part streamed from the source leaves it to botocore, which
sends it in a trailer.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Mapping
from typing import Any

from offsite.errors import Fatal

#: S3's additional checksum for every part and object (the ``checksum`` option).
DEFAULT_CHECKSUM = "SHA256"
CHECKSUMS = ("SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME")
#: Checksums that nobody can match with other bytes: they cover a body as its
#: signature would.
SIGNING_CHECKSUMS = ("SHA256",)


def checksum_option(options: Mapping[str, Any]) -> str | None:
    """The ``checksum`` option: S3's checksum algorithm for uploads, or None.

    :raises Fatal: not an algorithm S3 knows.
    """
    value = str(options.get("checksum", DEFAULT_CHECKSUM)).upper()
    if value == "NONE":
        return None
    if value not in CHECKSUMS:
        raise Fatal(f"unknown checksum {value!r}",
                    fix=f"set the target option checksum to one of {', '.join(CHECKSUMS)} "
                    "or none")
    return value


def body_checksum(algorithm: str | None, data: bytes | bytearray) -> dict[str, str]:
    """S3's checksum of a body held whole, as the parameter that sends it in
    a header; ``{}`` for an algorithm left to botocore (CRC32C, CRC64NVME).

    Given, it is not computed again, and over HTTPS botocore does not move it
    into a trailer after the body, for which it copies the body and then
    re-slices what is left of each 1 MiB chunk for every 16 KiB sent."""
    if algorithm == "SHA256":
        digest = hashlib.sha256(data).digest()
    elif algorithm == "SHA1":
        digest = hashlib.sha1(data).digest()  # noqa: S324 - S3's algorithm, not ours to pick
    elif algorithm == "CRC32":
        digest = zlib.crc32(data).to_bytes(4, "big")
    else:
        return {}
    return {f"Checksum{algorithm}": base64.b64encode(digest).decode("ascii")}


__all__ = ["CHECKSUMS", "DEFAULT_CHECKSUM", "SIGNING_CHECKSUMS", "body_checksum",
           "checksum_option"]

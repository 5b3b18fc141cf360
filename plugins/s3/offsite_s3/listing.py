"""Listing a folder: every object under its prefix, with size, time and ETag.

S3 has no folders: a folder is a key prefix, and ``ListObjectsV2`` without a
delimiter returns every key under it, however deep, a page of 1,000 at a
time. Keys ending in ``/`` are the "folder" markers some tools create, not
files. The ETag goes into :attr:`~offsite.transport.RemoteFile.checksum`
(``etag:…``): the journal keeps the one ``put`` reported, and a listing
with another means the object was replaced behind offsite's back.
"""

from __future__ import annotations

from offsite import paths
from offsite.transport import RemoteFile
from offsite_s3.connection import S3Connection


def etag(value: object) -> str:
    """An ETag as a RemoteFile checksum (S3 sends it in double quotes)."""
    return f"etag:{str(value).strip(chr(34))}"


def list_folder(conn: S3Connection, folder: str) -> list[RemoteFile]:
    """Every object under ``folder`` (relative to the target's prefix)."""
    base = conn.key(folder)
    prefix = f"{base}/" if base else ""
    found = []
    for page in conn.client.get_paginator("list_objects_v2").paginate(
            Bucket=conn.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = str(item["Key"])
            if key.endswith("/"):
                continue  # a "folder" marker some tools create
            rel = key[len(conn.prefix) + 1:] if conn.prefix else key
            found.append(RemoteFile(paths.normalise(rel), int(item["Size"]),
                                    item["LastModified"].timestamp(), etag(item["ETag"])))
    return found


__all__ = ["etag", "list_folder"]

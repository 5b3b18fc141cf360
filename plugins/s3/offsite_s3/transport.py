"""The ``s3`` scheme's hooks (see :mod:`offsite.hookspecs`).

Every path the core gives becomes an object key under the target's prefix
(:meth:`~offsite_s3.connection.S3Connection.key`). Opening a connection:
:mod:`offsite_s3.connection`; large puts: :mod:`offsite_s3.multipart`;
listings: :mod:`offsite_s3.listing`; errors: :mod:`offsite_s3.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import botocore.exceptions

from offsite import hookimpl
from offsite.checks import Steps
from offsite.errors import TargetError
from offsite.transport import Endpoint, Readable, RemoteFile, ResumeToken, Transfer
from offsite_s3 import connection, errors, multipart
from offsite_s3.checksums import CHECKSUMS, DEFAULT_CHECKSUM, body_checksum
from offsite_s3.connection import DEFAULT_REGION, S3Connection
from offsite_s3.listing import etag, list_folder


class S3Transport:
    """The ``s3`` scheme's transport (see :mod:`offsite.hookspecs`)."""

    @hookimpl
    def options(self) -> Mapping[str, str]:
        return {
            "region": f"the bucket's region (default {DEFAULT_REGION}; a wrong one is "
                      "detected and corrected)",
            "endpoint_url": "the S3 API of an S3-compatible store (MinIO, Ceph, Wasabi …)",
            "ca_file": "the CA that signed an HTTPS endpoint's certificate",
            "profile": "the AWS profile for credentials when none are stored",
            "storage_class": "S3's storage class for uploads (STANDARD_IA, GLACIER_IR …)",
            "sse": "server-side encryption: AES256 or aws:kms",
            "sse_kms_key_id": "the KMS key for sse = \"aws:kms\" (default: S3's own key)",
            "checksum": f"S3's checksum of every upload: {', '.join(CHECKSUMS)} or none "
                        f"(default {DEFAULT_CHECKSUM})",
            "connect_timeout": "seconds to wait for the endpoint (default 15)",
        }

    @hookimpl
    def capabilities(self) -> Mapping[str, bool]:
        # Every get is a request of its own: a restore keeps one per image.
        return {"parallel_gets": True}

    # -- connection -------------------------------------------------------------

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> S3Connection:
        return connection.connect(endpoint, steps)

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        return errors.translate(exc)

    # -- transfer ---------------------------------------------------------------

    @hookimpl
    def put(self, conn: S3Connection, path: str, transfer: Transfer) -> RemoteFile:
        key = conn.new_key(path)
        if transfer.size <= multipart.SINGLE_PUT_MAX:
            with transfer.open(0) as reader:
                data = multipart.read_exactly(reader, transfer.size)
                transfer.progress(0)
                conn.client.put_object(Bucket=conn.bucket, Key=key, Body=data,
                                       **_object_args(conn), **body_checksum(conn.checksum, data))
                transfer.progress(len(data))
        else:
            multipart.upload(conn, key, transfer, _object_args(conn))
        return _head(conn, path)

    @hookimpl
    def discard(self, conn: S3Connection, path: str, resume: ResumeToken) -> bool:
        key, upload_id = conn.key(path), resume.get("upload_id")
        if resume.get("key") == key and upload_id:  # only the upload our put began
            try:
                conn.client.abort_multipart_upload(Bucket=conn.bucket, Key=key,
                                                   UploadId=str(upload_id))
            except botocore.exceptions.ClientError as exc:
                if errors.error_code(exc)[0] not in ("NoSuchUpload", "404"):
                    raise
        return True

    @hookimpl
    def get(self, conn: S3Connection, path: str, offset: int) -> Readable:
        head = conn.client.head_object(Bucket=conn.bucket, Key=conn.key(path))
        if offset >= int(head["ContentLength"]):
            return _Empty()
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        body = conn.client.get_object(Bucket=conn.bucket, Key=conn.key(path), **extra)["Body"]
        return _Body(body)

    # -- listing ----------------------------------------------------------------

    @hookimpl
    def list(self, conn: S3Connection, folder: str) -> Sequence[RemoteFile]:
        return list_folder(conn, folder)

    @hookimpl
    def delete(self, conn: S3Connection, path: str) -> bool:
        # S3 deletes a missing key without complaint; the contract says NotFound.
        conn.client.head_object(Bucket=conn.bucket, Key=conn.key(path))
        conn.client.delete_object(Bucket=conn.bucket, Key=conn.key(path))
        return True

    @hookimpl
    def close(self, conn: S3Connection) -> bool:
        conn.client.close()
        return True


def _object_args(conn: S3Connection) -> dict[str, str]:
    """The new object's parameters from the target's options: S3's checksum
    algorithm, storage class, server-side encryption and its KMS key."""
    extra = {}
    if conn.checksum:
        extra["ChecksumAlgorithm"] = conn.checksum
    if conn.endpoint.options.get("storage_class"):
        extra["StorageClass"] = str(conn.endpoint.options["storage_class"])
    if conn.endpoint.options.get("sse"):
        extra["ServerSideEncryption"] = str(conn.endpoint.options["sse"])
    if conn.endpoint.options.get("sse_kms_key_id"):
        extra["SSEKMSKeyId"] = str(conn.endpoint.options["sse_kms_key_id"])
    return extra


def _head(conn: S3Connection, path: str) -> RemoteFile:
    """The object at ``path`` as ``put`` reports it."""
    # The ETag, not the object's S3 checksum: listings show only the ETag,
    # and the core compares what put reported with what list shows to
    # notice an object replaced behind its back. (S3 has checked the
    # checksum on arrival already; of a multipart object it is a checksum
    # of the parts' checksums, nothing anyone could compare anyway.)
    head = conn.client.head_object(Bucket=conn.bucket, Key=conn.key(path))
    return RemoteFile(path, int(head["ContentLength"]), head["LastModified"].timestamp(),
                      etag(head["ETag"]))


class _Body:
    """A GET's body that says reading on beats a new GET for gaps up to
    :attr:`skip_horizon`.

    A reader that jumps ahead (a restore passing over superseded blocks)
    would otherwise open a new ranged GET at every jump past 1 MiB: a
    request and its round trip each on S3, and on moto a read of the whole
    object (a 1 MiB range of a 256 MiB object took 0.1-0.8 s). Reading on
    costs at most the bytes skipped, which a restore bounds by the
    incrementals' size.
    """

    #: Chosen, not measured against a real S3: 16 MiB at 100 MiB/s is 0.16 s,
    #: a few round trips to a distant region; on moto a new GET of a large
    #: object costs far more.
    skip_horizon = 16 << 20

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, n: int = -1, /) -> bytes:
        data: bytes = self._body.read(n if n is not None and n >= 0 else None)
        return data

    def close(self) -> None:
        self._body.close()


class _Empty:
    """What ``get`` returns at or past the end of an object: S3 refuses a
    range that starts there (416), and there is nothing to read anyway."""

    def read(self, n: int = -1, /) -> bytes:
        return b""

    def close(self) -> None:
        pass


__all__ = ["S3Transport"]

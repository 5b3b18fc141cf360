"""offsite-s3: Amazon S3 and S3-compatible stores, ``s3://bucket/folder``.

No AWS CLI is needed. Credentials: ``access_key_id`` and
``secret_access_key`` from the credential store, or, when none are stored,
the standard AWS chain (environment, profile, instance role). Options:
``profile`` (a named profile of ~/.aws/config and ~/.aws/credentials for the
chain, instead of AWS_PROFILE or ``default``),
``region`` (default ``us-east-1``; a wrong one is detected and corrected,
with a hint), ``endpoint_url`` (an S3-compatible store: MinIO, Ceph, Wasabi
…), ``ca_file`` (the CA that signed an HTTPS endpoint's certificate, e.g.
a private MinIO's; default: AWS_CA_BUNDLE or botocore's bundle),
``storage_class``, ``sse`` (``AES256`` or ``aws:kms``, with ``sse_kms_key_id``
for a key of one's own), ``connect_timeout``,
``checksum`` (``SHA256``, the default, or ``CRC32``/``CRC32C``/``SHA1``: S3's
own checksum of every part, checked by the server on arrival and returned
with the object; ``none`` for an S3-compatible store that rejects them).

Small files go up as one PutObject; larger ones as a multipart upload whose
parts are streamed from the source, sized so that 10,000 parts are never
exceeded (a few at once while they are small, one at a time straight from
the source over HTTPS when they are large: see
:data:`~offsite_s3.multipart.PART_MEMORY`). The upload id is the resume
token: after a crash, ``list_parts`` says which parts arrived and only the
rest are sent. The object appears only at CompleteMultipartUpload, so puts
are atomic by nature; stale multipart uploads for the same key are aborted
before a fresh one starts.

Modules: :mod:`~offsite_s3.transport` (the hooks), :mod:`~offsite_s3.connection`
(the boto3 client, opening a connection step by step),
:mod:`~offsite_s3.multipart` (part sizes, parts in flight, resume),
:mod:`~offsite_s3.checksums` (the ``checksum`` option, a body's checksum),
:mod:`~offsite_s3.listing` (objects under a prefix), :mod:`~offsite_s3.errors`
(botocore's errors to the core's), :mod:`~offsite_s3.testserver` (moto's S3
server for tests and benchmarks).
"""

from __future__ import annotations

from offsite_s3.connection import S3Connection
from offsite_s3.multipart import part_size, parts_at_once
from offsite_s3.transport import S3Transport

#: The object the ``s3`` entry point names.
plugin = S3Transport()

__all__ = ["S3Connection", "S3Transport", "part_size", "parts_at_once", "plugin"]

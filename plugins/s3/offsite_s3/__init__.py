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
the source over HTTPS when they are large: see PART_MEMORY). The upload id
is the resume token: after a crash, ``list_parts`` says which parts arrived
and only the rest are sent. The object appears only
at CompleteMultipartUpload, so puts are atomic by nature; stale multipart
uploads for the same key are aborted before a fresh one starts.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import logging
import math
import os
import urllib.parse
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import boto3
import botocore.exceptions
import botocore.httpsession
import botocore.session
from botocore.config import Config

from offsite import hookimpl, paths
from offsite.checks import Steps, open_tcp, start_tls
from offsite.errors import (
    AuthError,
    Fatal,
    NotFound,
    PermissionDenied,
    SourceError,
    StorageFull,
    TargetError,
    TLSFailed,
    Transient,
)
from offsite.transport import (
    Endpoint,
    Readable,
    RemoteFile,
    ResumeToken,
    SourceReader,
    Transfer,
)

log = logging.getLogger(__name__)

# botocore's DEBUG log prints every request's headers, the Authorization
# header (with the access key id) among them: no secret may reach a log, so
# its loggers never go below INFO, whatever -vv asks of offsite's own.
for _name in ("botocore", "boto3", "s3transfer", "urllib3"):
    _logger = logging.getLogger(_name)
    _logger.setLevel(max(_logger.level, logging.INFO))

DEFAULT_REGION = "us-east-1"
#: Files up to this size go up in one request (held in memory: keep it small).
SINGLE_PUT_MAX = 8 << 20
#: S3's limits: parts of 5 MiB (but the last) to 5 GiB, at most 10,000 parts,
#: so an object of at most 48.8 TiB.
MIN_PART = 5 << 20
MAX_PART = 5 << 30
MAX_PARTS = 10_000
#: Large uploads use bigger parts (fewer requests); small ones keep 5 MiB so
#: a resume loses little.
LARGE_PART = 8 << 20
LARGE_UPLOAD = 64 << 20
#: Parts uploaded at once (at most): every part is held in memory while it
#: goes, so they are also bounded by PART_MEMORY.
PARALLEL_PARTS = 4
#: The bytes of parts held at once, the one being read included. Parts grow
#: with the file (size / 10,000 past 80 GiB): a 1 TiB image has 105 MiB
#: parts, and four of them in flight would hold 420 MiB. Parts larger than
#: PART_MEMORY / PARALLEL_PARTS are therefore not held at all where that
#: can be done (HTTPS with a checksum: see _PartStream): each streams from
#: the source as it goes, one at a time. Elsewhere fewer go at once, down to
#: one while the next is read (which still keeps a link busy: reading a part
#: takes far less time than sending it).
PART_MEMORY = 64 << 20
#: S3's additional checksum for every part and object (the ``checksum`` option).
DEFAULT_CHECKSUM = "SHA256"
CHECKSUMS = ("SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME")
#: Checksums that nobody can match with other bytes: they cover a body as its
#: signature would.
SIGNING_CHECKSUMS = ("SHA256",)
AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
              "AuthorizationHeaderMalformed", "InvalidClientTokenId"}
#: A store out of space or over quota: MinIO's full disk (HTTP 507, which
#: the >= 500 rule would otherwise retry in vain), Ceph's quota (HTTP 403).
FULL_CODES = {"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage", "507"}
TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                   "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable", "503", "500"}


def part_size(size: int) -> int:
    """The part size for an upload of ``size`` bytes: at least 5 MiB, whole
    MiB, and never more than 10,000 parts."""
    need = math.ceil(size / MAX_PARTS)
    floor = LARGE_PART if size >= LARGE_UPLOAD else MIN_PART
    return max(floor, math.ceil(need / (1 << 20)) * (1 << 20))


def parts_at_once(step: int) -> int:
    """How many parts of ``step`` bytes a put holds at once (in flight, and
    the one being read): PARALLEL_PARTS, fewer if that would take more than
    PART_MEMORY, but at least 2."""
    return max(2, min(PARALLEL_PARTS, PART_MEMORY // step))


@attrs.frozen
class S3Connection:
    """An S3 client bound to one bucket and folder (prefix)."""

    endpoint: Endpoint = attrs.field(repr=lambda e: e.url)
    client: Any = attrs.field(repr=False)
    bucket: str
    prefix: str
    region: str

    @property
    def checksum(self) -> str | None:
        """The S3 checksum algorithm for uploads, or None (the ``checksum`` option)."""
        return _checksum(self.endpoint.options)

    @property
    def trailing_checksums(self) -> bool:
        """Whether botocore sends the checksum in a trailer, after the body
        (HTTPS with a checksum; the body goes unsigned), and so reads a body
        once, as a stream: a part can then go straight from the source. Over
        plain HTTP the checksum header (or, without one, the signature) needs
        the body hashed before it is sent."""
        return bool(self.checksum) and str(self.client.meta.endpoint_url).startswith("https:")

    def key(self, path: str) -> str:
        """The object key of ``path`` (``""``: the folder itself)."""
        if not self.prefix or not path:
            return self.prefix or path
        return f"{self.prefix}/{path}"


def _checksum(options: Mapping[str, Any]) -> str | None:
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


def _error_code(exc: botocore.exceptions.ClientError) -> tuple[str, int, str]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", status)), int(status or 0), str(error.get("Message", ""))


def _redirect_region(exc: botocore.exceptions.ClientError) -> str | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


def _etag(value: object) -> str:
    """An ETag as a RemoteFile checksum (S3 sends it in double quotes)."""
    return f"etag:{str(value).strip(chr(34))}"


def _read_exactly(reader: SourceReader, n: int) -> bytearray:
    """``n`` bytes from the source, read straight into one buffer (no copies)."""
    buffer = bytearray(n)
    view = memoryview(buffer)
    filled = 0
    while filled < n:
        got = reader.readinto(view[filled:])
        if not got:
            break
        filled += got
    del view  # a bytearray with a live view cannot be resized
    if filled < n:
        del buffer[filled:]
    return buffer


def _body_checksum(algorithm: str | None, data: bytes | bytearray) -> dict[str, str]:
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


def _part_entry(answer: Any, field: str) -> dict[str, Any]:
    """A part as CompleteMultipartUpload lists it: number, ETag, its checksum."""
    entry = {"PartNumber": int(answer["PartNumber"]), "ETag": str(answer["ETag"])}
    if field and answer.get(field):
        entry[field] = str(answer[field])
    return entry


class _PartStream:
    """One part of a multipart upload as a request body that reads straight
    from the upload's source stream: nothing of it is held but what botocore
    and the source's read-ahead buffer. It can be read once only, so a retry
    by botocore (which rewinds the body) fails; the put fails Transient then,
    and the next attempt resumes after the parts that arrived."""

    def __init__(self, reader: SourceReader, length: int) -> None:
        self._reader, self._left, self._length = reader, length, length
        #: What the source raised, if it did: botocore sees only a failed
        #: request (and retries it), so the put re-raises this instead.
        self.error: SourceError | None = None

    def __len__(self) -> int:  # botocore's Content-Length (S3's decoded length)
        return self._length

    def read(self, size: int | None = -1, /) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        try:
            data = self._reader.read(want) if want else b""
        except SourceError as exc:
            self.error = exc
            raise
        self._left -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != 0 or whence != 0 or self._left != self._length:
            raise OSError("a part read from the source cannot be sent again")
        return 0

    def tell(self) -> int:
        return self._length - self._left


class _Empty:
    def read(self, n: int = -1, /) -> bytes:
        return b""

    def close(self) -> None:
        pass


def _timeout(options: Mapping[str, Any]) -> float:
    """The ``connect_timeout`` option, in seconds.

    :raises Fatal: not a positive number.
    """
    value = options.get("connect_timeout", 15)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise Fatal(f"connect_timeout must be a positive number of seconds, not {value!r}",
                    fix="set the target option connect_timeout to e.g. 15")
    return seconds


def _ca_file(options: Mapping[str, Any]) -> str | None:
    """The ``ca_file`` option, ``~`` expanded (None: botocore's default trust)."""
    value = options.get("ca_file")
    return os.path.expanduser(str(value)) if value else None


def _trusted(options: Mapping[str, Any], core: botocore.session.Session) -> str:
    """The CA bundle boto3 will verify the endpoint against, so the ``tls``
    step trusts exactly what the transfers will: the ``ca_file`` option, else
    AWS_CA_BUNDLE (or the profile's ``ca_bundle``), else botocore's own bundle."""
    try:
        configured = core.get_config_variable("ca_bundle")
    except botocore.exceptions.ProfileNotFound:
        configured = None  # the auth step reports the missing profile
    return _ca_file(options) or configured or botocore.httpsession.where()


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

    @staticmethod
    def _client(endpoint: Endpoint, region: str, core: botocore.session.Session) -> Any:
        options = endpoint.options
        creds = endpoint.credentials
        keys = {}
        if creds.get("access_key_id") or creds.get("secret_access_key"):
            keys = {"aws_access_key_id": creds.get("access_key_id"),
                    "aws_secret_access_key": creds.get("secret_access_key")}
        # None stored: the AWS credential chain (of ``core``'s profile).
        session = boto3.session.Session(botocore_session=core, **keys)
        timeout = _timeout(options)
        config = Config(
            region_name=region, connect_timeout=timeout, read_timeout=max(timeout, 60),
            retries={"max_attempts": 2, "mode": "standard"},  # offsite retries too
            s3={"addressing_style": "path" if options.get("endpoint_url") else "auto",
                # Every upload carries S3's checksum of its body in a signed
                # header, which the store checks: with a cryptographic one,
                # hashing the body once more for the signature (what botocore
                # does over plain HTTP; over HTTPS it already skips it) adds
                # nothing but 18% of a put's client CPU. A CRC would let a
                # body be altered on a plain-HTTP path: then the body is signed.
                # (CompleteMultipartUpload's part list goes unsigned too: S3
                # matches each part against its ETag and checksum, and the
                # core refuses an object of another size than the source's.)
                "payload_signing_enabled": _checksum(options) not in SIGNING_CHECKSUMS},
            # Checksums only where asked (uploads ask for the ``checksum``
            # option's): S3-compatible stores may not know the newer ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return session.client("s3", endpoint_url=options.get("endpoint_url"), config=config,
                              verify=_ca_file(options))

    @hookimpl
    def connect(self, endpoint: Endpoint, steps: Steps) -> S3Connection:
        bucket = endpoint.host
        if not bucket:
            raise Fatal("an S3 URL needs a bucket", fix="write it as s3://bucket/folder")
        prefix = paths.normalise(endpoint.path)
        region = str(endpoint.options.get("region") or DEFAULT_REGION)
        url = endpoint.options.get("endpoint_url") or f"https://s3.{region}.amazonaws.com"
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        # One botocore session for the connection's clients: its profile (the
        # ``profile`` option, else AWS_PROFILE or default) gives the chain's
        # credentials and the CA bundle.
        core = botocore.session.Session(profile=endpoint.options.get("profile") or None)
        # The steps open their own connection (boto3 makes its own for the
        # requests) to say which one failed: DNS, TCP, or the certificate.
        sock = open_tcp(steps, host, port, timeout=_timeout(endpoint.options))
        if parts.scheme == "https":
            sock = start_tls(steps, sock, host, ca_file=_trusted(endpoint.options, core))
        sock.close()
        with steps.step("auth", "credentials"):
            client = self._client(endpoint, region, core)
            try:
                client.list_buckets()
            except botocore.exceptions.ClientError as exc:
                code, _status, _msg = _error_code(exc)
                # Denied to list buckets: the keys were accepted. Redirected:
                # a regional endpoint; the bucket step below sorts out the region.
                if code not in ("AccessDenied", "403", "PermanentRedirect", "301"):
                    raise
        with steps.step("bucket", bucket):
            region, client = self._locate(endpoint, core, client, bucket, region)
        return S3Connection(endpoint, client, bucket, prefix, region)

    def _locate(self, endpoint: Endpoint, core: botocore.session.Session, client: Any,
                bucket: str, region: str) -> tuple[str, Any]:
        """Check the bucket is there and S3 answers; follow a wrong region once."""
        for _attempt in range(2):
            try:
                client.list_objects_v2(Bucket=bucket, MaxKeys=1)
                return region, client
            except botocore.exceptions.ClientError as exc:
                code, _status, _msg = _error_code(exc)
                actual = _redirect_region(exc)
                if code in ("NoSuchBucket", "404"):
                    raise NotFound(f"the bucket '{bucket}' does not exist",
                                   fix="create the bucket, or correct its name in the URL"
                                   ) from None
                if actual and actual != region and code in ("PermanentRedirect", "301",
                                                            "AuthorizationHeaderMalformed"):
                    log.warning("bucket %s is in region %s, not %s: set region = \"%s\" in the "
                                "target's options to skip this detour", bucket, actual, region,
                                actual)
                    region, client = actual, self._client(endpoint, actual, core)
                    continue
                raise
            except botocore.exceptions.ResponseParserError:
                raise Fatal("the endpoint did not answer as S3 does",
                            fix="check endpoint_url: it must be the S3 API of the store"
                            ) from None
        raise Fatal(f"the bucket '{bucket}' still redirects after switching to region "
                    f"{region}", fix="set the bucket's region in the target's options")

    @hookimpl
    def translate_error(self, exc: Exception) -> TargetError | None:
        b = botocore.exceptions
        if isinstance(exc, b.ClientError):
            code, status, message = _error_code(exc)
            detail = f"{code}: {message}" if message else code
            if code in AUTH_CODES:
                return AuthError(detail)
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                return NotFound(detail if code == "NoSuchBucket" else "")
            if code in FULL_CODES:
                return StorageFull(detail)
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                return PermissionDenied(detail)
            if code in ("PermanentRedirect", "301"):
                return Fatal(f"wrong region: {detail}",
                             fix=f"set region = \"{_redirect_region(exc) or '?'}\"")
            if code == "NotImplemented" or (code in ("InvalidArgument", "InvalidRequest")
                                            and "checksum" in message.lower()):
                # S3's answer to a header it does not implement; from an
                # S3-compatible store, most likely the checksum headers.
                return Fatal(f"S3 {detail}",
                             fix="if this store does not take S3's additional checksums, set "
                             "the target option checksum = \"none\"")
            if code in TRANSIENT_CODES or status >= 500:
                return Transient(f"S3 {detail}")
            return Fatal(f"S3 {detail}")
        if isinstance(exc, b.NoCredentialsError | b.PartialCredentialsError):
            return AuthError("no AWS credentials", fix="store them with offsite credentials "
                             "set JOB.TARGET, or configure the AWS credential chain")
        if isinstance(exc, b.ProfileNotFound):
            return AuthError(f"the AWS profile {exc.kwargs.get('profile', '?')!r} is not "
                             "configured", fix="add it to ~/.aws/config or ~/.aws/credentials "
                             "(or AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE), or correct the "
                             "target option profile")
        if isinstance(exc, b.SSLError):
            return TLSFailed(str(exc), host=getattr(exc, "kwargs", {}).get("endpoint_url", "?"))
        if isinstance(exc, b.EndpointConnectionError | b.ConnectTimeoutError |
                      b.ReadTimeoutError | b.ConnectionClosedError):
            return Transient(str(exc))
        if isinstance(exc, b.ResponseParserError):
            return Fatal("the endpoint did not answer as S3 does",
                         fix="check endpoint_url: it must be the S3 API of the store")
        if isinstance(exc, b.BotoCoreError):
            return Fatal(str(exc))
        return None

    # -- transfer ---------------------------------------------------------------

    def _extra(self, conn: S3Connection) -> dict[str, str]:
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

    @hookimpl
    def put(self, conn: S3Connection, path: str, transfer: Transfer) -> RemoteFile:
        key = conn.key(path)
        if transfer.size <= SINGLE_PUT_MAX:
            with transfer.open(0) as reader:
                data = _read_exactly(reader, transfer.size)
                transfer.progress(0)
                conn.client.put_object(Bucket=conn.bucket, Key=key, Body=data,
                                       **self._extra(conn), **_body_checksum(conn.checksum, data))
                transfer.progress(len(data))
        else:
            self._multipart(conn, key, transfer)
        return self._head(conn, path)

    def _multipart(self, conn: S3Connection, key: str, transfer: Transfer) -> None:
        client, bucket = conn.client, conn.bucket
        size = transfer.size
        step = part_size(size)
        if step > MAX_PART:  # before anything moves: S3 would refuse it at the end
            raise Fatal(f"{size / (1 << 40):.1f} TiB is more than one S3 object can hold "
                        "(10,000 parts of 5 GiB: 48.8 TiB)",
                        fix="replicate this job to a target of another kind, or back the "
                        "volume up in smaller pieces")
        streamed = conn.trailing_checksums and step * PARALLEL_PARTS > PART_MEMORY
        held = 1 if streamed else parts_at_once(step)
        done: dict[int, dict[str, Any]] = {}  # part number -> its entry for Complete
        checksum = conn.checksum
        field = f"Checksum{checksum}" if checksum else ""
        part_args = {"ChecksumAlgorithm": checksum} if checksum else {}
        upload_id = None
        token = transfer.resume
        if token and token.get("key") == key and token.get("upload_id") \
                and token.get("part_size") == step and token.get("checksum") == checksum:
            upload_id = str(token["upload_id"])
            try:
                for page in client.get_paginator("list_parts").paginate(
                        Bucket=bucket, Key=key, UploadId=upload_id):
                    for p in page.get("Parts", []):
                        done[int(p["PartNumber"])] = _part_entry(p, field)
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc)[0] != "NoSuchUpload":
                    raise
                upload_id, done = None, {}
        if upload_id is None:
            self._abort_stale(conn, key)
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key,
                                                       **self._extra(conn))["UploadId"]
            transfer.save_token({"key": key, "upload_id": upload_id, "part_size": step,
                                 "checksum": checksum})
        count = math.ceil(size / step)
        first = 1
        while first in done:  # resume after the parts that are there, in order
            first += 1
        offset = min(size, (first - 1) * step)
        sent = offset
        transfer.progress(sent)

        def upload(number: int, data: bytearray | _PartStream) -> tuple[int, dict[str, Any], int]:
            given = {} if isinstance(data, _PartStream) else _body_checksum(checksum, data)
            try:
                answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                            PartNumber=number, Body=data,
                                            ContentLength=len(data), **part_args, **given)
            except Exception as exc:
                if isinstance(data, _PartStream):
                    if data.error is not None:
                        raise data.error from None  # the source failed, not the target
                    if isinstance(exc, botocore.exceptions.UnseekableStreamError):
                        # botocore's retry after a failure mid-part: the next
                        # attempt resumes after the parts that arrived.
                        raise Transient(f"the connection failed while part {number} was "
                                        "being sent") from None
                raise
            return number, _part_entry({**answer, "PartNumber": number}, field), len(data)

        # Parts are read in order from the one source stream and sent by a few
        # threads at once (boto3 releases the GIL on the network); at most
        # ``held`` are in memory (see parts_at_once), so memory stays bounded.
        in_flight: collections.deque[Future[tuple[int, dict[str, Any], int]]] = \
            collections.deque()

        def settle(limit: int) -> None:
            nonlocal sent
            while len(in_flight) > limit:
                number, entry, length = in_flight.popleft().result()
                done[number] = entry
                sent += length
                transfer.progress(sent)

        with transfer.open(offset) as reader, ThreadPoolExecutor(held) as pool:
            try:
                for number in range(first, count + 1):
                    length = min(step, size - (number - 1) * step)
                    # A streamed part reads the source as it goes (held is 1:
                    # it is done before the next begins); others are read whole.
                    body = (_PartStream(reader, length) if streamed
                            else _read_exactly(reader, length))
                    in_flight.append(pool.submit(upload, number, body))
                    settle(held - 1)  # room for the next part to be read
                settle(0)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [done[n] for n in range(1, count + 1)]})

    @hookimpl
    def discard(self, conn: S3Connection, path: str, resume: ResumeToken) -> bool:
        key, upload_id = conn.key(path), resume.get("upload_id")
        if resume.get("key") == key and upload_id:  # only the upload our put began
            try:
                conn.client.abort_multipart_upload(Bucket=conn.bucket, Key=key,
                                                   UploadId=str(upload_id))
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc)[0] not in ("NoSuchUpload", "404"):
                    raise
        return True

    @staticmethod
    def _abort_stale(conn: S3Connection, key: str) -> None:
        """Abort multipart uploads of ``key`` that nobody will resume."""
        pages = conn.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=conn.bucket, Prefix=key)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Key"] == key:
                    conn.client.abort_multipart_upload(Bucket=conn.bucket, Key=key,
                                                       UploadId=upload["UploadId"])

    def _head(self, conn: S3Connection, path: str) -> RemoteFile:
        # The ETag, not the object's S3 checksum: listings show only the ETag,
        # and the core compares what put reported with what list shows to
        # notice an object replaced behind its back. (S3 has checked the
        # checksum on arrival already; of a multipart object it is a checksum
        # of the parts' checksums, nothing anyone could compare anyway.)
        head = conn.client.head_object(Bucket=conn.bucket, Key=conn.key(path))
        return RemoteFile(path, int(head["ContentLength"]), head["LastModified"].timestamp(),
                          _etag(head["ETag"]))

    @hookimpl
    def get(self, conn: S3Connection, path: str, offset: int) -> Readable:
        head = conn.client.head_object(Bucket=conn.bucket, Key=conn.key(path))
        if offset >= int(head["ContentLength"]):
            return _Empty()
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        body: Readable = conn.client.get_object(Bucket=conn.bucket, Key=conn.key(path),
                                                **extra)["Body"]
        return body

    # -- listing ----------------------------------------------------------------

    @hookimpl
    def list(self, conn: S3Connection, folder: str) -> Sequence[RemoteFile]:
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
                                        item["LastModified"].timestamp(), _etag(item["ETag"])))
        return found

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


#: The object the ``s3`` entry point names.
plugin = S3Transport()

__all__ = ["S3Connection", "S3Transport", "part_size", "parts_at_once", "plugin"]

"""Opening an S3 connection, step by step, and :class:`S3Connection`, what it gives.

:func:`connect` goes through the steps ``offsite check`` reports: resolve and
connect to the endpoint and, over HTTPS, ``tls`` against the CA bundle the
transfers will trust (the core's checks open a connection of their own to
say which step failed: boto3 makes its own for the requests); ``auth``
(``ListBuckets``: the keys, stored or from the AWS credential chain, are
accepted); ``bucket`` (it exists, and in which region: a wrong ``region``
option is followed once, with a warning). The boto3 client is built here,
with botocore's retries cut down (offsite retries too) and checksums sent
only where an upload asks for them.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs
import boto3
import botocore.exceptions
import botocore.httpsession
import botocore.session
from botocore.config import Config

from offsite import paths
from offsite.checks import Steps, open_tcp, start_tls
from offsite.errors import Fatal, NotFound
from offsite.transport import Endpoint
from offsite_s3.checksums import SIGNING_CHECKSUMS, checksum_option
from offsite_s3.errors import error_code, redirect_region

# The package's name, not this module's: the name log lines have always shown.
log = logging.getLogger("offsite_s3")

# botocore's DEBUG log prints every request's headers, the Authorization
# header (with the access key id) among them: no secret may reach a log, so
# its loggers never go below INFO, whatever -vv asks of offsite's own.
for _name in ("botocore", "boto3", "s3transfer", "urllib3"):
    _logger = logging.getLogger(_name)
    _logger.setLevel(max(_logger.level, logging.INFO))

DEFAULT_REGION = "us-east-1"


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
        return checksum_option(self.endpoint.options)

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

    def new_key(self, path: str) -> str:
        """The key an upload of ``path`` is stored under.

        :raises Fatal: past :data:`MAX_KEY` bytes, which AWS refuses
            (KeyTooLongError) and other stores may cut short or refuse late.
        """
        key = self.key(path)
        if len(key.encode()) > MAX_KEY:
            raise Fatal(f"the object key is {len(key.encode())} bytes of UTF-8; S3 holds at most "
                        f"{MAX_KEY}", fix="use a shorter target folder, folder or image label")
        return key


#: The longest object key S3 holds, in bytes of UTF-8.
MAX_KEY = 1024


def connect(endpoint: Endpoint, steps: Steps) -> S3Connection:
    """A client for ``endpoint``'s bucket and folder, each step reported to ``steps``.

    :raises Fatal: no bucket in the URL, or a step that cannot succeed.
    :raises NotFound: the bucket does not exist.
    """
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
    # The host is not the URL's (that names the bucket): say which option made it.
    resolve_fix = (f"check the target option endpoint_url ({url}) and this machine's DNS "
                   "settings" if endpoint.options.get("endpoint_url") else
                   f"check the target option region ({region}) and this machine's DNS settings")
    sock = open_tcp(steps, host, port, timeout=timeout_option(endpoint.options),
                    resolve_fix=resolve_fix)
    if parts.scheme == "https":
        sock = start_tls(steps, sock, host, ca_file=_trusted(endpoint.options, core))
    sock.close()
    with steps.step("auth", "credentials"):
        client = make_client(endpoint, region, core)
        try:
            client.list_buckets()
        except botocore.exceptions.ClientError as exc:
            code, _status, _msg = error_code(exc)
            # Denied to list buckets: the keys were accepted. Redirected:
            # a regional endpoint; the bucket step below sorts out the region.
            if code not in ("AccessDenied", "403", "PermanentRedirect", "301"):
                raise
    with steps.step("bucket", bucket):
        region, client = _locate(endpoint, core, client, bucket, region)
    return S3Connection(endpoint, client, bucket, prefix, region)


def make_client(endpoint: Endpoint, region: str, core: botocore.session.Session) -> Any:
    """A boto3 S3 client for ``endpoint`` in ``region``: the stored keys, or
    (none stored) the AWS credential chain of ``core``'s profile."""
    options = endpoint.options
    creds = endpoint.credentials
    keys = {}
    if creds.get("access_key_id") or creds.get("secret_access_key"):
        keys = {"aws_access_key_id": creds.get("access_key_id"),
                "aws_secret_access_key": creds.get("secret_access_key")}
    # None stored: the AWS credential chain (of ``core``'s profile).
    session = boto3.session.Session(botocore_session=core, **keys)
    timeout = timeout_option(options)
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
            "payload_signing_enabled": checksum_option(options) not in SIGNING_CHECKSUMS},
        # Checksums only where asked (uploads ask for the ``checksum``
        # option's): S3-compatible stores may not know the newer ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=options.get("endpoint_url"), config=config,
                          verify=_ca_file(options))


def _locate(endpoint: Endpoint, core: botocore.session.Session, client: Any,
            bucket: str, region: str) -> tuple[str, Any]:
    """Check the bucket is there and S3 answers; follow a wrong region once."""
    for _attempt in range(2):
        try:
            client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            return region, client
        except botocore.exceptions.ClientError as exc:
            code, _status, _msg = error_code(exc)
            actual = redirect_region(exc)
            if code in ("NoSuchBucket", "404"):
                raise NotFound(f"the bucket '{bucket}' does not exist",
                               fix="create the bucket, or correct its name in the URL"
                               ) from None
            if actual and actual != region and code in ("PermanentRedirect", "301",
                                                        "AuthorizationHeaderMalformed"):
                log.warning("bucket %s is in region %s, not %s: set region = \"%s\" in the "
                            "target's options to skip this detour", bucket, actual, region,
                            actual)
                region, client = actual, make_client(endpoint, actual, core)
                continue
            raise
        except botocore.exceptions.ResponseParserError:
            raise Fatal("the endpoint did not answer as S3 does",
                        fix="check endpoint_url: it must be the S3 API of the store"
                        ) from None
    raise Fatal(f"the bucket '{bucket}' still redirects after switching to region "
                f"{region}", fix="set the bucket's region in the target's options")


def timeout_option(options: Mapping[str, Any]) -> float:
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


__all__ = ["DEFAULT_REGION", "S3Connection", "connect", "make_client", "timeout_option"]

"""botocore's exceptions → offsite's error tree: the one place that maps them
(the ``translate_error`` hook calls :func:`translate`).

S3 answers a refusal with an HTTP status and an error code in its XML body
(``NoSuchKey``, ``SlowDown`` …), which botocore raises as a ``ClientError``;
a HEAD request has no body, so only its status is there (``"404"``). The
code decides, then the status:

* signature, key id or token refused: :class:`~offsite.errors.AuthError`;
* no such key or bucket: :class:`~offsite.errors.NotFound`;
* a full store or a quota (MinIO's 507, Ceph's ``QuotaExceeded``):
  :class:`~offsite.errors.StorageFull`;
* access denied: :class:`~offsite.errors.PermissionDenied`;
* the bucket is in another region: :class:`~offsite.errors.Fatal`, naming it;
* a header the store does not implement (most likely the checksum ones):
  :class:`~offsite.errors.Fatal`, pointing at ``checksum = "none"``;
* throttling, timeouts, any 5xx: :class:`~offsite.errors.Transient`.

botocore's own exceptions (no credentials, a missing profile, TLS, a dropped
connection, an answer that is not S3's) map by their class.
"""

from __future__ import annotations

import botocore.exceptions

from offsite.errors import (
    AuthError,
    Fatal,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    TLSFailed,
    Transient,
)

AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
              "AuthorizationHeaderMalformed", "InvalidClientTokenId"}
#: A store out of space or over quota: MinIO's full disk (HTTP 507, which
#: the >= 500 rule would otherwise retry in vain), Ceph's quota (HTTP 403).
FULL_CODES = {"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage", "507"}
TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                   "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable", "503", "500"}


def error_code(exc: botocore.exceptions.ClientError) -> tuple[str, int, str]:
    """S3's (error code, HTTP status, message) of a refusal; the code is the
    status as text where the answer had no body."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", status)), int(status or 0), str(error.get("Message", ""))


def redirect_region(exc: botocore.exceptions.ClientError) -> str | None:
    """The region S3 says the bucket is in (``x-amz-bucket-region``), if it says."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


def translate(exc: Exception) -> TargetError | None:
    """What the ``translate_error`` hook returns for ``exc`` (None: unknown)."""
    b = botocore.exceptions
    if isinstance(exc, b.ClientError):
        code, status, message = error_code(exc)
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
                         fix=f"set region = \"{redirect_region(exc) or '?'}\"")
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
                         "set {name}, or configure the AWS credential chain")
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


__all__ = ["AUTH_CODES", "FULL_CODES", "TRANSIENT_CODES", "error_code", "redirect_region",
           "translate"]

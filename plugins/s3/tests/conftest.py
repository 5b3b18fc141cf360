"""Real S3 endpoints on 127.0.0.1 for the S3 plugin's tests.

Fixtures:

* ``moto_s3`` (session): the server of :func:`offsite_s3.testserver.run_moto`,
  moto's ``ThreadedMotoServer`` in a *subprocess*, on a free port. Any access
  key and secret are accepted (moto's default). Yields an
  :class:`~offsite_s3.testserver.S3Info`; ``moto_s3.client()`` is a ready boto3
  S3 client and ``moto_s3.rclone_env()`` the environment for rclone's ``:s3:``
  remote.
* ``s3_bucket`` (function): a fresh, empty bucket ``offsite-<12 hex>`` on
  ``moto_s3``; emptied (objects *and* pending multipart uploads) and deleted
  afterwards. Yields its name.
* ``moto_s3_auth`` (session): a second moto subprocess
  (``run_moto(enforce_auth=True)``) with IAM signature checks switched on.
  Only its ``access_key_id``/``secret_access_key`` work; a wrong secret gives
  ``SignatureDoesNotMatch``, an unknown key ``InvalidAccessKeyId``.
  ``moto_s3_auth.bucket`` already exists. **Use it for credential tests only**:
  moto (5.2.x) computes wrong signatures for requests whose path or query needs
  %-encoding (keys with ``+``, ``:`` or non-ASCII, ``Prefix="dir/"``,
  ``Delimiter="/"``), so correctly signed requests fail there.
* ``moto_s3_tls`` (session): a third moto subprocess serving HTTPS with a
  certificate from a throw-away CA (:func:`offsite.testing.certs.make_certs`);
  ``moto_s3_tls.ca_file`` is that CA, which nothing else trusts, and
  ``moto_s3_tls.bucket`` an empty bucket on it.
* ``wrong_region_s3`` (session): a tiny HTTP server that answers *every*
  request like S3 answers for a bucket in another region (301,
  ``x-amz-bucket-region: eu-west-1``, ``PermanentRedirect`` XML except for
  HEAD) and records what it saw. Yields a :class:`FakeHTTPServer`.
* ``not_s3_server`` (session): an HTTP server that answers every request with
  200 and an HTML "hello" page: an endpoint that is not S3 at all.

Why a subprocess for moto: its auth switch (``/moto-api/reset-auth``) and its
backends are process-global, so an in-process server would leak the auth mode
and state into the test process (and into any ``mock_aws`` a test uses). The
machinery lives in :mod:`offsite_s3.testserver` (shared with ``bench/s3.py``);
the fake HTTP servers stay here.

moto does not check the region (any client region works on any bucket), which
is why the wrong-region behaviour needs the fake server.

Needs ``moto[server]>=5`` and ``boto3``; the module skips without them.
``rclone`` is optional (``rclone_env()`` returns None without it).
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypedDict

import attrs
import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server", reason="needs moto[server] (flask, werkzeug)")

# Imported only after the importorskip calls above (ruff's E402 allows it).
from offsite.testing.certs import make_certs
from offsite_s3.testserver import S3Info, empty_bucket, run_moto

__all__ = ["FakeHTTPServer", "RecordedRequest", "S3Info"]

WRONG_REGION = "eu-west-1"

NOT_S3_PAGE = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>hello</title></head>'
    b"<body>hello</body></html>"
)


# --------------------------------------------------------------------------- moto


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Info]:
    """moto in a subprocess on a free 127.0.0.1 port; any credentials are accepted."""
    with run_moto() as info:
        yield info


@pytest.fixture
def s3_bucket(moto_s3: S3Info) -> Iterator[str]:
    """A fresh bucket on ``moto_s3``; emptied (incl. multipart uploads) and deleted after."""
    name = f"offsite-{uuid.uuid4().hex[:12]}"
    client = moto_s3.client()
    client.create_bucket(Bucket=name)
    yield name
    # A leftover upload or object would make delete_bucket fail with BucketNotEmpty
    # (and orphaned uploads are exactly what resume tests leave behind).
    empty_bucket(client, name)
    # moto deletes a bucket with open uploads without complaint (real S3 may not),
    # so check here that none is left rather than let a bug in empty_bucket hide.
    leftover = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
    assert not leftover, f"s3_bucket teardown left uploads behind: {leftover}"
    client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def moto_s3_auth() -> Iterator[S3Info]:
    """A second moto with IAM auth on; only the yielded keys work. Credential tests only.

    moto mis-signs requests whose path/query needs %-encoding (keys with ``+``,
    ``:``, non-ASCII; ``Prefix``/``Delimiter`` with ``/``): those fail with a
    false ``SignatureDoesNotMatch`` here. Unsigned and presigned requests get 500.
    """
    with run_moto(enforce_auth=True) as info:
        yield info


@pytest.fixture(scope="session")
def moto_s3_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Info]:
    """moto over HTTPS with a private CA's certificate, and a bucket on it."""
    with run_moto(certs=make_certs(tmp_path_factory.mktemp("tls"))) as info:
        bucket = f"offsite-tls-{uuid.uuid4().hex[:12]}"
        info.client().create_bucket(Bucket=bucket)
        yield attrs.evolve(info, bucket=bucket)


# --------------------------------------------------------------------------- fake HTTP


class RecordedRequest(TypedDict):
    """One request a fake server saw; header names as sent (duplicates collapsed).

    A plain dict, so ``r["headers"].get("Authorization", "")`` works.
    """

    method: str
    path: str
    headers: dict[str, str]


@attrs.frozen
class FakeHTTPServer:
    """A loopback HTTP server with a canned answer; ``requests`` grows as it is used."""

    endpoint_url: str
    requests: list[RecordedRequest] = attrs.field(repr=False)

    def requests_for(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        """The recorded requests with this method whose path starts with ``path_prefix``."""
        return [
            r
            for r in list(self.requests)
            if r["method"] == method and r["path"].startswith(path_prefix)
        ]


# (status, headers, body) for a recorded request.
Responder = Callable[[RecordedRequest], tuple[int, dict[str, str], bytes]]


def _make_handler(
    responder: Responder, seen: list[RecordedRequest], lock: threading.Lock
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        # HTTP/1.1 so that botocore's keep-alive and "Expect: 100-continue" work.
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no per-request lines on stderr

        def _drain_body(self) -> None:
            # Read the upload before answering: an unread body would be taken
            # as the next request on a kept-alive connection.
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    self.rfile.read(size + 2)  # chunk + CRLF (trailers: last CRLF)
                    if size == 0:
                        break
            else:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self) -> None:
            self._drain_body()
            rec = RecordedRequest(
                method=self.command, path=self.path, headers=dict(self.headers.items())
            )
            with lock:
                seen.append(rec)
            status, headers, body = responder(rec)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET = do_PUT = do_POST = do_DELETE = _answer

    return Handler


@contextmanager
def run_fake_http(responder: Responder) -> Iterator[FakeHTTPServer]:
    """Serve ``responder`` on 127.0.0.1:<free port> in a daemon thread."""
    seen: list[RecordedRequest] = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), _make_handler(responder, seen, threading.Lock())
    )
    server.daemon_threads = True  # a hanging client must not block shutdown
    # A short poll interval: shutdown() waits for it (the default 0.5 s per server).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-http", daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield FakeHTTPServer(f"http://{host!s}:{port}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _bucket_of(path: str) -> str:
    # Path-style addressing: /BUCKET/KEY?query
    return path.split("?", 1)[0].lstrip("/").split("/", 1)[0]


def _wrong_region_answer(rec: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
    bucket = _bucket_of(rec["path"])
    host = f"s3.{WRONG_REGION}.amazonaws.com"
    endpoint = f"{bucket}.{host}" if bucket else host
    headers = {"x-amz-bucket-region": WRONG_REGION, "Content-Type": "application/xml"}
    if rec["method"] == "HEAD":
        return 301, headers, b""  # S3 sends no body for HEAD: the client sees only "301"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code>'
        "<Message>The bucket you are attempting to access must be addressed using the "
        f"specified endpoint.</Message><Endpoint>{endpoint}</Endpoint>"
        f"<Bucket>{bucket}</Bucket></Error>"
    )
    return 301, headers, body.encode()


@pytest.fixture(scope="session")
def wrong_region_s3() -> Iterator[FakeHTTPServer]:
    """Answers every request like S3 for a bucket in eu-west-1 (301, PermanentRedirect).

    ``wrong_region_s3.requests`` lists what it saw for the whole session: filter
    by your own (unique) bucket name, e.g. ``requests_for("HEAD", "/mybucket")``.
    botocore's region redirector sends each request a second time, signed for
    eu-west-1 (same endpoint), before it raises the ClientError: expect two.
    """
    with run_fake_http(_wrong_region_answer) as srv:
        yield srv


@pytest.fixture(scope="session")
def not_s3_server() -> Iterator[FakeHTTPServer]:
    """Answers every request with 200 and an HTML "hello" page: not an S3 endpoint.

    The page is deliberately not well-formed XML (unclosed ``<meta>``, as in
    most real HTML): botocore parses ``<html>hello</html>`` as XML without
    complaint, so list_objects_v2 would return ``{}`` (an "empty bucket") and
    get_object the page itself. With this page botocore's listing fails
    (ClientError "500" after its retries). head_bucket succeeds (200) either way.
    """

    def answer(rec: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/html; charset=utf-8"}, NOT_S3_PAGE

    with run_fake_http(answer) as srv:
        yield srv


def _no_checksum_answer(rec: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
    xml = {"Content-Type": "application/xml"}
    checksum = any(h.lower().startswith(("x-amz-checksum-", "x-amz-sdk-checksum"))
                   for h in rec["headers"])
    if rec["method"] == "PUT" and checksum:
        return 501, xml, (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>'
            b"<Message>A header you provided implies functionality that is not "
            b"implemented</Message></Error>")
    if rec["method"] == "GET" and rec["path"].split("?")[0] == "/":
        return 200, xml, (b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult>'
                          b"<Buckets></Buckets></ListAllMyBucketsResult>")
    if rec["method"] == "GET" and "list-type=2" in rec["path"]:
        return 200, xml, (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                          b"<Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false"
                          b"</IsTruncated></ListBucketResult>")
    return 200, {"ETag": '"d41d8cd98f00b204e9800998ecf8427e"'}, b""


@pytest.fixture(scope="session")
def no_checksum_s3() -> Iterator[FakeHTTPServer]:
    """An S3-compatible store that does not implement S3's additional checksums:
    like AWS for an unimplemented header, it answers 501 NotImplemented to any
    PUT carrying ``x-amz-checksum-*``; lists an empty bucket; accepts the rest."""
    with run_fake_http(_no_checksum_answer) as srv:
        yield srv


def _refusing_answer(status: int, code: str) -> Responder:
    """A store that lists an empty bucket and answers every PUT with ``status``."""

    def answer(rec: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        if rec["method"] in ("PUT", "POST"):
            return status, {"Content-Type": "application/xml"}, (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>{code}</Message></Error>").encode()
        return _no_checksum_answer(rec)

    return answer


@pytest.fixture(scope="session")
def forbidding_s3() -> Iterator[FakeHTTPServer]:
    """A store whose bucket policy lets this user list but not write: every PUT
    is answered 403 AccessDenied, as S3 does."""
    with run_fake_http(_refusing_answer(403, "AccessDenied")) as srv:
        yield srv


@pytest.fixture(scope="session")
def overloaded_s3() -> Iterator[FakeHTTPServer]:
    """A store that is overloaded for writes: every PUT is answered 503
    SlowDown, which S3 sends when a client must back off and try again."""
    with run_fake_http(_refusing_answer(503, "SlowDown")) as srv:
        yield srv


@pytest.fixture(scope="session")
def full_s3() -> Iterator[FakeHTTPServer]:
    """A MinIO whose disks are full: every PUT is answered 507
    XMinioStorageFull, as MinIO does."""
    with run_fake_http(_refusing_answer(507, "XMinioStorageFull")) as srv:
        yield srv

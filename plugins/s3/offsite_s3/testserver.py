"""moto's S3 server on loopback for tests and benchmarks; needs moto[server].

:func:`run_moto` is a context manager: it starts moto's
``ThreadedMotoServer`` in a *child process* on a free 127.0.0.1 port, waits
until it answers, yields an :class:`S3Info` and stops the child at exit::

    with run_moto() as s3:
        s3.client().create_bucket(Bucket="b")
        endpoint = Endpoint.from_url("s3://b/folder",
                                     options={"endpoint_url": s3.endpoint_url,
                                              "region": s3.region},
                                     credentials={"access_key_id": s3.access_key_id,
                                                  "secret_access_key": s3.secret_access_key})
        env = s3.rclone_env()          # for `rclone ... :s3:BUCKET/PATH`, or None

By default moto accepts any access key and secret. With
``enforce_auth=True`` IAM signature checks are switched on after a
bootstrap: only the yielded keys work (a wrong secret gives
``SignatureDoesNotMatch``, an unknown key ``InvalidAccessKeyId``) and
``S3Info.bucket`` already exists. Use that mode for credential checks only:
moto (5.2.x) computes wrong signatures for requests whose path or query
needs %-encoding (keys with ``+``, ``:`` or non-ASCII, ``Prefix="dir/"``,
``Delimiter="/"``), so correctly signed requests fail there.

Why a child process: moto's auth switch (``/moto-api/reset-auth``) and its
backends are process-global, so an in-process server would leak the auth
mode and state into the caller (and into any ``mock_aws`` it uses). The
child exits when its stdin closes, so a killed parent leaves no orphan.

With ``certs`` (:func:`offsite.testing.certs.make_certs`) the server
speaks HTTPS with that certificate: ``endpoint_url`` is ``https://…``, and a
client must be given ``certs.ca_file`` to trust it.

moto does not check the region: any client region works on any bucket.
moto keeps objects in spooled temporary files: pass ``tmpdir`` to keep
large ones off a tmpfs /tmp.

Needs ``moto[server]>=5`` (flask, werkzeug) and ``boto3``; ``rclone`` is
optional (:meth:`S3Info.rclone_env` returns None without it). Nothing here
is used by the plugin itself; it only ships beside it so that the tests and
``bench/s3.py`` share one server.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from offsite.testing.certs import TestCerts

# boto3 builds its client classes at run time; there is no static type to name.
S3Client = Any

REGION = "us-east-1"
# moto without auth accepts anything; fixed values keep failures reproducible.
ANY_KEY_ID = "offsite-test-key"
ANY_SECRET = "offsite-test-secret"  # noqa: S105 - a throw-away test value
AUTH_USER = "offsite"
READY_TIMEOUT_S = 10.0

# Runs in the child. The parent reads the port from the first stdout line and
# shuts the server down by closing stdin (a dead parent closes it too, so no
# orphaned moto survives a killed pytest). Then os._exit, not srv.stop(): stop
# waits out werkzeug's 0.5 s poll and a normal exit spends ~0.2 s tearing down
# moto's modules; the kernel closes the listening socket either way. The
# server is built as moto's ThreadedMotoServer builds it, plus the TLS
# context that class cannot take (argv: certificate and key files).
_MOTO_CHILD = r"""
import logging, os, sys, threading
# verbose=False does not silence werkzeug's per-request log lines; this does.
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
tls = tuple(sys.argv[1:3]) or None
srv = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), True,
                  request_handler=MotoRequestHandler, ssl_context=tls)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print(srv.server_address[1], flush=True)
sys.stdin.read()
os._exit(0)
"""


@attrs.frozen
class S3Info:
    """Where a moto server listens and which credentials to use there."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str = attrs.field(repr=False)
    process: subprocess.Popen[str] = attrs.field(repr=False)
    region: str = REGION
    bucket: str | None = None  # set with enforce_auth only (a pre-made bucket)
    ca_file: str | None = None  # set with certs only: the CA to trust

    def client(
        self,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
    ) -> S3Client:
        """A boto3 S3 client for this server (path addressing; override keys/region).

        Path addressing because ``bucket.127.0.0.1`` cannot resolve. Two attempts
        only, so that error tests do not wait for botocore's retry back-off.
        """
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region or self.region,
            aws_access_key_id=access_key_id or self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
            verify=self.ca_file,
        )

    def rclone_env(self) -> dict[str, str] | None:
        """Variables for ``rclone ... :s3:BUCKET/PATH`` against this server, or None.

        Merge them into os.environ for the subprocess (``env={**os.environ,
        **info.rclone_env()}``). ``AWS_CA_BUNDLE`` is set to "" on purpose: an
        inherited bundle makes rclone 1.60's S3 backend fail with
        ``LoadCustomCABundleError ... unsupported transport`` (this machine
        exports one), and an empty value counts as unset for it. The upload
        cutoff of 5G makes rclone use single PUTs: rclone 1.60's multipart
        uploads get ``BadRequest (400)`` from moto 5.2. Over HTTPS rclone is
        given the server's CA (``RCLONE_CA_CERT``).
        """
        if shutil.which("rclone") is None:
            return None
        tls = {"RCLONE_CA_CERT": self.ca_file} if self.ca_file else {}
        return {
            **tls,
            "RCLONE_CONFIG": "/dev/null",  # in-memory config, never a user's file
            "AWS_CA_BUNDLE": "",
            "RCLONE_S3_PROVIDER": "Other",
            "RCLONE_S3_ENV_AUTH": "false",
            "RCLONE_S3_ENDPOINT": self.endpoint_url,
            "RCLONE_S3_REGION": self.region,
            "RCLONE_S3_ACCESS_KEY_ID": self.access_key_id,
            "RCLONE_S3_SECRET_ACCESS_KEY": self.secret_access_key,
            "RCLONE_S3_FORCE_PATH_STYLE": "true",
            "RCLONE_S3_UPLOAD_CUTOFF": "5G",
        }


# --------------------------------------------------------------------------- helpers


def _no_proxy_open(req: urllib.request.Request | str, timeout: float,
                   ca_file: str | None = None) -> Any:
    # A CI proxy (HTTP_PROXY without NO_PROXY) must not see loopback requests.
    tls = urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), tls)
    return opener.open(req, timeout=timeout)


def _wait_http_ok(url: str, deadline: float = READY_TIMEOUT_S,
                  ca_file: str | None = None) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with _no_proxy_open(url, timeout=2, ca_file=ca_file) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"{url} did not answer 200 within {deadline} s")
        time.sleep(0.05)


def _stop_child(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()  # the child's sys.stdin.read() returns -> os._exit
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(10)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def _make_iam_user(url: str) -> tuple[str, str]:
    """While auth is still off: an IAM user with ``s3:*``; returns its (key id, secret).

    Auth is off, so the bootstrap keys may be anything. The reset-auth that
    follows (0 free requests) makes every later request checked;
    INITIAL_NO_AUTH_ACTION_COUNT=0 from the start would reject even this.
    """
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",  # noqa: S106 - ignored while auth is off
    )
    iam.create_user(UserName=AUTH_USER)
    iam.put_user_policy(
        UserName=AUTH_USER,
        PolicyName="s3-all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=AUTH_USER)["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _reset_auth(url: str) -> None:
    # The explicit Content-Type matters: urllib's default (form-urlencoded)
    # makes Flask swallow the body, and moto answers 500 (float('')).
    req = urllib.request.Request(  # noqa: S310 - a loopback http:// URL made here
        url + "/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    with _no_proxy_open(req, timeout=5) as resp:
        if resp.status != 200:
            raise RuntimeError(f"moto reset-auth answered {resp.status}")


# --------------------------------------------------------------------------- server


@contextmanager
def run_moto(
    *,
    enforce_auth: bool = False,
    tmpdir: str | os.PathLike[str] | None = None,
    certs: TestCerts | None = None,
) -> Iterator[S3Info]:
    """moto's S3 server in a child process on a free 127.0.0.1 port; see the module doc.

    :param enforce_auth: bootstrap an IAM user and a bucket, then switch
        signature checks on; the yielded S3Info carries that user's keys and
        the bucket's name.
    :param tmpdir: where moto spools object data (the child's ``TMPDIR``);
        tempfile's default when None.
    :param certs: serve HTTPS with this certificate (not with enforce_auth).
    :raises RuntimeError: moto did not start (e.g. moto[server] missing) or
        did not answer in time.
    """
    if certs is not None and enforce_auth:
        raise ValueError("run_moto: enforce_auth bootstraps over plain HTTP; not with certs")
    env = {**os.environ, "TMPDIR": os.fspath(tmpdir)} if tmpdir is not None else None
    tls = [os.fspath(certs.cert_file), os.fspath(certs.key_file)] if certs else []
    proc = subprocess.Popen(  # noqa: S603 - this interpreter with a fixed script
        [sys.executable, "-c", _MOTO_CHILD, *tls],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:  # around setup AND yield: a failed start leaks no process
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(
                f"moto server did not start (rc={proc.wait(10)}); needs moto[server]"
            )
        url = f"{'https' if certs else 'http'}://127.0.0.1:{int(line)}"
        # moto's management API answers without auth: a cheap readiness probe.
        _wait_http_ok(url + "/moto-api/data.json",
                      ca_file=os.fspath(certs.ca_file) if certs else None)

        if not enforce_auth:
            yield S3Info(url, ANY_KEY_ID, ANY_SECRET, proc,
                         ca_file=os.fspath(certs.ca_file) if certs else None)
            return

        key_id, secret = _make_iam_user(url)
        bucket = f"offsite-auth-{uuid.uuid4().hex[:12]}"
        info = S3Info(url, key_id, secret, proc, bucket=bucket)
        info.client().create_bucket(Bucket=bucket)
        _reset_auth(url)
        yield info
    finally:
        _stop_child(proc)


def empty_bucket(client: S3Client, bucket: str, prefix: str = "") -> None:
    """Delete every object and abort every pending multipart upload in ``bucket``.

    With ``prefix`` only those whose key starts with it.
    """
    where = {"Bucket": bucket, **({"Prefix": prefix} if prefix else {})}
    for page in client.get_paginator("list_multipart_uploads").paginate(**where):
        for up in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(**where):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])


__all__ = ["REGION", "S3Client", "S3Info", "empty_bucket", "run_moto"]

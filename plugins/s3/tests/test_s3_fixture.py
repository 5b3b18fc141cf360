"""Proof that the S3 fixtures of conftest.py behave as documented (boto3 only, no plugin)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MiB = 1024 * 1024


def _code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def _plain_client(endpoint_url: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="k",
        aws_secret_access_key="s",  # the fake server ignores it
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


# --------------------------------------------------------------------------- moto_s3 / s3_bucket


@pytest.fixture(scope="module")
def gone_buckets(moto_s3: Any) -> Iterator[list[str]]:
    """Names of s3_bucket buckets that must no longer exist once this module is done."""
    names: list[str] = []
    yield names
    existing = {b["Name"] for b in moto_s3.client().list_buckets()["Buckets"]}
    assert not existing & set(names), "s3_bucket did not delete its buckets"


def test_moto_s3_info(moto_s3: Any) -> None:
    assert moto_s3.endpoint_url.startswith("http://127.0.0.1:")
    assert moto_s3.region == "us-east-1"
    assert moto_s3.bucket is None
    assert moto_s3.process.poll() is None  # the subprocess is alive
    assert moto_s3.secret_access_key not in repr(moto_s3)


def test_moto_s3_accepts_any_credentials(moto_s3: Any, s3_bucket: str) -> None:
    other = moto_s3.client(access_key_id="whoever", secret_access_key="whatever")
    other.put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    assert moto_s3.client().get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"x"


def test_s3_bucket_put_get_list_delete(
    moto_s3: Any, s3_bucket: str, gone_buckets: list[str]
) -> None:
    gone_buckets.append(s3_bucket)
    assert s3_bucket.startswith("offsite-")
    assert len(s3_bucket) == len("offsite-") + 12
    c = moto_s3.client()
    assert c.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0  # fresh and empty

    data = os.urandom(1000)
    put = c.put_object(Bucket=s3_bucket, Key="dir/a b+c.bin", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # S3's ETag
    c.put_object(Bucket=s3_bucket, Key="dir/second", Body=b"2")

    assert c.get_object(Bucket=s3_bucket, Key="dir/a b+c.bin")["Body"].read() == data
    listing = c.list_objects_v2(Bucket=s3_bucket, Prefix="dir/")
    assert {o["Key"]: o["Size"] for o in listing["Contents"]} == {
        "dir/a b+c.bin": 1000,
        "dir/second": 1,
    }

    c.delete_object(Bucket=s3_bucket, Key="dir/a b+c.bin")
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=s3_bucket, Key="dir/a b+c.bin")
    assert _code(exc.value) == "NoSuchKey"
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["dir/second"]  # left behind on purpose: teardown must cope


def test_multipart_upload(moto_s3: Any, s3_bucket: str) -> None:
    c = moto_s3.client()
    key = "images/big.img"
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    up = c.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]

    etags = []
    for n, chunk in enumerate(parts_data, start=1):
        etags.append(
            c.upload_part(Bucket=s3_bucket, Key=key, UploadId=up, PartNumber=n, Body=chunk)["ETag"]
        )
    listed = c.list_parts(Bucket=s3_bucket, Key=key, UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [
        (n, len(d), e) for n, (d, e) in enumerate(zip(parts_data, etags, strict=True), start=1)
    ]

    done = c.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=up,
        MultipartUpload={
            "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]
        },
    )
    assert done["ETag"].endswith('-3"')
    assert c.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"".join(parts_data)
    assert "Uploads" not in c.list_multipart_uploads(Bucket=s3_bucket)


def test_s3_bucket_is_cleaned_up(moto_s3: Any, s3_bucket: str, gone_buckets: list[str]) -> None:
    """Leave objects and open uploads behind; the fixture's teardown must remove all.

    If it did not, teardown fails (BucketNotEmpty / its own upload check) or
    ``gone_buckets`` finds the bucket still listed at the end of the module.
    """
    gone_buckets.append(s3_bucket)
    c = moto_s3.client()
    for key in ("a", "dir/b", "dir/sub/c d+e"):
        c.put_object(Bucket=s3_bucket, Key=key, Body=b"1")
    for key in ("pending", "pending"):  # two uploads of the same key
        c.create_multipart_upload(Bucket=s3_bucket, Key=key)
    started = c.create_multipart_upload(Bucket=s3_bucket, Key="half")["UploadId"]
    c.upload_part(Bucket=s3_bucket, Key="half", UploadId=started, PartNumber=1, Body=b"p")
    assert len(c.list_multipart_uploads(Bucket=s3_bucket)["Uploads"]) == 3


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone not installed")
def test_rclone_env(moto_s3: Any, s3_bucket: str, tmp_path: Any) -> None:
    env = moto_s3.rclone_env()
    assert env is not None
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(100_000))
    run_env = {**os.environ, **env}
    rclone = shutil.which("rclone")
    assert rclone is not None
    flags = ["--retries", "1", "--low-level-retries", "1"]
    res = subprocess.run(
        [rclone, *flags, "copy", str(src), f":s3:{s3_bucket}/dir"],
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    head = moto_s3.client().head_object(Bucket=s3_bucket, Key="dir/payload.bin")
    assert head["ContentLength"] == 100_000


# --------------------------------------------------------------------------- moto_s3_auth


def test_auth_right_keys_work(moto_s3_auth: Any) -> None:
    assert moto_s3_auth.bucket
    c = moto_s3_auth.client()
    c.put_object(Bucket=moto_s3_auth.bucket, Key="cred-check", Body=b"ok")
    assert c.get_object(Bucket=moto_s3_auth.bucket, Key="cred-check")["Body"].read() == b"ok"
    c.delete_object(Bucket=moto_s3_auth.bucket, Key="cred-check")


def test_auth_wrong_secret(moto_s3_auth: Any) -> None:
    c = moto_s3_auth.client(secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        c.list_objects_v2(Bucket=moto_s3_auth.bucket)
    assert _code(exc.value) == "SignatureDoesNotMatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_auth_unknown_key(moto_s3_auth: Any) -> None:
    c = moto_s3_auth.client(access_key_id="AKIAUNKNOWNKEY000000")
    with pytest.raises(ClientError) as exc:
        c.list_objects_v2(Bucket=moto_s3_auth.bucket)
    assert _code(exc.value) == "InvalidAccessKeyId"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_default_server_does_not_enforce_auth(moto_s3: Any, moto_s3_auth: Any) -> None:
    # The auth switch is per process: the other moto must stay open.
    assert moto_s3.process.pid != moto_s3_auth.process.pid
    moto_s3.client(access_key_id="AKIAUNKNOWNKEY000000").list_buckets()


# --------------------------------------------------------------------------- fake servers


def test_wrong_region_head_bucket(wrong_region_s3: Any) -> None:
    bucket = f"offsite-{uuid.uuid4().hex[:12]}"
    c = _plain_client(wrong_region_s3.endpoint_url)
    with pytest.raises(ClientError) as exc:
        c.head_bucket(Bucket=bucket)
    meta = exc.value.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 301
    assert meta["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
    heads = wrong_region_s3.requests_for("HEAD", f"/{bucket}")
    assert heads, wrong_region_s3.requests
    assert heads[0]["path"] == f"/{bucket}"
    scopes = [h["headers"].get("Authorization", "").split("/")[2:3] for h in heads]
    # First as configured; botocore's redirector then retries once signed for the
    # bucket's region (same endpoint) and gives up: no redirect loop.
    assert scopes[0] == ["us-east-1"]
    assert len(heads) <= 2
    assert all(s == ["eu-west-1"] for s in scopes[1:])


def test_wrong_region_body_on_get(wrong_region_s3: Any) -> None:
    bucket = f"offsite-{uuid.uuid4().hex[:12]}"
    c = _plain_client(wrong_region_s3.endpoint_url)
    with pytest.raises(ClientError) as exc:
        c.list_objects_v2(Bucket=bucket)
    assert _code(exc.value) == "PermanentRedirect"
    assert exc.value.response["Error"]["Bucket"] == bucket
    assert wrong_region_s3.requests_for("GET", f"/{bucket}")
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="k", Body=b"x" * 1000)
    assert _code(exc.value) == "PermanentRedirect"
    assert wrong_region_s3.requests_for("PUT", f"/{bucket}/k")


def test_not_s3_server(not_s3_server: Any) -> None:
    c = _plain_client(not_s3_server.endpoint_url)
    # botocore cannot parse the HTML; it retries and ends with a ClientError "500".
    with pytest.raises((ClientError, BotoCoreError)):
        c.list_objects_v2(Bucket="offsite-x")
    assert not_s3_server.requests_for("GET", "/offsite-x")


def test_not_s3_server_passes_head_bucket(not_s3_server: Any) -> None:
    """Documents the trap: a HEAD-only probe cannot tell this endpoint from S3."""
    c = _plain_client(not_s3_server.endpoint_url)
    resp = c.head_bucket(Bucket="offsite-y")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "x-amz-request-id" not in resp["ResponseMetadata"]["HTTPHeaders"]

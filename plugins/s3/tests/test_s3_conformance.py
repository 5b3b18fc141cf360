"""offsite-s3 against moto's S3 server: the conformance suite, then S3's own rules."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import posixpath
import tracemalloc
from pathlib import Path
from typing import Any

import attrs
import boto3
import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.errors import AuthError, Fatal, NotFound, SourceError, TLSFailed
from offsite.session import Transport
from offsite.testing import conformance, endtoend
from offsite.testing.sources import (
    FailingSource,
    GeneratedSource,
    RecordingSource,
    random_bytes,
)
from offsite.transport import BytesSource, Endpoint
from offsite_s3 import multipart
from offsite_s3.checksums import body_checksum
from offsite_s3.connection import MAX_KEY
from offsite_s3.multipart import (
    LARGE_PART,
    MAX_PARTS,
    MIN_PART,
    PARALLEL_PARTS,
    PART_MEMORY,
    part_size,
    parts_at_once,
)

MiB = 1 << 20


def s3_endpoint(server: Any, bucket: str, folder: str = "backups/nightly",
                **options: Any) -> Endpoint:
    return Endpoint.from_url(
        f"s3://{bucket}/{folder}", name="s3-test",
        options={"endpoint_url": server.endpoint_url, "region": server.region, **options},
        credentials={"access_key_id": server.access_key_id,
                     "secret_access_key": server.secret_access_key})


def _fake_store_endpoint(server: Any) -> Endpoint:
    return Endpoint.from_url("s3://bucket/backups", name="s3-test", options={
        "endpoint_url": server.endpoint_url, "region": "us-east-1", "checksum": "none"},
        credentials={"access_key_id": "AKIDFAKE", "secret_access_key": "fake-secret"})


def _put_to(server: Any) -> conformance.Fault:
    def fault(provoke: conformance.Provoke) -> None:
        with provoke.transport.connect(_fake_store_endpoint(server)) as session:
            session.put("x.ofi", BytesSource(b"x" * 100))
    return fault


class S3Fixtures(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, moto_s3: Any, s3_bucket: str) -> Endpoint:
        return s3_endpoint(moto_s3, s3_bucket)

    @pytest.fixture
    def symlink(self) -> str:
        return "S3 has no symbolic links"

    @pytest.fixture
    def wrong_credentials(self, moto_s3_auth: Any) -> Endpoint:
        return attrs.evolve(s3_endpoint(moto_s3_auth, moto_s3_auth.bucket), credentials={
            "access_key_id": moto_s3_auth.access_key_id,
            "secret_access_key": conformance.CANARY})

    @pytest.fixture
    def faults(self, forbidding_s3: Any, overloaded_s3: Any, full_s3: Any) -> dict[str, Any]:
        # AWS's buckets are never full; S3-compatible stores are (MinIO: 507).
        return {"permission": _put_to(forbidding_s3), "transient": _put_to(overloaded_s3),
                "full": _put_to(full_s3)}

    @pytest.fixture
    def tamper_partial(self, moto_s3: Any, s3_bucket: str) -> conformance.Tamper:
        def tamper(session: Any, path: str, token: Any, how: str) -> str | None:
            if how != "remove":
                return ("S3 keeps an interrupted upload as a multipart upload whose parts "
                        "are whole or absent; resume asks S3 which (list_parts)")
            moto_s3.client().abort_multipart_upload(
                Bucket=s3_bucket, Key=token["key"], UploadId=token["upload_id"])
            return None
        return tamper

    @pytest.fixture
    def broken_endpoint(self, moto_s3: Any) -> tuple[Endpoint, str]:
        return s3_endpoint(moto_s3, "no-such-bucket-offsite"), "bucket"

    @pytest.fixture
    def large_size(self) -> int:
        return 2 * MIN_PART + 4097  # multipart, with a short last part

    @pytest.fixture
    def name_limits(self, endpoint: Endpoint) -> conformance.NameLimits:
        # No folders, so no limit a name: a key of 1024 bytes, the prefix and its '/' included.
        prefix = len(endpoint.path.strip("/").encode()) + 1
        return conformance.NameLimits(folder=None, file=None, path=MAX_KEY - prefix)

    @pytest.fixture
    def heap_limit(self) -> int:
        # PARALLEL_PARTS parts of LARGE_PART in flight, one being read, and
        # botocore's request buffers: measured 44 MiB with 8 MiB parts, flat
        # whatever the size.
        return (PARALLEL_PARTS + 3) * LARGE_PART


class TestS3(conformance.AllTests, S3Fixtures):
    pass


def test_part_size_never_exceeds_10000_parts() -> None:
    for size in (1, MIN_PART, 50 * 1024**3, 5 * 1024**4):
        step = part_size(size)
        assert step >= MIN_PART and step % MiB == 0
        assert -(-size // step) <= MAX_PARTS


def test_parts_held_at_once_stay_within_part_memory() -> None:
    assert parts_at_once(part_size(1 << 30)) == PARALLEL_PARTS  # LARGE_PART parts: all at once
    for size in (100 << 30, 1 << 40, 4 << 40, 48 << 40):
        step = part_size(size)
        held = parts_at_once(step)
        assert 2 <= held <= PARALLEL_PARTS
        assert held * step <= max(PART_MEMORY, 2 * step), (size, step, held)


def test_large_parts_are_held_fewer_at_a_time(moto_s3: Any, s3_bucket: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A 1 TiB image's 105 MiB parts, scaled down: 16 MiB parts of a 64 MiB
    # file against 32 MiB of part memory, so one part goes while the next is
    # read. Four in flight would peak at about 90 MiB.
    monkeypatch.setattr(multipart, "MAX_PARTS", 4)
    monkeypatch.setattr(multipart, "PART_MEMORY", 32 * MiB)
    peak = _put_measuring_heap(s3_endpoint(moto_s3, s3_bucket), "large-parts.ofi",
                               GeneratedSource(64 * MiB, seed=3))
    parts = moto_s3.client().head_object(Bucket=s3_bucket, PartNumber=1,
                                         Key="backups/nightly/large-parts.ofi")
    assert parts["PartsCount"] == 4 and parts["ContentLength"] == 16 * MiB
    assert peak < 3 * 16 * MiB, f"put peaked at {peak / MiB:.1f} MiB"


def _put_measuring_heap(endpoint: Endpoint, name: str, source: GeneratedSource) -> int:
    """Put ``source`` as ``name`` and read it back whole; return the put's
    Python heap peak."""
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        gc.collect()
        tracemalloc.start()
        try:
            session.put(name, source)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        digest = hashlib.sha256()
        with session.get(name) as f:
            while chunk := f.read(MiB):
                digest.update(chunk)
    assert digest.hexdigest() == source.sha256()
    return peak


def _trusted(info: Any) -> Endpoint:
    endpoint = s3_endpoint(info, info.bucket)
    return attrs.evolve(endpoint, options={**endpoint.options, "ca_file": str(info.ca_file)})


def test_large_parts_over_https_stream_from_the_source(moto_s3_tls: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # 27 MiB parts (an 80 MiB file in at most 3 parts) are more than
    # PARALLEL_PARTS fit in PART_MEMORY: over HTTPS each goes straight from
    # the source, nothing of it held (measured: 10 MiB; buffered, three 20 MiB
    # parts at once: 132 MiB).
    assert 27 * MiB * PARALLEL_PARTS > multipart.PART_MEMORY
    monkeypatch.setattr(multipart, "MAX_PARTS", 3)
    peak = _put_measuring_heap(_trusted(moto_s3_tls), "streamed.ofi",
                               GeneratedSource(80 * MiB, seed=5))
    client, key = moto_s3_tls.client(), "backups/nightly/streamed.ofi"
    part = client.head_object(Bucket=moto_s3_tls.bucket, Key=key, PartNumber=1)
    assert part["PartsCount"] == 3 and part["ContentLength"] == 27 * MiB
    whole = client.head_object(Bucket=moto_s3_tls.bucket, Key=key, ChecksumMode="ENABLED")
    assert whole.get("ChecksumSHA256"), "the parts carried their SHA-256"
    assert peak < 16 * MiB, f"put peaked at {peak / MiB:.1f} MiB"


def test_parts_over_https_are_held_once(moto_s3_tls: Any) -> None:
    # Left to botocore, a part's checksum goes in a trailer over HTTPS, for
    # which botocore copies a bytes-like body first: the parts in
    # flight would be held twice (measured: 76 MiB). offsite sends the
    # checksum it computed in a header instead.
    peak = _put_measuring_heap(_trusted(moto_s3_tls), "held.ofi",
                               GeneratedSource(64 * MiB, seed=6))
    assert peak < (PARALLEL_PARTS + 2) * LARGE_PART, f"put peaked at {peak / MiB:.1f} MiB"


def test_a_streamed_upload_resumes_after_the_parts_that_arrived(
        moto_s3_tls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multipart, "MAX_PARTS", 3)
    step = 25 * MiB  # 3 parts of a 25 * 3 MiB file: streamed
    assert step * PARALLEL_PARTS > multipart.PART_MEMORY
    data = random_bytes(3 * step, seed=8)
    endpoint = _trusted(moto_s3_tls)
    tokens: list[dict[str, Any]] = []
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        with pytest.raises(SourceError):  # the source dies inside part 2
            session.put("resumed.ofi", FailingSource(data, step + 1000),
                        on_token=lambda t: tokens.append(dict(t)))
        client = moto_s3_tls.client()
        key = "backups/nightly/resumed.ofi"
        (upload,) = client.list_multipart_uploads(Bucket=moto_s3_tls.bucket,
                                                  Prefix=key)["Uploads"]
        parts = client.list_parts(Bucket=moto_s3_tls.bucket, Key=key,
                                  UploadId=upload["UploadId"])
        assert [p["PartNumber"] for p in parts["Parts"]] == [1]
        again = RecordingSource(data)
        session.put("resumed.ofi", again, resume=tokens[-1])
        assert again.offsets == [step], "only parts 2 and 3 are sent"
        with session.get("resumed.ofi") as f:
            assert f.read() == data


class _Huge:
    """A source announcing more than one S3 object can hold; never read."""

    size = 10_000 * (5 << 30) + 1

    def open(self, offset: int = 0) -> Any:
        raise AssertionError("read")


def test_a_file_too_large_for_s3_is_refused_before_anything_moves(moto_s3: Any,
                                                                  s3_bucket: str) -> None:
    endpoint = s3_endpoint(moto_s3, s3_bucket)
    with (Transport.for_endpoint(endpoint).connect(endpoint) as session,
          pytest.raises(Fatal, match=r"48\.8 TiB") as caught):
        session.put("huge.ofi", _Huge())
    assert "another kind" in str(caught.value.fix)
    assert "Uploads" not in moto_s3.client().list_multipart_uploads(Bucket=s3_bucket)


def test_resumed_multipart_sends_only_the_missing_parts(moto_s3: Any, s3_bucket: str) -> None:
    endpoint = s3_endpoint(moto_s3, s3_bucket)
    data = random_bytes(4 * MIN_PART + 123, seed=9)
    tokens: list[dict[str, Any]] = []
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        with pytest.raises(SourceError):  # the source dies inside part 3
            session.put("big.ofi", FailingSource(data, 2 * MIN_PART + 1000),
                        on_token=lambda t: tokens.append(dict(t)))
        client = moto_s3.client()
        key = "backups/nightly/big.ofi"
        (upload,) = client.list_multipart_uploads(Bucket=s3_bucket)["Uploads"]
        assert upload["UploadId"] == tokens[-1]["upload_id"]
        parts = client.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload["UploadId"])
        assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2]

        again = RecordingSource(data)
        session.put("big.ofi", again, resume=tokens[-1])
        assert again.offsets == [2 * MIN_PART], "only parts 3 and 4 are sent"
        with session.get("big.ofi") as f:
            assert f.read() == data
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)


@pytest.mark.parametrize("size", [1000, 2 * MIN_PART + 17])
def test_objects_carry_s3_sha256_checksums(moto_s3: Any, s3_bucket: str, size: int) -> None:
    # S3 checks every part's SHA-256 on arrival and keeps the object's. (It
    # also makes moto complete multipart uploads 2-3x faster.) put reports
    # the ETag, which listings show too: the journal keeps it, and a listing
    # with another one means the object was replaced.
    endpoint = s3_endpoint(moto_s3, s3_bucket)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put("sum.ofi", BytesSource(random_bytes(size, seed=4)))
        (listed,) = session.list()
    head = moto_s3.client().head_object(Bucket=s3_bucket, Key="backups/nightly/sum.ofi",
                                        ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256")
    assert placed.checksum == f"etag:{head['ETag'].strip(chr(34))}" == listed.checksum


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
def test_checksums_offsite_computes_are_botocores(algorithm: str) -> None:
    # offsite computes a held body's checksum itself (one pass, no trailer):
    # it must be the value botocore would have sent, which S3 checks.
    from botocore import httpchecksum

    data = random_bytes(3 * MiB + 5, seed=2)
    reference = getattr(httpchecksum, f"{algorithm.title()}Checksum")()
    reference.update(data)
    assert body_checksum(algorithm, data) == {
        f"Checksum{algorithm}": reference.b64digest()}
    assert body_checksum("CRC64NVME", data) == {}  # left to botocore


def test_checksum_option(moto_s3: Any, s3_bucket: str) -> None:
    plain = s3_endpoint(moto_s3, s3_bucket, checksum="none")
    with Transport.for_endpoint(plain).connect(plain) as session:
        assert session.put("p.ofi", BytesSource(b"x" * 10)).checksum.startswith("etag:")
    odd = s3_endpoint(moto_s3, s3_bucket, checksum="md4")
    with pytest.raises(Fatal, match="unknown checksum 'MD4'") as caught:
        Transport.for_endpoint(odd).connect(odd)  # refused before anything moves
    assert "none" in caught.value.fix


@pytest.mark.parametrize("checksum", ["SHA256", "CRC32", "SHA1", "none"])
def test_a_body_is_hashed_for_its_checksum_or_its_signature(moto_s3: Any, s3_bucket: str,
                                                            checksum: str) -> None:
    # With S3's SHA-256 in a signed header the store checks the body against
    # it: signing the body's SHA-256 as well (botocore's habit over plain
    # HTTP) hashed every byte twice. Without a checksum, or with a CRC that
    # other bytes can match, the signature is what covers the body. Observed
    # on the real requests as they leave.

    endpoint = s3_endpoint(moto_s3, s3_bucket, checksum=checksum)
    sent: list[tuple[str, str, bool]] = []

    def record(request: Any, **_kw: Any) -> None:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else str(v)
                   for k, v in request.headers.items()}
        sent.append((request.method, headers.get("x-amz-content-sha256", ""),
                     any(k.startswith("x-amz-checksum-") for k in headers)))

    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.conn.client.meta.events.register("before-send.s3", record)
        session.put("small.ofi", BytesSource(b"x" * 1000))
        session.put("large.ofi", BytesSource(random_bytes(2 * MIN_PART + 17, seed=5)))
    uploads = [(sha, has) for method, sha, has in sent if method == "PUT"]
    assert len(uploads) == 1 + 3  # one PutObject, three parts
    if checksum == "SHA256":
        assert all(sha == "UNSIGNED-PAYLOAD" and has for sha, has in uploads)
    else:
        assert all(len(sha) == 64 and has == (checksum != "none") for sha, has in uploads)


def test_store_without_checksums_says_how_to_turn_them_off(no_checksum_s3: Any,
                                                           moto_s3: Any) -> None:
    endpoint = Endpoint.from_url(
        "s3://nochecksums/folder", options={"endpoint_url": no_checksum_s3.endpoint_url,
                                            "region": "us-east-1"},
        credentials={"access_key_id": moto_s3.access_key_id,
                     "secret_access_key": moto_s3.secret_access_key})
    with Transport.for_endpoint(endpoint).connect(endpoint) as session, \
            pytest.raises(Fatal, match="NotImplemented") as caught:
        session.put("x.ofi", BytesSource(b"data"))
    assert 'checksum = "none"' in caught.value.fix
    assert moto_s3.secret_access_key not in str(caught.value)


def test_a_fresh_upload_aborts_the_abandoned_one(moto_s3: Any, s3_bucket: str) -> None:
    endpoint = s3_endpoint(moto_s3, s3_bucket)
    data = random_bytes(3 * MIN_PART, seed=2)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        with pytest.raises(SourceError):
            session.put("x.ofi", FailingSource(data, MIN_PART + 5))
        session.put("x.ofi", RecordingSource(data))  # no token: start over
    client = moto_s3.client()
    assert "Uploads" not in client.list_multipart_uploads(Bucket=s3_bucket)


def test_unicode_and_spaces_in_the_folder(moto_s3: Any, s3_bucket: str) -> None:
    endpoint = s3_endpoint(moto_s3, s3_bucket, folder="Sicherung Größe/日本")
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:

        session.put("a b/ü.ofi", BytesSource(b"data"))
        assert [f.path for f in session.list()] == ["a b/ü.ofi"]
    keys = [o["Key"] for o in moto_s3.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["Sicherung Größe/日本/a b/ü.ofi"]


def test_list_paginates(moto_s3: Any, s3_bucket: str) -> None:
    client = moto_s3.client()
    for i in range(1234):
        client.put_object(Bucket=s3_bucket, Key=f"backups/nightly/f{i:05d}", Body=b"x")
    endpoint = s3_endpoint(moto_s3, s3_bucket)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        assert len(session.list()) == 1234


def check_fails(endpoint: Endpoint, step: str) -> Any:
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.failed is not None and report.failed.name == step, report.steps
    error = report.failed.error
    assert error is not None and error.hint
    for secret in endpoint.secrets():
        assert secret not in str(error) and secret not in repr(report)
    return error


def test_missing_bucket(moto_s3: Any) -> None:
    error = check_fails(s3_endpoint(moto_s3, "offsite-missing-bucket"), "bucket")
    assert isinstance(error, NotFound) and "does not exist" in str(error)


def test_bad_keys(moto_s3_auth: Any) -> None:
    endpoint = s3_endpoint(moto_s3_auth, moto_s3_auth.bucket, folder="nightly")
    assert Transport.for_endpoint(endpoint).check(endpoint).ok, "the right keys work"
    wrong = attrs.evolve(endpoint, credentials={
        "access_key_id": moto_s3_auth.access_key_id, "secret_access_key": "wrong-secret-x"})
    assert isinstance(check_fails(wrong, "auth"), AuthError)
    unknown = attrs.evolve(endpoint, credentials={
        "access_key_id": "AKIAUNKNOWN000000000", "secret_access_key": "wrong-secret-y"})
    assert isinstance(check_fails(unknown, "auth"), AuthError)


@pytest.fixture
def aws_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AWS credential chain with nothing in it: no keys in the environment,
    no profile files (returns where the credentials file would be), no
    instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path / "aws-credentials"


def _keyless(server: Any, **options: Any) -> Endpoint:
    """An endpoint on ``server``'s bucket with no stored credentials."""
    return attrs.evolve(s3_endpoint(server, server.bucket, folder="nightly", **options),
                        credentials={})


def test_without_stored_keys_the_environment_is_used(moto_s3_auth: Any, aws_chain: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = _keyless(moto_s3_auth)
    error = check_fails(endpoint, "auth")
    assert isinstance(error, AuthError) and "no AWS credentials" in str(error)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3_auth.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_s3_auth.secret_access_key)
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.ok, report
    assert moto_s3_auth.secret_access_key not in repr(report)


def test_a_named_profile_gives_the_keys(moto_s3_auth: Any, aws_chain: Path) -> None:
    aws_chain.write_text(f"[default]\naws_access_key_id = AKIANOTTHEONE0000000\n"
                         f"aws_secret_access_key = wrong-default-secret\n"
                         f"[backup]\naws_access_key_id = {moto_s3_auth.access_key_id}\n"
                         f"aws_secret_access_key = {moto_s3_auth.secret_access_key}\n")
    assert isinstance(check_fails(_keyless(moto_s3_auth), "auth"), AuthError), \
        "without the option, the default profile's (wrong) keys are used"
    endpoint = _keyless(moto_s3_auth, profile="backup")
    assert Transport.for_endpoint(endpoint).check(endpoint).ok
    error = check_fails(_keyless(moto_s3_auth, profile="nightly-typo"), "auth")
    assert isinstance(error, AuthError) and "'nightly-typo'" in str(error)
    assert "profile" in error.hint


def test_wrong_region_is_detected_and_used(wrong_region_s3: Any, moto_s3: Any,
                                           caplog: pytest.LogCaptureFixture) -> None:
    endpoint = attrs.evolve(s3_endpoint(moto_s3, "some-bucket"),
                            options={"endpoint_url": wrong_region_s3.endpoint_url,
                                     "region": "us-east-1"})
    caplog.set_level(logging.WARNING)
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.failed is not None and report.failed.name == "bucket"
    assert "set region = \"eu-west-1\"" in caplog.text, "the operator gets the hint"
    signed = [r["headers"].get("Authorization", "") for r in wrong_region_s3.requests]
    assert any("/eu-west-1/s3/aws4_request" in h for h in signed), \
        "after the redirect, requests are signed for the bucket's real region"


def test_https_endpoint_is_verified_against_ca_file(moto_s3_tls: Any) -> None:
    endpoint = s3_endpoint(moto_s3_tls, moto_s3_tls.bucket)
    # Neither AWS_CA_BUNDLE nor botocore's bundle knows the test CA.
    error = check_fails(endpoint, "tls")
    assert isinstance(error, TLSFailed)
    assert "certificate verify failed" in str(error) and "ca_file" in error.hint
    trusted = attrs.evolve(endpoint, options={**endpoint.options,
                                              "ca_file": str(moto_s3_tls.ca_file)})
    report = Transport.for_endpoint(trusted).check(trusted)
    assert report.ok, report
    assert [s.name for s in report.steps][:3] == ["resolve", "connect", "tls"]
    data = random_bytes(2 * MIN_PART + 17, seed=9)  # multipart over TLS too
    with Transport.for_endpoint(trusted).connect(trusted) as session:
        session.put("tls/file.bin", BytesSource(data))
        with session.get("tls/file.bin") as remote:
            assert remote.read() == data


def test_https_to_a_plain_http_port(moto_s3: Any) -> None:
    plain = moto_s3.endpoint_url.replace("http://", "https://")
    endpoint = attrs.evolve(s3_endpoint(moto_s3, "b"), options={"endpoint_url": plain})
    error = check_fails(endpoint, "tls")
    assert isinstance(error, TLSFailed) and "serving TLS" in str(error)


def test_endpoint_that_is_not_s3(not_s3_server: Any, moto_s3: Any) -> None:
    endpoint = attrs.evolve(s3_endpoint(moto_s3, "b"),
                            options={"endpoint_url": not_s3_server.endpoint_url})
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert not report.ok
    assert report.failed is not None and report.failed.error is not None
    assert moto_s3.secret_access_key not in str(report.failed.error)


def test_replicate_with_consolidation_and_restore(moto_s3: Any, s3_bucket: str,
                                                   tmp_path: Path) -> None:
    dest = tmp_path / "destination"
    dest.mkdir()
    config = tmp_path / "offsite.toml"
    config.write_text(f'''
[[job]]
name = "nightly"
destination = "{dest}"
[[job.target]]
name = "cloud"
url = "s3://{s3_bucket}/offsite"
[job.target.options]
endpoint_url = "{moto_s3.endpoint_url}"
region = "{moto_s3.region}"
''')
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0) -> Any:
        result = runner.invoke(cli, ["--config", str(config), *args], input=input)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    def at_target() -> list[str]:  # "../key" for a key outside the target's folder
        listed = moto_s3.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
        return [posixpath.relpath(o["Key"], "offsite") for o in listed]

    # Uncompressed 12 MiB, 2 MiB changes: the full and "1..3" go up as
    # multipart uploads, incremental 4 as one PutObject.
    vol = endtoend.replicate_consolidate_restore(
        run, dest, tmp_path, at_target, target="cloud", size=12 << 20, block_size=256 << 10,
        compression="none", change=2 << 20, last_change=100_000, seed=4,
        credentials={"access_key_id": moto_s3.access_key_id,
                     "secret_access_key": moto_s3.secret_access_key})

    # Someone overwrites the full at the target with other bytes of its size:
    # the ETag the journal kept no longer matches, so the next run puts it again.
    client, full = moto_s3.client(), "offsite/vol-b001.ofi"
    size = client.head_object(Bucket=s3_bucket, Key=full)["ContentLength"]
    client.put_object(Bucket=s3_bucket, Key=full, Body=bytes(size))
    events = [json.loads(line) for line in run("run", "--json").stdout.splitlines()]
    assert [e["remote"] for e in events if e.get("event") == "upload-done"] == ["vol-b001.ofi"]
    restored = tmp_path / "restored.raw"  # where that restored point 4 first
    restored.unlink()
    run("restore", "nightly", "cloud", "vol-b001-i004.ofi", str(restored))
    assert restored.read_bytes() == vol.states[4]


@pytest.mark.parametrize("size", [1000, 2 * MIN_PART + 17])
def test_storage_class_and_encryption_reach_the_object(moto_s3: Any, s3_bucket: str,
                                                      size: int) -> None:
    # moto's server answers KMS too: a key of one's own, as an operator's would be.
    key_id = boto3.client("kms", endpoint_url=moto_s3.endpoint_url, region_name=moto_s3.region,
                          aws_access_key_id=moto_s3.access_key_id,
                          aws_secret_access_key=moto_s3.secret_access_key,
                          ).create_key()["KeyMetadata"]["KeyId"]
    endpoint = s3_endpoint(moto_s3, s3_bucket, storage_class="STANDARD_IA", sse="aws:kms",
                           sse_kms_key_id=key_id)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("enc.ofi", BytesSource(random_bytes(size, seed=6)))
    head = moto_s3.client().head_object(Bucket=s3_bucket, Key="backups/nightly/enc.ofi")
    assert head.get("StorageClass") == "STANDARD_IA"
    assert head.get("ServerSideEncryption") == "aws:kms"
    assert key_id in head.get("SSEKMSKeyId", "")


def test_a_connect_timeout_that_is_no_number_is_named(moto_s3: Any) -> None:
    endpoint = s3_endpoint(moto_s3, "any-bucket", connect_timeout="soon")
    with pytest.raises(Fatal, match="connect_timeout must be a positive number"):
        Transport.for_endpoint(endpoint).connect(endpoint)

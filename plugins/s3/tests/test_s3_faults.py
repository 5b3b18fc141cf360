"""Fault injection against moto's S3: kill -9 anywhere (multipart uploads
resumed by their parts), two runs at once, prefixes that overlap, the server
going away, and a store that is full or denies writes until it is fixed
(see :mod:`offsite.testing.faults`)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from offsite.config import Config
from offsite.errors import ConfigError
from offsite.testing import faults
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.proxy import HttpRefusingProxy, TcpProxy


def spec(moto_s3: Any, bucket: str, folder: str = "offsite") -> TargetSpec:
    return TargetSpec(f"s3://{bucket}/{folder}",
                      {"endpoint_url": moto_s3.endpoint_url, "region": moto_s3.region},
                      {"access_key_id": moto_s3.access_key_id,
                       "secret_access_key": moto_s3.secret_access_key})


def test_two_runs_at_once(tmp_path: Path, moto_s3: Any, s3_bucket: str) -> None:
    faults.two_runs_at_once(FaultSite(tmp_path, spec(moto_s3, s3_bucket), bwlimit="1M"))


def test_kill_nine_anywhere(tmp_path: Path, moto_s3: Any, s3_bucket: str) -> None:
    # 6 MiB images: the full goes as a multipart upload (5 MiB parts).
    site = FaultSite(tmp_path, spec(moto_s3, s3_bucket), size=6 << 20, bwlimit="3M")
    faults.kill_nine_anywhere(site)
    uploads = moto_s3.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert uploads == [], "every multipart upload was completed or aborted"


def test_the_replicator_killed_mid_upload_resumes(tmp_path: Path, moto_s3: Any,
                                                  s3_bucket: str) -> None:
    # 24 MiB: a multipart upload of 5 MiB parts, each part a checkpoint.
    site = FaultSite(tmp_path, spec(moto_s3, s3_bucket), size=24 << 20, bwlimit="2M")
    faults.replicator_killed_mid_upload(site)


@pytest.mark.parametrize(("second", "refused"), [("offsite/sub", True), ("offsite", True),
                                                  ("offsite2", False)])
def test_mirror_prefixes_that_overlap_are_refused(tmp_path: Path, moto_s3: Any, s3_bucket: str,
                                                  second: str, refused: bool) -> None:
    def target(folder: str, extra: str = "") -> str:
        return (f'[[job.target]]\nname = "t"\nurl = "s3://{s3_bucket}/{folder}"\n{extra}\n'
                f'[job.target.options]\nendpoint_url = "{moto_s3.endpoint_url}"\n')

    config = tmp_path / "offsite.toml"
    config.write_text(f'[[job]]\nname = "a"\ndestination = "{tmp_path / "a"}"\n'
                      + target("offsite", "mirror = true")
                      + f'[[job]]\nname = "b"\ndestination = "{tmp_path / "b"}"\n'
                      + target(second))
    if refused:
        with pytest.raises(ConfigError, match="mirrors") as caught:
            Config.load(config)
        assert caught.value.key == "job[1].target[0].url"
    else:
        Config.load(config)


def _via(moto_s3: Any, bucket: str, proxy: TcpProxy | HttpRefusingProxy) -> TargetSpec:
    spec_ = spec(moto_s3, bucket)
    if isinstance(proxy, HttpRefusingProxy):
        endpoint_url = proxy.endpoint_url
    else:
        url = urllib.parse.urlsplit(moto_s3.endpoint_url)
        endpoint_url = f"{url.scheme}://127.0.0.1:{proxy.port}"
    return TargetSpec(spec_.url, {**spec_.options, "endpoint_url": endpoint_url},
                      spec_.credentials)


def _upstream(moto_s3: Any) -> tuple[str, int]:
    url = urllib.parse.urlsplit(moto_s3.endpoint_url)
    return url.hostname or "127.0.0.1", url.port or 80


def test_the_server_goes_away_mid_transfer_and_comes_back(
        tmp_path: Path, moto_s3: Any, s3_bucket: str) -> None:
    with TcpProxy(*_upstream(moto_s3)) as proxy:
        site = FaultSite(tmp_path, _via(moto_s3, s3_bucket, proxy), size=12 << 20, bwlimit="4M")
        faults.server_outage(site, proxy)


def test_the_server_stays_away_and_the_other_target_finishes(
        tmp_path: Path, moto_s3: Any, s3_bucket: str) -> None:
    with TcpProxy(*_upstream(moto_s3)) as proxy:
        site = FaultSite(tmp_path, _via(moto_s3, s3_bucket, proxy), size=12 << 20, bwlimit="4M")
        faults.server_stays_down(site, proxy)


# moto can be made neither full nor to deny writes: a proxy in front of it
# answers writes as the real stores do until the test "fixes" the store.
@pytest.mark.parametrize(("status", "code", "says"), [
    (507, "XMinioStorageFull", ("full",)),  # MinIO with full disks
    (403, "QuotaExceeded", ("quota", "full")),  # a store's quota reached
    (403, "AccessDenied", ("permission", "denied")),  # a bucket policy denying writes
])
def test_a_store_that_refuses_writes_fails_clearly_then_the_fix_completes(
        tmp_path: Path, moto_s3: Any, s3_bucket: str, status: int, code: str,
        says: tuple[str, ...]) -> None:
    with HttpRefusingProxy(moto_s3.endpoint_url) as proxy:
        site = FaultSite(tmp_path, _via(moto_s3, s3_bucket, proxy), size=6 << 20)
        faults.target_fails_then_fixed(site, lambda: proxy.refuse(status, code),
                                       proxy.accept, says)
        assert proxy.refused, "the proxy never answered a write itself"

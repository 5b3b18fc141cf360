"""Fault injection against the real pyftpdlib servers: kill -9 anywhere, the
replicator killed mid-upload, and two runs at once (see
:mod:`offsite.testing.faults`), in FTP and in FTPS."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from offsite.testing import faults
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.proxy import TcpProxy
from offsite.transport import Endpoint
from offsite_ftp.testserver import FtpdInfo


@pytest.fixture(params=["ftp", "ftps"])
def server(request: pytest.FixtureRequest) -> FtpdInfo:
    return request.getfixturevalue("ftpd" if request.param == "ftp" else "ftpsd")


@pytest.fixture
def spec(server: FtpdInfo) -> Iterator[TargetSpec]:
    name = f"t-{uuid.uuid4().hex}"
    yield TargetSpec(server.url(name), server.options(), {"password": server.password})
    shutil.rmtree(server.root / name, ignore_errors=True)


def test_two_runs_at_once(tmp_path: Path, spec: TargetSpec) -> None:
    faults.two_runs_at_once(FaultSite(tmp_path, spec, bwlimit="1M"))


def test_kill_nine_anywhere(tmp_path: Path, spec: TargetSpec) -> None:
    faults.kill_nine_anywhere(FaultSite(tmp_path, spec))


def test_the_replicator_killed_mid_upload_resumes(tmp_path: Path, spec: TargetSpec) -> None:
    # 24 MiB at 2 MiB/s: segments of about 5 s (REST + STOR), each confirmed by SIZE.
    faults.replicator_killed_mid_upload(FaultSite(tmp_path, spec, size=24 << 20, bwlimit="2M"))


def _via(server: FtpdInfo, proxy: TcpProxy) -> TargetSpec:
    name = f"t-{uuid.uuid4().hex}"
    url = server.url(name).replace(f":{server.port}/", f":{proxy.port}/")
    return TargetSpec(url, server.options(), {"password": server.password})


def test_the_server_goes_away_mid_transfer_and_comes_back(tmp_path: Path, server: FtpdInfo) -> None:
    with TcpProxy(server.host, server.port) as proxy:
        site = FaultSite(tmp_path, _via(server, proxy), size=12 << 20, bwlimit="4M")
        faults.server_outage(site, proxy)


def test_the_server_stays_away_and_the_other_target_finishes(
        tmp_path: Path, server: FtpdInfo) -> None:
    with TcpProxy(server.host, server.port) as proxy:
        site = FaultSite(tmp_path, _via(server, proxy), size=12 << 20, bwlimit="4M")
        faults.server_stays_down(site, proxy)


def test_a_full_disk_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, server: FtpdInfo, spec: TargetSpec) -> None:
    site = FaultSite(tmp_path, spec, size=4 << 20, bwlimit="0")
    faults.target_full_then_fixed(site, _on_disk(server, spec))


def test_a_refused_folder_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, server: FtpdInfo, spec: TargetSpec) -> None:
    site = FaultSite(tmp_path, spec, size=1 << 20, bwlimit="0")
    faults.target_refuses_then_fixed(site, _on_disk(server, spec))


def _on_disk(server: FtpdInfo, spec: TargetSpec) -> Path:
    return server.on_disk(Endpoint.from_url(spec.url).path)

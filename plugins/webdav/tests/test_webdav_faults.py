"""Fault injection against wsgidav: kill -9 anywhere (an upload starts again
from its first byte, and never leaves half a file under a final name), the
replicator killed mid-upload, and two runs at once (see
:mod:`offsite.testing.faults`)."""

from __future__ import annotations

from pathlib import Path

from offsite.testing import faults
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.proxy import TcpProxy
from offsite_webdav.testserver import DavInfo


def spec(dav: DavInfo, folder: str) -> TargetSpec:
    options = {"ca_file": str(dav.ca_file)} if dav.ca_file else {}
    return TargetSpec(dav.url(folder), options, {"password": dav.password})


def test_two_runs_at_once(tmp_path: Path, dav_http: DavInfo, dav_folder: str) -> None:
    faults.two_runs_at_once(FaultSite(tmp_path, spec(dav_http, dav_folder), bwlimit="1M"))


def test_kill_nine_anywhere(tmp_path: Path, dav_https: DavInfo, dav_folder: str) -> None:
    faults.kill_nine_anywhere(FaultSite(tmp_path, spec(dav_https, dav_folder)))
    leftovers = [p.name for p in (dav_https.root / dav_folder).rglob(".*offsite-partial")]
    assert leftovers == [], "every partial upload was finished or cleaned up"


def test_the_replicator_killed_mid_upload_starts_the_file_again(
        tmp_path: Path, dav_http: DavInfo, dav_folder: str) -> None:
    # WebDAV has no partial PUT: the upload starts again at byte 0, and says so.
    site = FaultSite(tmp_path, spec(dav_http, dav_folder), size=24 << 20, bwlimit="2M")
    faults.replicator_killed_mid_upload(site, resumes=False)


def _via(dav: DavInfo, folder: str, proxy: TcpProxy) -> TargetSpec:
    spec_ = spec(dav, folder)
    return TargetSpec(spec_.url.replace(f":{dav.port}/", f":{proxy.port}/"), spec_.options,
                      spec_.credentials)


def test_the_server_goes_away_mid_transfer_and_comes_back(
        tmp_path: Path, dav_http: DavInfo, dav_folder: str) -> None:
    with TcpProxy(dav_http.host, dav_http.port) as proxy:
        site = FaultSite(tmp_path, _via(dav_http, dav_folder, proxy), size=12 << 20, bwlimit="4M")
        faults.server_outage(site, proxy)


def test_the_server_stays_away_and_the_other_target_finishes(
        tmp_path: Path, dav_http: DavInfo, dav_folder: str) -> None:
    with TcpProxy(dav_http.host, dav_http.port) as proxy:
        site = FaultSite(tmp_path, _via(dav_http, dav_folder, proxy), size=12 << 20, bwlimit="4M")
        faults.server_stays_down(site, proxy)


def test_a_full_disk_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, dav_http: DavInfo, dav_folder: str) -> None:
    site = FaultSite(tmp_path, spec(dav_http, dav_folder), size=4 << 20, bwlimit="0")
    # wsgidav answers a full disk with a bare 500 (no 507): all offsite can say.
    faults.target_full_then_fixed(site, dav_http.root / dav_folder, says=("http 500",))


def test_a_refused_folder_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, dav_http: DavInfo, dav_folder: str) -> None:
    site = FaultSite(tmp_path, spec(dav_http, dav_folder), size=1 << 20, bwlimit="0")
    # wsgidav answers a write its file system refuses with a bare 500 (no 403).
    faults.target_refuses_then_fixed(site, dav_http.root / dav_folder, says=("http 500",))

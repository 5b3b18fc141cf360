"""Fault injection against the real smbd: kill -9 anywhere, the replicator
killed mid-upload, two runs at once
(see :mod:`offsite.testing.faults`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offsite.testing import faults
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.proxy import TcpProxy


def spec(smbd: Any, folder: str) -> TargetSpec:
    return TargetSpec(smbd.url(folder), {}, {"password": smbd.password})


def test_two_runs_at_once(tmp_path: Path, smbd: Any, smb_folder: str) -> None:
    faults.two_runs_at_once(FaultSite(tmp_path, spec(smbd, smb_folder), bwlimit="1M"))


def test_kill_nine_anywhere(tmp_path: Path, smbd: Any, smb_folder: str) -> None:
    faults.kill_nine_anywhere(FaultSite(tmp_path, spec(smbd, smb_folder)))


def test_the_replicator_killed_mid_upload_resumes(tmp_path: Path, smbd: Any,
                                                  smb_folder: str) -> None:
    faults.replicator_killed_mid_upload(
        FaultSite(tmp_path, spec(smbd, smb_folder), size=24 << 20, bwlimit="2M"))


def _via(smbd: Any, folder: str, proxy: TcpProxy) -> TargetSpec:
    return TargetSpec(smbd.url(folder).replace(f":{smbd.port}/", f":{proxy.port}/"), {},
                      {"password": smbd.password})


def test_the_server_goes_away_mid_transfer_and_comes_back(
        tmp_path: Path, smbd: Any, smb_folder: str) -> None:
    with TcpProxy(smbd.host, smbd.port) as proxy:
        site = FaultSite(tmp_path, _via(smbd, smb_folder, proxy), size=12 << 20, bwlimit="4M")
        faults.server_outage(site, proxy)


def test_the_server_stays_away_and_the_other_target_finishes(
        tmp_path: Path, smbd: Any, smb_folder: str) -> None:
    with TcpProxy(smbd.host, smbd.port) as proxy:
        site = FaultSite(tmp_path, _via(smbd, smb_folder, proxy), size=12 << 20, bwlimit="4M")
        faults.server_stays_down(site, proxy)


def test_a_full_disk_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, smbd: Any, smb_folder: str) -> None:
    site = FaultSite(tmp_path, spec(smbd, smb_folder), size=4 << 20, bwlimit="0")
    faults.target_full_then_fixed(site, smbd.root / smb_folder)


def test_a_refused_folder_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, smbd: Any, smb_folder: str) -> None:
    site = FaultSite(tmp_path, spec(smbd, smb_folder), size=1 << 20, bwlimit="0")
    faults.target_refuses_then_fixed(site, smbd.root / smb_folder)

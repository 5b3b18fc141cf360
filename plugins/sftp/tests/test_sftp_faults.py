"""Fault injection against the real sshd: kill -9 anywhere, two runs at once,
and folder overlaps on this machine (see :mod:`offsite.testing.faults`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offsite.config import Config
from offsite.errors import ConfigError
from offsite.testing import faults
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.proxy import TcpProxy


def spec(sshd: Any, folder: str) -> TargetSpec:
    return TargetSpec(sshd.url(folder), {"known_hosts": str(sshd.known_hosts)},
                      {"password": sshd.password})


def test_two_runs_at_once(tmp_path: Path, sshd: Any, sftp_folder: str) -> None:
    faults.two_runs_at_once(FaultSite(tmp_path, spec(sshd, sftp_folder), bwlimit="1M"))


def test_kill_nine_anywhere(tmp_path: Path, sshd: Any, sftp_folder: str) -> None:
    faults.kill_nine_anywhere(FaultSite(tmp_path, spec(sshd, sftp_folder)))


def test_a_server_on_this_machine_never_writes_into_a_destination(tmp_path: Path,
                                                                   sshd: Any) -> None:
    # The sshd runs here: its folder is this machine's, compared as such.
    destination = sshd.root / "images"
    destination.mkdir(exist_ok=True)
    config = tmp_path / "offsite.toml"
    config.write_text(f'[[job]]\nname = "j"\ndestination = "{destination}"\n'
                      f'[[job.target]]\nname = "t"\nurl = "{sshd.url("")}"\nmirror = true\n')
    with pytest.raises(ConfigError) as caught:
        Config.load(config)
    assert caught.value.key == "job[0].target[0].url"
    assert "holds the destination of job 'j'" in caught.value.detail


def test_two_mirror_targets_in_one_folder_are_refused(tmp_path: Path, sshd: Any,
                                                      sftp_folder: str) -> None:
    url = sshd.url(sftp_folder)
    config = tmp_path / "offsite.toml"
    config.write_text(
        f'[[job]]\nname = "a"\ndestination = "{tmp_path / "a"}"\n'
        f'[[job.target]]\nname = "t"\nurl = "{url}"\nmirror = true\n'
        f'[[job]]\nname = "b"\ndestination = "{tmp_path / "b"}"\n'
        f'[[job.target]]\nname = "t"\nurl = "{url}/sub"\n')
    with pytest.raises(ConfigError, match="mirrors"):
        Config.load(config)


def test_the_replicator_killed_mid_upload_resumes(tmp_path: Path, sshd: Any,
                                                  sftp_folder: str) -> None:
    faults.replicator_killed_mid_upload(
        FaultSite(tmp_path, spec(sshd, sftp_folder), size=24 << 20, bwlimit="2M"))


def _via(sshd: Any, folder: str, proxy: TcpProxy, tmp_path: Path) -> TargetSpec:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts.read_text().replace(f"]:{sshd.port} ", f"]:{proxy.port} "))
    return TargetSpec(sshd.url(folder).replace(f":{sshd.port}/", f":{proxy.port}/"),
                      {"known_hosts": str(known)}, {"password": sshd.password})


def test_the_server_goes_away_mid_transfer_and_comes_back(tmp_path: Path, sshd: Any,
                                                          sftp_folder: str) -> None:
    with TcpProxy(sshd.host, sshd.port) as proxy:
        site = FaultSite(tmp_path, _via(sshd, sftp_folder, proxy, tmp_path),
                         size=12 << 20, bwlimit="4M")
        faults.server_outage(site, proxy)


def test_the_server_stays_away_and_the_other_target_finishes(tmp_path: Path, sshd: Any,
                                                             sftp_folder: str) -> None:
    with TcpProxy(sshd.host, sshd.port) as proxy:
        site = FaultSite(tmp_path, _via(sshd, sftp_folder, proxy, tmp_path),
                         size=12 << 20, bwlimit="4M")
        faults.server_stays_down(site, proxy)


def test_a_login_cut_short_is_retried_and_a_refused_one_is_not() -> None:
    import paramiko

    from offsite.errors import AuthError, Transient
    from offsite_sftp import plugin

    cut = paramiko.AuthenticationException("Authentication failed: transport shut down or saw EOF")
    assert isinstance(plugin.translate_error(cut), Transient)
    refused = paramiko.AuthenticationException("Authentication failed.")
    assert isinstance(plugin.translate_error(refused), AuthError)


def test_a_full_disk_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, sshd: Any, sftp_folder: str) -> None:
    site = FaultSite(tmp_path, spec(sshd, sftp_folder), size=4 << 20, bwlimit="0")
    faults.target_full_then_fixed(site, sshd.root / sftp_folder)


def test_a_refused_folder_at_the_server_fails_clearly_then_the_fix_completes(
        tmp_path: Path, sshd: Any, sftp_folder: str) -> None:
    site = FaultSite(tmp_path, spec(sshd, sftp_folder), size=1 << 20, bwlimit="0")
    faults.target_refuses_then_fixed(site, sshd.root / sftp_folder)

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

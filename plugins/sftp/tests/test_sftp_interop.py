"""rclone reads what offsite placed over SFTP, and offsite leaves alone or
adopts what rclone put there (offsite.testing.interop)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from offsite.testing import interop
from offsite.testing.faults import TargetSpec

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")


def test_rclone_interop(tmp_path: Path, sshd: Any, sftp_folder: str) -> None:
    spec = TargetSpec(sshd.url(sftp_folder), {"known_hosts": str(sshd.known_hosts)},
                      {"password": sshd.password})
    interop.rclone_interop(spec, f":sftp:{sshd.root}/{sftp_folder}", tmp_path,
                           env=sshd.rclone_env())

"""rclone reads what offsite placed over FTP and FTPS, and offsite leaves
alone or adopts what rclone put there (offsite.testing.interop)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from offsite.testing import interop
from offsite.testing.faults import TargetSpec

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")


@pytest.mark.parametrize("server", ["ftpd", "ftpsd"])
def test_rclone_interop(tmp_path: Path, request: pytest.FixtureRequest, server: str) -> None:
    ftp = request.getfixturevalue(server)
    folder = f"t-{uuid.uuid4().hex}"
    spec = TargetSpec(ftp.url(folder), ftp.options(), {"password": ftp.password})
    # rclone wants its own reversible "obscured" form, not the plain password.
    obscured = subprocess.run(["rclone", "obscure", "-"], input=ftp.password, text=True,
                              capture_output=True, check=True).stdout.strip()
    try:
        interop.rclone_interop(spec, ftp.rclone_remote(folder), tmp_path,
                               env=ftp.rclone_env(obscured))
    finally:
        shutil.rmtree(ftp.root / folder, ignore_errors=True)

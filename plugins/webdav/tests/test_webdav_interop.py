"""rclone reads what offsite placed over WebDAV (HTTP and HTTPS), and offsite
leaves alone or adopts what rclone put there (offsite.testing.interop)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from offsite.testing import interop
from offsite.testing.faults import TargetSpec

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")


@pytest.mark.parametrize("server", ["dav_http", "dav_https"])
def test_rclone_interop(tmp_path: Path, request: pytest.FixtureRequest, server: str,
                        dav_folder: str) -> None:
    dav = request.getfixturevalue(server)
    options = {"ca_file": str(dav.ca_file)} if dav.ca_file else {}
    spec = TargetSpec(dav.url(dav_folder), options, {"password": dav.password})
    interop.rclone_interop(spec, f":webdav:{dav_folder}", tmp_path, env=dav.rclone_env(),
                           flags=dav.rclone_flags())

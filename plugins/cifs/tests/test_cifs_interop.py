"""rclone reads what offsite placed on an SMB share, and offsite leaves alone
or adopts what rclone put there (offsite.testing.interop).

rclone 1.60's SMB client cannot sign, and the suite's smbd mandates
signing: this module starts one smbd of its own that signs when the client
asks (offsite still does), as bench/cifs.py does (../shared/SERVERS.md §2).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offsite.testing import interop
from offsite.testing.faults import TargetSpec

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")


@pytest.fixture(scope="module")
def smbd_unsigned() -> Iterator[Any]:
    if os.geteuid() != 0 or not os.access("/usr/sbin/smbd", os.X_OK):
        pytest.skip("needs root and /usr/sbin/smbd")
    from offsite_cifs.testserver import run_smbd

    with run_smbd(signing="default") as info:
        yield info


def test_rclone_interop(tmp_path: Path, smbd_unsigned: Any) -> None:
    smbd = smbd_unsigned
    spec = TargetSpec(smbd.url("interop"), {}, {"password": smbd.password})
    interop.rclone_interop(spec, f":smb:{smbd.share}/interop", tmp_path, env=smbd.rclone_env())

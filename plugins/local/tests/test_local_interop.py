"""rclone reads what offsite placed in a local folder, and offsite leaves
alone or adopts what rclone put there (offsite.testing.interop)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from offsite.testing import interop
from offsite.testing.faults import TargetSpec

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")


def test_rclone_interop(tmp_path: Path) -> None:
    folder = tmp_path / "target"
    folder.mkdir()
    interop.rclone_interop(TargetSpec(folder.as_uri()), str(folder), tmp_path / "work")

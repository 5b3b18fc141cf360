"""rclone reads what offsite placed in S3 (moto), and offsite leaves alone or
adopts what rclone put there (offsite.testing.interop)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from offsite.testing import interop
from offsite.testing.faults import TargetSpec

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")


def test_rclone_interop(tmp_path: Path, moto_s3: Any, s3_bucket: str) -> None:
    spec = TargetSpec(f"s3://{s3_bucket}/offsite",
                      {"endpoint_url": moto_s3.endpoint_url, "region": moto_s3.region},
                      {"access_key_id": moto_s3.access_key_id,
                       "secret_access_key": moto_s3.secret_access_key})
    interop.rclone_interop(spec, f":s3:{s3_bucket}/offsite", tmp_path,
                           env=moto_s3.rclone_env())

"""Restore and verify straight from moto's S3 server: the core's remote-read tests."""

from __future__ import annotations

from typing import Any

import pytest

from offsite.testing import conformance, remote_read
from offsite.transport import Endpoint


class S3Target(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, moto_s3: Any, s3_bucket: str) -> Endpoint:
        return Endpoint.from_url(
            f"s3://{s3_bucket}/backups", name="s3-test",
            options={"endpoint_url": moto_s3.endpoint_url, "region": moto_s3.region},
            credentials={"access_key_id": moto_s3.access_key_id,
                         "secret_access_key": moto_s3.secret_access_key})


class TestS3RemoteRead(remote_read.RemoteReadTests, S3Target):
    pass

"""Restore and verify straight from a real smbd: the core's remote-read tests."""

from __future__ import annotations

from typing import Any

import pytest

from offsite.testing import conformance, remote_read
from offsite.testing.sources import MiB
from offsite.transport import Endpoint


class SmbTarget(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, smbd: Any, smb_folder: str) -> Endpoint:
        return Endpoint.from_url(smbd.url(smb_folder), name="smb-test",
                                 credentials={"password": smbd.password})

    @pytest.fixture
    def read_heap_limit(self) -> int:
        # A get keeps 4 MiB of 1 MiB reads in flight, and smbprotocol holds
        # each answer two or three times on its way (the socket's message,
        # the SMB2 header's data, the READ response's buffer): measured 9 MiB.
        return 16 * MiB


class TestSmbRemoteRead(remote_read.RemoteReadTests, SmbTarget):
    pass

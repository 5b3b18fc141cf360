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
        # A get keeps 8 MiB of 4 MiB reads in flight, each answer held as
        # received until it is handed out (offsite_cifs.receive), and the
        # one being handed out (4 MiB) besides; the restore's own queue holds
        # the rest: measured 13.9 MiB.
        return 20 * MiB


class TestSmbRemoteRead(remote_read.RemoteReadTests, SmbTarget):
    pass

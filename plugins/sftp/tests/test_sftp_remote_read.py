"""Restore and verify straight from a real sshd: the core's remote-read tests."""

from __future__ import annotations

from typing import Any

import pytest

from offsite.testing import conformance, remote_read
from offsite.testing.sources import MiB
from offsite.transport import Endpoint


class SftpTarget(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, sshd: Any, sftp_folder: str) -> Endpoint:
        return Endpoint.from_url(sshd.url(sftp_folder), name="sftp-test",
                                 options={"known_hosts": str(sshd.known_hosts)},
                                 credentials={"password": sshd.password})

    @pytest.fixture
    def read_heap_limit(self) -> int:
        # paramiko holds what the SSH window lets in (8 MiB) before it is read:
        # measured 2.5-8.6 MiB, offsite's own share under 1 MiB.
        return 16 * MiB


class TestSftpRemoteRead(remote_read.RemoteReadTests, SftpTarget):
    pass

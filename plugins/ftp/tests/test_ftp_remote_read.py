"""Restore and verify straight from the real pyftpdlib servers: the core's
remote-read tests, in FTP and in FTPS."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from offsite.testing import conformance, remote_read
from offsite.transport import Endpoint
from offsite_ftp.testserver import FtpdInfo


class FtpTarget(conformance.TransportFixtures):
    @pytest.fixture(params=["ftp", "ftps"])
    def server(self, request: pytest.FixtureRequest) -> FtpdInfo:
        return request.getfixturevalue("ftpd" if request.param == "ftp" else "ftpsd")

    @pytest.fixture
    def endpoint(self, server: FtpdInfo) -> Iterator[Endpoint]:
        name = f"t-{uuid.uuid4().hex}"
        yield Endpoint.from_url(server.url(name), name="ftp-test", options=server.options(),
                                credentials={"password": server.password})
        shutil.rmtree(server.root / name, ignore_errors=True)


class TestFtpRemoteRead(remote_read.RemoteReadTests, FtpTarget):
    pass

"""Restore and verify straight from wsgidav (HTTP and HTTPS): the core's remote-read tests."""

from __future__ import annotations

import pytest

from offsite.testing import conformance, remote_read
from offsite.transport import Endpoint
from offsite_webdav.testserver import DavInfo


class DavTarget(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, dav: DavInfo, dav_folder: str) -> Endpoint:
        return dav.endpoint(f"{dav_folder}/remote")


class TestWebdavRemoteReadHTTP(remote_read.RemoteReadTests, DavTarget):
    @pytest.fixture
    def dav(self, dav_http: DavInfo) -> DavInfo:
        return dav_http


class TestWebdavRemoteReadHTTPS(remote_read.RemoteReadTests, DavTarget):
    @pytest.fixture
    def dav(self, dav_https: DavInfo) -> DavInfo:
        return dav_https

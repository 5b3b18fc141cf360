"""offsite-webdav against wsgidav over HTTP and HTTPS: the conformance suite."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from offsite.testing import conformance
from offsite.transport import BytesSource, Endpoint
from offsite_webdav.testserver import READONLY, DavInfo


def put_to(address: str) -> conformance.Fault:
    """A put to a fake WebDAV server at ``address`` (see conftest's fake_dav)."""
    def fault(provoke: conformance.Provoke) -> None:
        endpoint = Endpoint.from_url(f"webdav://u@{address}/backups", name="dav-test",
                                     credentials={"password": "any"})
        with provoke.transport.connect(endpoint) as session:
            session.put("x.ofi", BytesSource(b"x" * 100))
    return fault


class DavFixtures(conformance.TransportFixtures):
    """Everything but the server; the two subclasses pick HTTP or HTTPS."""

    @pytest.fixture
    def dav(self) -> DavInfo:
        raise NotImplementedError

    @pytest.fixture
    def endpoint(self, dav: DavInfo, dav_folder: str) -> Endpoint:
        return dav.endpoint(f"{dav_folder}/backups")

    @pytest.fixture
    def broken_endpoint(self, dav: DavInfo, dav_folder: str) -> tuple[Endpoint, str]:
        (dav.root / dav_folder).mkdir()
        (dav.root / dav_folder / "a-file").write_bytes(b"not a folder")
        return dav.endpoint(f"{dav_folder}/a-file/backups"), "folder"

    @pytest.fixture
    def wrong_credentials(self, endpoint: Endpoint) -> Endpoint:
        return attrs.evolve(endpoint, credentials={"password": conformance.CANARY})

    @pytest.fixture
    def faults(self, dav: DavInfo, fake_dav: Any) -> dict[str, Any]:
        def refused(provoke: conformance.Provoke) -> None:
            # wsgidav's read-only share answers a PUT with 403.
            with provoke.transport.connect(dav.endpoint(READONLY)) as session:
                session.put("x.ofi", BytesSource(b"x" * 100))

        # wsgidav on a full disk answers 500 (it does not map ENOSPC), and a
        # disk cannot be filled here: a fake server answers 507 as WebDAV's
        # RFC 4918 says a full one must; another 503 as a busy one does.
        return {"permission": refused, "full": put_to(fake_dav(507)),
                "transient": put_to(fake_dav(503))}

    @pytest.fixture
    def unstorable(self) -> dict[str, str]:
        # WebDAV holds '?' (percent-encoded); wsgidav, the test server, does
        # not, and the plugin refuses it there by name (see offsite_webdav).
        return {r"\?": "wsgidav reads a MOVE's Destination header decoded: no '?' in names"}

    @pytest.fixture
    def supports_resume(self) -> bool:
        return False  # WebDAV has no standard partial PUT

    @pytest.fixture
    def symlink(self) -> str:
        return ("WebDAV shows no symbolic links: what a link on the server's disk is, "
                "is the server's")


class TestWebdavHTTP(conformance.AllTests, DavFixtures):
    @pytest.fixture
    def dav(self, dav_http: DavInfo) -> DavInfo:
        return dav_http


class TestWebdavHTTPS(conformance.AllTests, DavFixtures):
    @pytest.fixture
    def dav(self, dav_https: DavInfo) -> DavInfo:
        return dav_https

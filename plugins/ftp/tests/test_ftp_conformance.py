"""offsite-ftp against a real pyftpdlib server: the core conformance suite in
plain FTP, in explicit FTPS (TLS required), and the listing tests once more
against a server without MLSD (the LIST fallback)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import attrs
import pytest

from offsite.testing import conformance
from offsite.testing.sources import random_bytes
from offsite.transport import BytesSource, Endpoint
from offsite_ftp.testserver import FtpdInfo


def ftp_endpoint(server: FtpdInfo, folder: str, **options: object) -> Endpoint:
    return Endpoint.from_url(server.url(folder), name="ftp-test",
                             options={**server.options(), **options},
                             credentials={"password": server.password})


def _faults(server: FtpdInfo) -> dict[str, conformance.Fault | str]:
    def permission(provoke: conformance.Provoke) -> None:
        folder = server.on_disk(provoke.endpoint.path, "read-only")
        folder.mkdir()
        server.deny_writes(folder)  # 550 Not enough privileges
        provoke.session.put("read-only/x.ofi", BytesSource(b"x"))

    def full(provoke: conformance.Provoke) -> None:
        folder = server.on_disk(provoke.endpoint.path, "small")
        folder.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                          capture_output=True).returncode:
            pytest.skip("full: cannot mount a small tmpfs here (that needs root)")
        try:  # 426 No space left on device; transfer aborted.
            provoke.session.put("small/big.ofi", BytesSource(random_bytes(1 << 20)))
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=True)

    def transient(provoke: conformance.Provoke) -> None:
        # The control connection drops under the session, as a flaky network does.
        provoke.session.conn.ftp.sock.shutdown(socket.SHUT_RDWR)
        provoke.session.list()

    return {"permission": permission, "full": full, "transient": transient}


class FtpFixtures(conformance.TransportFixtures):
    @pytest.fixture
    def server(self, ftpd: FtpdInfo) -> FtpdInfo:
        return ftpd

    @pytest.fixture
    def folder(self, server: FtpdInfo) -> Iterator[str]:
        name = f"t-{uuid.uuid4().hex}"
        yield name
        shutil.rmtree(server.root / name, ignore_errors=True)

    @pytest.fixture
    def endpoint(self, server: FtpdInfo, folder: str) -> Endpoint:
        return ftp_endpoint(server, folder)

    @pytest.fixture
    def broken_endpoint(self, server: FtpdInfo) -> tuple[Endpoint, str]:
        return ftp_endpoint(server, "a-file"), "folder"

    @pytest.fixture
    def wrong_credentials(self, endpoint: Endpoint) -> Endpoint:
        return attrs.evolve(endpoint, credentials={"password": conformance.CANARY})

    @pytest.fixture
    def faults(self, server: FtpdInfo) -> dict[str, conformance.Fault | str]:
        return _faults(server)

    @pytest.fixture
    def symlink(self) -> str:
        return ("an MLSD listing follows links and shows a linked folder as a folder: FTP "
                "cannot tell links apart (delete removes a link itself: DELE)")

    @pytest.fixture
    def stream_size(self) -> int:
        # pyftpdlib runs in this process (its thread shares the GIL with the
        # client): 64 MiB keeps the suite quick and is 16 segments' worth of
        # the first upload segment, far past any buffer.
        return 64 * conformance.MiB


class FtpsFixtures(FtpFixtures):
    @pytest.fixture
    def server(self, ftpsd: FtpdInfo) -> FtpdInfo:
        return ftpsd


class ListFallbackFixtures(FtpFixtures):
    @pytest.fixture
    def server(self, ftpd_list: FtpdInfo) -> FtpdInfo:
        return ftpd_list


class TestFtp(conformance.AllTests, FtpFixtures):
    pass


class TestFtps(conformance.AllTests, FtpsFixtures):
    pass


class TestFtpListFallback(conformance.ListTests, conformance.DeleteTests,
                          conformance.UnicodeTests, conformance.NameTests,
                          ListFallbackFixtures):
    pass

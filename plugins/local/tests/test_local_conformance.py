"""offsite-local against the core conformance suite, plus what is local-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from offsite import paths
from offsite.errors import SourceError
from offsite.session import Session
from offsite.testing import conformance
from offsite.testing.sources import FailingSource, random_bytes
from offsite.transport import BytesSource, Endpoint


class LocalFixtures(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, tmp_path: Path) -> Endpoint:
        return Endpoint.from_url((tmp_path / "target ü").as_uri(), name="local")

    @pytest.fixture
    def broken_endpoint(self, tmp_path: Path) -> tuple[Endpoint, str]:
        (tmp_path / "a-file").write_bytes(b"not a folder")
        return Endpoint.from_url((tmp_path / "a-file").as_uri(), name="broken"), "folder"


class TestLocal(conformance.AllTests, LocalFixtures):
    pass


class TestLocalOnly(LocalFixtures):
    def test_partial_is_in_same_folder_and_hidden(
        self, session: Session, endpoint: Endpoint
    ) -> None:
        data = random_bytes(3_000_000)
        with pytest.raises(SourceError):
            session.put("s/img.ofi", FailingSource(data, 2_000_000))
        partial = Path(endpoint.path, paths.partial_path("s/img.ofi"))
        assert partial.parent == Path(endpoint.path, "s")
        assert partial.name.startswith(".")
        # What arrived before the failure was kept (fsynced) for a resume.
        assert partial.stat().st_size == 2_000_000
        assert not Path(endpoint.path, "s/img.ofi").exists()

    def test_url_with_host_is_refused(self, transport, tmp_path: Path) -> None:
        from offsite.errors import Fatal

        endpoint = Endpoint.from_url(f"file://nas.example{tmp_path}")
        with pytest.raises(Fatal, match=r"not on host 'nas\.example'"):
            transport.connect(endpoint)

    def test_full_disk_is_fatal_with_fix(self, session: Session) -> None:
        # /dev/full fails every write with ENOSPC: the plugin must say so plainly.
        from offsite.errors import Fatal

        if not os.path.exists("/dev/full"):
            return
        err = session.transport.translate(
            OSError(28, "No space left on device", "/dev/full"),
            endpoint=session.endpoint, step="put", path="x",
        )
        assert isinstance(err, Fatal)
        assert "no space left" in str(err) and err.hint

    def test_put_from_file_source(self, session: Session, tmp_path: Path) -> None:
        from offsite.transport import FileSource

        src = tmp_path / "src.bin"
        src.write_bytes(random_bytes(70_000))
        placed = session.put("from-file.ofi", FileSource(src))
        assert placed.size == 70_000
        with session.get("from-file.ofi") as f:
            assert f.read() == src.read_bytes()

    def test_bytes_source_repr_is_short(self) -> None:
        assert "bytes" in repr(BytesSource(b"x" * 10_000))
        assert len(repr(BytesSource(b"x" * 10_000))) < 60

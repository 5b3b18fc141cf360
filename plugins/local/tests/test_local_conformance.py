"""offsite-local against the core conformance suite, plus what is local-only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from offsite import paths
from offsite.errors import SourceError
from offsite.session import Session
from offsite.testing import conformance
from offsite.testing.sources import FailingSource, random_bytes
from offsite.transport import BytesSource, Endpoint


def _read_only_folder(provoke: conformance.Provoke) -> None:
    """A folder at the target that refuses writes, even to root (immutable)."""
    folder = Path(provoke.endpoint.path, "locked")
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            provoke.session.put("locked/x.ofi", BytesSource(b"x"))
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("permission: cannot make a folder immutable here (chattr +i)")
    try:
        provoke.session.put("locked/x.ofi", BytesSource(b"x"))
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def _full_folder(provoke: conformance.Provoke) -> None:
    """A folder at the target on a 256 KiB tmpfs, and a 1 MiB file put into it."""
    folder = Path(provoke.endpoint.path, "small")
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("full: cannot mount a small tmpfs here (that needs root)")
    try:
        provoke.session.put("small/big.ofi", BytesSource(random_bytes(1 << 20)))
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _link(root: Path, link: str, to: str) -> None:
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(root / to)


class LocalFixtures(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, tmp_path: Path) -> Endpoint:
        return Endpoint.from_url((tmp_path / "target ü").as_uri(), name="local")

    @pytest.fixture
    def broken_endpoint(self, tmp_path: Path) -> tuple[Endpoint, str]:
        (tmp_path / "a-file").write_bytes(b"not a folder")
        return Endpoint.from_url((tmp_path / "a-file").as_uri(), name="broken"), "folder"

    @pytest.fixture
    def wrong_credentials(self) -> str:
        return "a local folder takes no credentials"

    @pytest.fixture
    def symlink(self, endpoint: Endpoint) -> conformance.Symlink:
        return lambda link, to: _link(Path(endpoint.path), link, to)

    @pytest.fixture
    def faults(self) -> dict[str, conformance.Fault | str]:
        return {
            "permission": _read_only_folder,
            "full": _full_folder,
            "transient": ("a local folder fails temporarily only where the disk or the "
                          "network mount under it does (EIO, ESTALE), which a test cannot "
                          "bring about"),
        }


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

"""Real pyftpdlib servers on 127.0.0.1 for the FTP plugin's tests.

Session fixtures, each a :class:`~offsite_ftp.testserver.FtpdInfo`:

* ``ftpd``: plain FTP (no TLS offered);
* ``ftpsd``: explicit FTPS, TLS required on control and data connections,
  its certificate from a throw-away CA (``ftpsd.ca_file``);
* ``ftpd_offered``: TLS offered but not required (``ftp://`` must refuse to
  send a password to it);
* ``ftpsd_misnamed``: FTPS with a certificate for another host name;
* ``ftpd_list``: plain FTP without MLSD/MLST (listings by LIST).

Each home holds a file ``a-file`` (a target path that is no folder). Tests
work in a fresh folder of their own (``folder`` fixtures), removed after.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offsite.testing.certs import TestCerts, make_certs
from offsite_ftp.testserver import FtpdInfo, run_ftpd


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: object
           ) -> Iterator[FtpdInfo]:
    home = tmp_path_factory.mktemp(name)
    (home / "a-file").write_bytes(b"not a folder")
    with run_ftpd(home, **kwargs) as info:  # type: ignore[arg-type]
        yield info


@pytest.fixture(scope="session")
def ftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpdInfo]:
    yield from _serve(tmp_path_factory, "ftp-home")


@pytest.fixture(scope="session")
def ftpsd(tmp_path_factory: pytest.TempPathFactory, certs: TestCerts) -> Iterator[FtpdInfo]:
    yield from _serve(tmp_path_factory, "ftps-home", tls="required", certs=certs)


@pytest.fixture(scope="session")
def ftpsd_misnamed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpdInfo]:
    """FTPS whose certificate names backup.example.com, not 127.0.0.1."""
    certs = make_certs(tmp_path_factory.mktemp("misnamed-certs"), host="backup.example.com")
    yield from _serve(tmp_path_factory, "ftps-misnamed-home", tls="required", certs=certs)


@pytest.fixture(scope="session")
def ftpd_offered(tmp_path_factory: pytest.TempPathFactory, certs: TestCerts
                 ) -> Iterator[FtpdInfo]:
    yield from _serve(tmp_path_factory, "ftp-offered-home", tls="offered", certs=certs)


@pytest.fixture(scope="session")
def ftpd_list(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpdInfo]:
    yield from _serve(tmp_path_factory, "ftp-list-home", mlsd=False)


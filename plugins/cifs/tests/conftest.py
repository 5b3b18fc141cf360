"""A real Samba smbd on 127.0.0.1 for the SMB plugin's tests.

Fixtures:

* ``smbd`` (session): the server of :func:`offsite_cifs.testserver.run_smbd`,
  a throw-away smbd (signing mandatory) with a Unix test user and the shares
  ``backup`` (read-write), ``readonly`` and ``sealed`` (encryption required).
  Yields an :class:`~offsite_cifs.testserver.SmbdInfo`.
* ``smb_folder`` (function): a fresh, not yet created folder name relative to
  the share's root; removed after the test.

Why root is needed: smbd maps the SMB user to a Unix user and switches to
it, so a real account has to exist (:mod:`offsite.testing.unixuser`).
Without root the ``smbd`` fixture skips, and everything that uses it. Set
``OFFSITE_TEST_USER`` to give parallel runs on one machine their own user.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from offsite_cifs.testserver import SmbdInfo, run_smbd

__all__ = ["SmbdInfo"]


@pytest.fixture(scope="session")
def smbd() -> Iterator[SmbdInfo]:
    """A real smbd on a free 127.0.0.1 port, for the whole session; see the module doc."""
    if os.geteuid() != 0:
        pytest.skip("the smbd fixture needs root: it creates a Unix user smbd switches to")
    if not os.access("/usr/sbin/smbd", os.X_OK):
        pytest.skip("/usr/sbin/smbd is missing: apt-get install samba")
    with run_smbd() as info:
        yield info


@pytest.fixture
def smb_folder(smbd: SmbdInfo) -> Iterator[str]:
    """A unique folder name relative to the share's root, NOT created (the plugin must).

    Removed afterwards as root, whoever created what inside it.
    """
    name = f"t-{uuid.uuid4().hex}"
    yield name
    shutil.rmtree(smbd.root / name, ignore_errors=True)

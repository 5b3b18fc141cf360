"""A real OpenSSH sshd on 127.0.0.1 for the SFTP plugin's tests.

Fixtures:

* ``sshd`` (session): the server of :func:`offsite_sftp.testserver.run_sshd`,
  a throw-away sshd with a Unix test user, client keys (plain ed25519,
  encrypted ECDSA, encrypted RSA, and an unauthorized "stranger" key),
  known_hosts files (right, wrong, empty) and a few prepared paths in the
  SFTP start directory. Yields an :class:`~offsite_sftp.testserver.SshdInfo`.
* ``sftp_folder`` (function): a fresh, not yet created folder name relative to
  ``sshd.root``; removed after the test.
* ``sshd_rclone_env`` (session): environment variables that point rclone's
  on-the-fly ``:sftp:`` remote at this server, or None without rclone.

Why root is needed: sshd (``UsePAM no``) checks passwords against /etc/shadow,
so a real Unix account has to exist, and sshd refuses to start without its
compiled-in privilege-separation directory /run/sshd. Without root the ``sshd``
fixture skips (and everything that uses it with it).

Needs Debian's ``openssh-server`` (``/usr/sbin/sshd``, ``ssh-keygen``).
Under pytest-xdist each worker gets its own user (``offsite-test-gw0``, ...),
because the password lives in the system-wide shadow file; set
``OFFSITE_TEST_USER`` to choose another base name, e.g. when two independent
test runs share one machine.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from offsite_sftp.testserver import SshdInfo, run_sshd

__all__ = ["SshdInfo"]


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshdInfo]:
    """A real sshd on a free 127.0.0.1 port, for the whole session; see the module doc."""
    if os.geteuid() != 0:
        pytest.skip("the sshd fixture needs root: it creates a Unix user and /run/sshd")
    with run_sshd() as info:
        yield info


@pytest.fixture
def sftp_folder(sshd: SshdInfo) -> Iterator[str]:
    """A unique folder name relative to ``sshd.root``, NOT created (the plugin must).

    Removed afterwards as root, whoever created what inside it.
    """
    name = f"t-{uuid.uuid4().hex}"
    yield name
    shutil.rmtree(sshd.root / name, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd_rclone_env(sshd: SshdInfo) -> dict[str, str] | None:
    """Variables for ``rclone ... :sftp:PATH`` against ``sshd``, or None without rclone.

    See :meth:`~offsite_sftp.testserver.SshdInfo.rclone_env`. For fast failures
    also pass ``--retries 1 --low-level-retries 1`` (defaults take ~11 s per failure).
    """
    return sshd.rclone_env()

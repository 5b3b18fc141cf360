"""The Unix account that real test servers log their clients in as (needs root).

sshd (``UsePAM no``) checks passwords against /etc/shadow, and smbd maps an
SMB user to a Unix user and switches to it: both need a real account. The
plugins' test servers (``offsite_sftp.testserver``, ``offsite_cifs.testserver``)
share this one helper::

    with unix_user() as user:          # user.name, .uid, .gid, .password
        ...

The account is made if missing (shell nologin, no home), gets a new random
password every time (a leftover account is never usable with a known one),
and at exit is deleted if made here, else its password is locked. Its name is
``offsite-test``, or ``$OFFSITE_TEST_USER`` (two independent runs on one
machine each pick their own), with ``-<worker>`` appended under pytest-xdist:
the password lives in the system-wide shadow file, so parallel workers must
not share an account.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

NOLOGIN = "/usr/sbin/nologin"


@attrs.frozen
class UnixUser:
    """A test account: its name, ids, and this run's password (never in a repr)."""

    name: str
    uid: int
    gid: int
    password: str = attrs.field(repr=False)


def _sbin(name: str) -> str:
    # A CI root's PATH may lack /usr/sbin, where useradd & co. live.
    return shutil.which(name) or f"/usr/sbin/{name}"


def user_name() -> str:
    """The account's name: ``$OFFSITE_TEST_USER`` (default ``offsite-test``),
    plus ``-<worker>`` under pytest-xdist."""
    name = os.environ.get("OFFSITE_TEST_USER", "offsite-test")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name}-{worker}" if worker else name


@contextmanager
def account_suffix(suffix: str) -> Iterator[None]:
    """While inside, :func:`unix_user` makes ``<name>-<suffix>`` instead: for
    a server started beside the plugins' session fixtures, whose account
    would otherwise get a new password under them."""
    before = os.environ.get("OFFSITE_TEST_USER")
    os.environ["OFFSITE_TEST_USER"] = f"{before or 'offsite-test'}-{suffix}"
    try:
        yield
    finally:
        if before is None:
            del os.environ["OFFSITE_TEST_USER"]
        else:
            os.environ["OFFSITE_TEST_USER"] = before


@contextmanager
def unix_user() -> Iterator[UnixUser]:
    """The test account, made if missing, with a fresh random password.

    :raises RuntimeError: not root, or useradd/chpasswd failed.
    """
    if os.geteuid() != 0:
        raise RuntimeError("a Unix test user can only be made by root")
    name = user_name()
    created = False
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        res = subprocess.run(
            [_sbin("useradd"), "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", NOLOGIN, name],
            capture_output=True, text=True, check=False)
        if res.returncode not in (0, 9):  # 9: already exists (a concurrent run made it)
            raise RuntimeError(f"useradd {name} failed rc={res.returncode}: {res.stderr}") from None
        created = res.returncode == 0
        pw = pwd.getpwnam(name)
    try:
        password = "Pw-" + secrets.token_urlsafe(16)
        # Debian 12's chpasswd stores yescrypt ($y$...); sshd's crypt(3) verifies it.
        res = subprocess.run(
            [_sbin("chpasswd")], input=f"{name}:{password}\n", capture_output=True, text=True,
            check=False)
        if res.returncode != 0:
            raise RuntimeError(f"chpasswd {name} failed rc={res.returncode}: {res.stderr}")
        yield UnixUser(name, pw.pw_uid, pw.pw_gid, password)
    finally:
        deleted = created and subprocess.run(
            [_sbin("userdel"), name], capture_output=True, check=False).returncode == 0
        if not deleted:  # not ours, or userdel failed: at least make the password unusable
            subprocess.run(
                [_sbin("usermod"), "--lock", name], capture_output=True, check=False)


__all__ = ["UnixUser", "account_suffix", "unix_user", "user_name"]

"""The ``sshd`` test fixture itself works, checked with plain paramiko.

These do not use the offsite SFTP plugin: they prove the server, accounts,
keys and known_hosts files the plugin's tests rely on are what they claim.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest


def connect(sshd: Any, *, known_hosts: Path | None = None, **auth: Any) -> paramiko.SSHClient:
    """SSHClient with the host key pinned and no agent or ~/.ssh keys to muddy results."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or sshd.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            sshd.host,
            port=sshd.port,
            username=sshd.user,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            **auth,
        )
    except BaseException:
        client.close()
        raise
    return client


@pytest.fixture
def sftp(sshd: Any) -> Iterator[paramiko.SFTPClient]:
    client = connect(sshd, password=sshd.password)
    try:
        yield client.open_sftp()
    finally:
        client.close()


def test_password_login_starts_in_root(sshd: Any) -> None:
    client = connect(sshd, password=sshd.password)
    try:
        assert client.get_transport().is_authenticated()
        sftp = client.open_sftp()
        assert sftp.normalize(".") == str(sshd.root)
        assert set(sftp.listdir(".")) >= {"readonly", "a-file"}
    finally:
        client.close()


def test_wrong_password_is_refused(sshd: Any) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(sshd, password=sshd.password + "x")


@pytest.mark.parametrize("name", ["ed25519", "ecdsa", "rsa"])
def test_authorized_key_logs_in(sshd: Any, name: str) -> None:
    key, passphrase = sshd.keys[name]
    client = connect(sshd, key_filename=str(key), passphrase=passphrase)
    try:
        assert client.get_transport().is_authenticated()
        assert client.open_sftp().normalize(".") == str(sshd.root)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("name", "key_class"),
    [
        ("ed25519", paramiko.Ed25519Key),
        ("ecdsa", paramiko.ECDSAKey),
        ("rsa", paramiko.RSAKey),
        ("stranger", paramiko.Ed25519Key),
    ],
)
def test_key_types_and_encryption(sshd: Any, name: str, key_class: type[paramiko.PKey]) -> None:
    key, passphrase = sshd.keys[name]
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    if passphrase is None:
        key_class.from_private_key_file(str(key))
    else:
        with pytest.raises(paramiko.PasswordRequiredException):
            key_class.from_private_key_file(str(key))
        loaded = key_class.from_private_key_file(str(key), password=passphrase)
        if name == "rsa":
            assert loaded.get_bits() == 2048


def test_stranger_key_is_refused(sshd: Any) -> None:
    key, passphrase = sshd.keys["stranger"]
    with pytest.raises(paramiko.AuthenticationException):
        connect(sshd, key_filename=str(key), passphrase=passphrase)


def test_wrong_host_key_is_detected(sshd: Any) -> None:
    with pytest.raises(paramiko.BadHostKeyException):
        connect(sshd, known_hosts=sshd.known_hosts_wrong, password=sshd.password)


def test_unknown_host_is_rejected(sshd: Any) -> None:
    assert sshd.known_hosts_empty.read_bytes() == b""
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts") as ei:
        connect(sshd, known_hosts=sshd.known_hosts_empty, password=sshd.password)
    assert not isinstance(ei.value, paramiko.BadHostKeyException)


def test_readonly_folder_is_readable_but_not_writable(sftp: paramiko.SFTPClient) -> None:
    assert stat.S_ISDIR(sftp.stat("readonly").st_mode)
    assert sftp.listdir("readonly") == []
    with pytest.raises(PermissionError):  # paramiko maps SFTP's permission-denied to EACCES
        sftp.mkdir("readonly/sub")
    assert "sub" not in sftp.listdir("readonly")


def test_a_file_is_a_regular_file_of_the_user(sshd: Any, sftp: paramiko.SFTPClient) -> None:
    attrs = sftp.stat("a-file")
    assert stat.S_ISREG(attrs.st_mode)
    assert attrs.st_uid == (sshd.root / "a-file").stat().st_uid == sshd.root.stat().st_uid != 0


def test_sftp_folder_is_fresh_and_creatable(
    sshd: Any, sftp_folder: str, sftp: paramiko.SFTPClient
) -> None:
    assert re.fullmatch(r"t-[0-9a-f]{32}", sftp_folder)
    assert not (sshd.root / sftp_folder).exists()
    with pytest.raises(FileNotFoundError):
        sftp.stat(sftp_folder)
    sftp.mkdir(sftp_folder)  # the user can create it (and the fixture removes it)
    with sftp.open(f"{sftp_folder}/x", "wb") as f:
        f.write(b"x")
    assert (sshd.root / sftp_folder / "x").read_bytes() == b"x"


def test_url(sshd: Any) -> None:
    assert sshd.url("a/ü b") == f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{sshd.root}/a/ü b"
    assert sshd.password not in repr(sshd)


def test_log_records_the_server(sshd: Any) -> None:
    assert f"Server listening on 127.0.0.1 port {sshd.port}" in sshd.log.read_text()


def test_rclone_env(sshd: Any, sshd_rclone_env: dict[str, str] | None, sftp_folder: str) -> None:
    rclone = shutil.which("rclone")
    assert (sshd_rclone_env is None) == (rclone is None)
    if rclone is None or sshd_rclone_env is None:
        return
    (sshd.root / sftp_folder).mkdir()
    (sshd.root / sftp_folder / "blob.bin").write_bytes(b"hello")
    res = subprocess.run(
        [rclone, "--retries", "1", "--low-level-retries", "1", "lsf", f":sftp:{sftp_folder}"],
        env={**os.environ, **sshd_rclone_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["blob.bin"]

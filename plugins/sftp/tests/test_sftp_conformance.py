"""offsite-sftp against a real OpenSSH sshd: the core conformance suite,
with password and with key authentication, then what only SFTP has."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.errors import AuthError, HostKeyRejected, PermissionDenied
from offsite.session import Transport
from offsite.testing import conformance, endtoend
from offsite.testing.sources import random_bytes
from offsite.transport import BytesSource, Endpoint


def sftp_endpoint(sshd: Any, folder: str, **credentials: str) -> Endpoint:
    return Endpoint.from_url(sshd.url(folder), name="sftp-test",
                             options={"known_hosts": str(sshd.known_hosts)},
                             credentials=credentials or {"password": sshd.password})


def _server_folder(sshd: Any, provoke: conformance.Provoke, name: str) -> Path:
    """A folder made by root in the target folder on the server's disk."""
    folder = Path(sshd.root, provoke.endpoint.path.removeprefix(str(sshd.root)).lstrip("/"),
                  name)
    folder.mkdir()
    return folder


def _faults(sshd: Any) -> dict[str, conformance.Fault | str]:
    def permission(provoke: conformance.Provoke) -> None:
        _server_folder(sshd, provoke, "roots")  # root's, 0755: the user may not write
        provoke.session.put("roots/x.ofi", BytesSource(b"x"))

    def full(provoke: conformance.Provoke) -> None:
        folder = _server_folder(sshd, provoke, "small")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0777", "tmpfs",
                           str(folder)], capture_output=True).returncode:
            pytest.skip("full: cannot mount a small tmpfs here (that needs root)")
        try:
            provoke.session.put("small/big.ofi", BytesSource(random_bytes(1 << 20)))
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=True)

    def transient(provoke: conformance.Provoke) -> None:
        # The connection drops under the session, as a flaky network does.
        provoke.session.conn.transport.sock.shutdown(socket.SHUT_RDWR)
        provoke.session.list()

    return {"permission": permission, "full": full, "transient": transient}


class PasswordFixtures(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, sshd: Any, sftp_folder: str) -> Endpoint:
        return sftp_endpoint(sshd, sftp_folder)

    @pytest.fixture
    def faults(self, sshd: Any) -> dict[str, conformance.Fault | str]:
        return _faults(sshd)

    @pytest.fixture
    def symlink(self, sshd: Any, sftp_folder: str) -> conformance.Symlink:
        def make(link: str, to: str) -> None:  # on the server's disk, as its user would
            root = Path(sshd.root, sftp_folder)
            owner = root.stat()
            (root / link).parent.mkdir(parents=True, exist_ok=True)
            os.chown((root / link).parent, owner.st_uid, owner.st_gid)
            (root / link).symlink_to(root / to)
            os.lchown(root / link, owner.st_uid, owner.st_gid)
        return make

    @pytest.fixture
    def broken_endpoint(self, sshd: Any) -> tuple[Endpoint, str]:
        return sftp_endpoint(sshd, "a-file"), "folder"

    @pytest.fixture
    def wrong_credentials(self, endpoint: Endpoint) -> Endpoint:
        return attrs.evolve(endpoint, credentials={"password": conformance.CANARY})

    @pytest.fixture
    def get_heap_limit(self) -> int:
        # paramiko holds what the SSH window lets in (8 MiB) plus our two read-ahead
        # windows (2 x 4 MiB) and per-packet copies: measured 4-34 MiB under load.
        return 48 * conformance.MiB


class KeyFixtures(PasswordFixtures):
    """The encrypted RSA key's text and passphrase, as the credential store holds them."""

    @pytest.fixture
    def endpoint(self, sshd: Any, sftp_folder: str) -> Endpoint:
        key, passphrase = sshd.keys["rsa"]
        return sftp_endpoint(sshd, sftp_folder, private_key=Path(key).read_text(),
                             passphrase=passphrase)

    @pytest.fixture
    def wrong_credentials(self, endpoint: Endpoint) -> Endpoint:
        return attrs.evolve(endpoint, credentials={**endpoint.credentials,
                                                   "passphrase": conformance.CANARY})


class TestSftpPassword(conformance.AllTests, PasswordFixtures):
    pass


class TestSftpKey(conformance.AllTests, KeyFixtures):
    pass


# -- authentication -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_every_key_type_from_text_and_from_path(sshd: Any, sftp_folder: str, kind: str) -> None:
    key, passphrase = sshd.keys[kind]
    creds = {"private_key": Path(key).read_text()} | ({"passphrase": passphrase} if passphrase
                                                       else {})
    as_text = sftp_endpoint(sshd, sftp_folder, **creds)
    as_path = attrs.evolve(as_text, options={**as_text.options, "private_key": str(key)},
                           credentials={"passphrase": passphrase} if passphrase else {})
    for endpoint in (as_text, as_path):
        report = Transport.for_endpoint(endpoint).check(endpoint)
        assert report.ok, report.failed


def check_fails(endpoint: Endpoint, step: str) -> Any:
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.failed is not None, "the check should fail"
    assert report.failed.name == step, report.steps
    error = report.failed.error
    assert error is not None and error.hint, "it says how to fix it"
    for secret in endpoint.secrets():
        assert secret not in str(error) and secret not in repr(report)
    return error


def test_requests_use_the_sizes_the_server_announces(sshd: Any, sftp_folder: str) -> None:
    # OpenSSH announces 255 KiB writes (limits@openssh.com); 32 KiB requests
    # cost a third more client CPU per byte. A large put must still arrive whole.
    from offsite.testing.sources import random_bytes
    from offsite.transport import BytesSource
    from offsite_sftp.wire import SAFE_REQUEST

    endpoint = sftp_endpoint(sshd, sftp_folder)
    data = random_bytes(3 * 261120 + 12345)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        assert session.conn.write_size == session.conn.read_size == 261120 > SAFE_REQUEST
        session.put("big.bin", BytesSource(data))
        assert (Path(sshd.root) / sftp_folder / "big.bin").read_bytes() == data
        with session.get("big.bin", 1000) as f:  # reads of that size, from an offset
            assert f.read() == data[1000:]


def test_writes_of_any_size_go_out_as_whole_requests(sshd: Any, sftp_folder: str) -> None:
    # A put hands the writer 1 MiB chunks (the core reader's, not copied),
    # which 255 KiB requests do not divide: what is short of a request is
    # carried on to the next write, so every request but the last is whole.
    import itertools
    import random

    from offsite.testing.sources import random_bytes
    from offsite.transport import BytesSource
    from offsite_sftp.writes import PipelinedWriter

    sent: list[int] = []

    class Counting(PipelinedWriter):
        def _send(self, pieces: list[memoryview]) -> None:
            sent.append(sum(len(p) for p in pieces))
            super()._send(pieces)

    endpoint = sftp_endpoint(sshd, sftp_folder)
    data = random_bytes(6 * 261120 + 4321, seed=7)
    rng = random.Random(3)
    cuts = {*rng.sample(range(1, len(data)), 40), 1, 2, 261119, 261120, 261121}
    edges = [0, *sorted(cuts), len(data)]
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("made.bin", BytesSource(b""))  # makes the folder
        conn = session.conn
        with conn.sftp.open(conn.remote("pieces.bin"), "wb") as out:
            writer = Counting(conn.sftp, out.handle, 0, conn.write_size, conn.in_flight)
            for start, end in itertools.pairwise(edges):
                writer.write(data[start:end])
                assert writer.answered <= end, "never ahead of what was written"
            writer.finish()
            assert writer.answered == len(data)
    assert (Path(sshd.root) / sftp_folder / "pieces.bin").read_bytes() == data
    assert sum(sent) == len(data)
    assert sent[:-1] == [conn.write_size] * (len(sent) - 1), sent


def test_the_connection_is_tuned_for_request_and_answer(sshd: Any, sftp_folder: str) -> None:
    # Small messages go out at once (no Nagle: authentication waited 40 ms on
    # a delayed ACK), the setup's quick ACKs stop once the session is up, and
    # a put on loopback keeps what the link holds in flight: the minimum, not
    # the whole window (flooding a fresh sshd cost its first put 80 ms).
    import socket

    from offsite.transport import BytesSource
    from offsite_sftp.writes import MAX_IN_FLIGHT, MIN_IN_FLIGHT

    endpoint = sftp_endpoint(sshd, sftp_folder)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        sock = session.conn.transport.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert getattr(sock, "eager", None) is False
        # a loopback round trip takes well under the 31 ms that MAX stands for
        assert MIN_IN_FLIGHT <= session.conn.in_flight < MAX_IN_FLIGHT
        data = b"x" * (3 * MIN_IN_FLIGHT + 5)  # more than is ever unanswered
        session.put("tuned.bin", BytesSource(data))
    assert (Path(sshd.root) / sftp_folder / "tuned.bin").read_bytes() == data


def test_a_read_closed_early_leaves_the_session_usable(sshd: Any, sftp_folder: str) -> None:
    # Reads keep megabytes of requests in flight and read the answers
    # themselves; answers still on their way at close must not confuse the
    # requests that follow on the same session.
    from offsite.testing.sources import random_bytes
    from offsite.transport import BytesSource

    endpoint = sftp_endpoint(sshd, sftp_folder)
    data = random_bytes(9 * 1024 * 1024 + 3)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        (Path(sshd.root) / sftp_folder / "big.bin").write_bytes(data)  # the folder exists now
        with session.get("big.bin", 0) as f:
            assert f.read(300_000) == data[:300_000]
        session.put("after.bin", BytesSource(b"still fine"))
        assert {e.path: e.size for e in session.list("")}["after.bin"] == 10
        with session.get("big.bin", 5) as f:
            assert f.read() == data[5:]
    assert (Path(sshd.root) / sftp_folder / "after.bin").read_bytes() == b"still fine"


def test_a_put_survives_key_exchanges_in_its_middle(sshd: Any, sftp_folder: str) -> None:
    # Puts send SSH data messages themselves (fewer copies than paramiko's
    # Channel.send), through paramiko's packetizer, which re-keys every
    # 512 MiB. Here every 256 KiB: an 8 MiB put runs through about 30 key
    # exchanges and must arrive whole.
    from offsite.testing.sources import random_bytes
    from offsite.transport import BytesSource

    endpoint = sftp_endpoint(sshd, sftp_folder)
    data = random_bytes(8 * 1024 * 1024 + 7)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        packetizer = session.conn.sftp.get_channel().get_transport().packetizer
        packetizer.REKEY_BYTES = 256 * 1024
        session.put("rekeyed.bin", BytesSource(data))
        # The counter restarts at every new key: far below what was sent.
        assert packetizer._Packetizer__sent_bytes < 1024 * 1024
    assert (Path(sshd.root) / sftp_folder / "rekeyed.bin").read_bytes() == data


def test_wrong_password(sshd: Any, sftp_folder: str) -> None:
    error = check_fails(sftp_endpoint(sshd, sftp_folder, password="not-the-password"), "auth")
    assert isinstance(error, AuthError)
    assert "offsite credentials set" in str(error)


def test_wrong_key_passphrase(sshd: Any, sftp_folder: str) -> None:
    key, _ = sshd.keys["rsa"]
    error = check_fails(sftp_endpoint(sshd, sftp_folder, private_key=Path(key).read_text(),
                                      passphrase="wrong passphrase"), "auth")
    assert isinstance(error, AuthError) and "could not be decrypted" in str(error)


def test_encrypted_key_without_passphrase(sshd: Any, sftp_folder: str) -> None:
    key, _ = sshd.keys["ecdsa"]
    error = check_fails(sftp_endpoint(sshd, sftp_folder, private_key=Path(key).read_text()),
                        "auth")
    assert "no passphrase is stored" in str(error)


def test_key_the_server_does_not_accept(sshd: Any, sftp_folder: str) -> None:
    key, passphrase = sshd.keys["stranger"]
    creds = {"private_key": Path(key).read_text()} | ({"passphrase": passphrase} if passphrase
                                                       else {})
    error = check_fails(sftp_endpoint(sshd, sftp_folder, **creds), "auth")
    assert isinstance(error, AuthError)


# -- host keys ---------------------------------------------------------------------


def test_unknown_host_key_is_refused_with_fingerprint(sshd: Any, sftp_folder: str) -> None:
    endpoint = attrs.evolve(sftp_endpoint(sshd, sftp_folder),
                            options={"known_hosts": str(sshd.known_hosts_empty)})
    error = check_fails(endpoint, "hostkey")
    assert isinstance(error, HostKeyRejected)
    assert "is unknown: SHA256:" in str(error) and "--trust-host-key" in str(error)


def test_changed_host_key_is_refused(sshd: Any, sftp_folder: str) -> None:
    endpoint = attrs.evolve(sftp_endpoint(sshd, sftp_folder),
                            options={"known_hosts": str(sshd.known_hosts_wrong)})
    error = check_fails(endpoint, "hostkey")
    assert isinstance(error, HostKeyRejected) and "CHANGED" in str(error)


def test_missing_known_hosts_file_means_unknown(sshd: Any, sftp_folder: str,
                                                tmp_path: Path) -> None:
    endpoint = attrs.evolve(sftp_endpoint(sshd, sftp_folder),
                            options={"known_hosts": str(tmp_path / "none")})
    assert isinstance(check_fails(endpoint, "hostkey"), HostKeyRejected)


# -- folders -----------------------------------------------------------------------


def test_folder_without_permission_to_create(sshd: Any) -> None:
    error = check_fails(sftp_endpoint(sshd, "readonly/new-folder"), "folder")
    assert isinstance(error, PermissionDenied)


def test_target_path_that_is_a_file(sshd: Any) -> None:
    error = check_fails(sftp_endpoint(sshd, "a-file"), "folder")
    assert "is a file where a folder is needed" in str(error)


def test_nothing_listens(sshd: Any, sftp_folder: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = attrs.evolve(sftp_endpoint(sshd, sftp_folder), port=port)
    error = check_fails(endpoint, "connect")
    assert error.retryable and f"127.0.0.1:{port}" in str(error)


# -- the command line, end to end ------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, sshd: Any, sftp_folder: str) -> Callable[..., Any]:
    dest = tmp_path / "destination"
    dest.mkdir()
    conf = tmp_path / "conf"
    conf.mkdir()
    config = conf / "offsite.toml"
    known = conf / "known_hosts"
    shutil.copy(sshd.known_hosts, known)
    config.write_text(f'''
[[job]]
name = "nightly"
destination = "{dest}"
[[job.target]]
name = "vault"
url = "{sshd.url(sftp_folder)}"
[job.target.options]
known_hosts = "{known}"
''')

    def run(*args: str, code: int = 0, input: str | None = None) -> Any:
        result = CliRunner().invoke(cli, ["--config", str(config), *args], input=input)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    run.dest, run.known, run.conf = dest, known, conf  # type: ignore[attr-defined]
    return run


def test_replicate_with_consolidation_and_restore(site: Callable[..., Any], sshd: Any,
                                                   sftp_folder: str, tmp_path: Path) -> None:
    endtoend.replicate_consolidate_restore(
        site, site.dest, tmp_path,  # type: ignore[attr-defined]
        lambda: os.listdir(sshd.root / sftp_folder), credentials={"password": sshd.password})


def test_trust_host_key_asks_and_records(site: Callable[..., Any], sshd: Any) -> None:
    site("credentials", "set", "nightly.vault", "--stdin",
         input=json.dumps({"password": sshd.password}))
    site.known.write_text("")  # type: ignore[attr-defined]
    refused = site("check", code=4)
    assert "hostkey" in refused.stdout and "SHA256:" in refused.stdout
    declined = site("check", "--trust-host-key", code=4, input="n\n")
    assert "Trust it" in declined.stdout
    assert site.known.read_text() == ""  # type: ignore[attr-defined]
    trusted = site("check", "--trust-host-key", input="y\n")
    assert "recorded in" in trusted.stdout
    assert site.known.read_text().startswith(f"[127.0.0.1]:{sshd.port} ")  # type: ignore[attr-defined]
    site("check")


def test_the_plugin_loads_without_invoke_and_leaves_it_importable() -> None:
    # paramiko's invoke import is a third of its start-up cost, paid by every run.
    import subprocess
    import sys

    code = ("import sys, offsite_sftp; assert 'invoke' not in sys.modules, 'invoke loaded'; "
            "import invoke; print(invoke.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout.strip()) == (0, "invoke"), out.stderr

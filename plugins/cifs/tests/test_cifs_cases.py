"""What only SMB has: the check's steps and their failures (wrong password,
missing share, read-only share, a folder that is a file, a name that does not
resolve), the server dying mid-transfer and the resume after it, sessions
that never leak between targets, options, and the command line end to end."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.errors import (
    AuthError,
    ConnectFailed,
    Fatal,
    NotFound,
    PermissionDenied,
    ResolveFailed,
    Transient,
)
from offsite.session import Transport
from offsite.testing import endtoend
from offsite.testing.sources import MiB, RecordingSource, random_bytes
from offsite.transport import BytesSource, Endpoint
from offsite_cifs.testserver import READONLY_SHARE, SEALED_SHARE


def smb_endpoint(smbd: Any, folder: str, *, share: str = "backup", password: str | None = None,
                 **options: Any) -> Endpoint:
    return Endpoint.from_url(smbd.url(folder, share=share), name="smb-test", options=options,
                             credentials={"password": smbd.password if password is None
                                          else password})


def check_fails(endpoint: Endpoint, step: str) -> Any:
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.failed is not None, "the check should fail"
    assert report.failed.name == step, report.steps
    error = report.failed.error
    assert error is not None and error.hint, "it says how to fix it"
    assert error.step in str(error), "the message names the step"
    for secret in endpoint.secrets():
        assert secret not in str(error) and secret not in repr(report)
    return error


# -- the check, step by step ----------------------------------------------------------


def test_check_reports_every_step(smbd: Any, smb_folder: str) -> None:
    report = Transport.for_endpoint(e := smb_endpoint(smbd, smb_folder)).check(e)
    assert report.ok, report.failed
    names = [s.name for s in report.steps]
    assert names[:7] == ["resolve", "connect", "negotiate", "auth", "share", "folder",
                         "security"]
    security = report.steps[6].detail
    assert re.fullmatch(r"SMB 3\.1\.1, signed \(AES-GMAC\)", security), security


def test_encrypt_option_encrypts(smbd: Any, smb_folder: str) -> None:
    report = Transport.for_endpoint(e := smb_endpoint(smbd, smb_folder, encrypt=True)).check(e)
    assert report.ok, report.failed
    assert "encrypted (AES-" in {s.name: s.detail for s in report.steps}["security"]


def test_a_share_that_requires_encryption_gets_it_unasked(smbd: Any, smb_folder: str) -> None:
    endpoint = smb_endpoint(smbd, smb_folder, share=SEALED_SHARE)
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.ok, report.failed
    assert "encrypted" in {s.name: s.detail for s in report.steps}["security"]


def test_wrong_password(smbd: Any, smb_folder: str) -> None:
    error = check_fails(smb_endpoint(smbd, smb_folder, password="not-the-password"), "auth")
    assert isinstance(error, AuthError) and "STATUS_LOGON_FAILURE" in str(error)
    assert "offsite credentials set" in str(error)


def test_unknown_user(smbd: Any, smb_folder: str) -> None:
    endpoint = attrs.evolve(smb_endpoint(smbd, smb_folder), username="nobody-here")
    assert isinstance(check_fails(endpoint, "auth"), AuthError)


def test_no_password_stored(smbd: Any, smb_folder: str) -> None:
    endpoint = attrs.evolve(smb_endpoint(smbd, smb_folder), credentials={})
    assert "no password is stored" in str(check_fails(endpoint, "auth"))


def test_a_wrong_host_without_a_password_fails_at_resolve(smbd: Any, smb_folder: str) -> None:
    # Steps go in order: a host name that does not resolve is what to fix
    # first, even when no password is stored yet.
    endpoint = attrs.evolve(smb_endpoint(smbd, smb_folder), host="no-such-host.invalid",
                            credentials={})
    assert "no password" not in str(check_fails(endpoint, "resolve"))


def test_missing_share(smbd: Any) -> None:
    error = check_fails(smb_endpoint(smbd, "x", share="no-such-share"), "share")
    assert isinstance(error, NotFound) and "no share 'no-such-share'" in str(error)
    assert "share's name" in error.hint


def test_read_only_share(smbd: Any) -> None:
    # The share's root exists: connecting works, the first write is refused.
    error = check_fails(smb_endpoint(smbd, "", share=READONLY_SHARE), "probe-write")
    assert isinstance(error, PermissionDenied) and "STATUS_ACCESS_DENIED" in str(error)


def test_read_only_share_with_a_folder_to_create(smbd: Any, smb_folder: str) -> None:
    error = check_fails(smb_endpoint(smbd, smb_folder, share=READONLY_SHARE), "folder")
    assert isinstance(error, PermissionDenied) and "read only" in error.hint


def test_folder_without_permission_to_create(smbd: Any) -> None:
    # "readonly" in the share is root's folder: the user may not create in it.
    error = check_fails(smb_endpoint(smbd, "readonly/new-folder"), "folder")
    assert isinstance(error, PermissionDenied)


def test_target_path_that_is_a_file(smbd: Any) -> None:
    error = check_fails(smb_endpoint(smbd, "a-file"), "folder")
    assert isinstance(error, Fatal) and "is a file where a folder is needed" in str(error)


def test_target_path_below_a_file(smbd: Any) -> None:
    error = check_fails(smb_endpoint(smbd, "a-file/below"), "folder")
    assert isinstance(error, Fatal | NotFound), error


def test_a_name_that_does_not_resolve_suggests_the_ip_address(smbd: Any) -> None:
    endpoint = attrs.evolve(smb_endpoint(smbd, "x"), host="no-such-host.invalid")
    error = check_fails(endpoint, "resolve")
    assert isinstance(error, ResolveFailed) and "no-such-host.invalid" in str(error)
    assert "IP address" in error.hint and "Destination net unreachable" in error.hint


def test_nothing_listens(smbd: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = check_fails(attrs.evolve(smb_endpoint(smbd, "x"), port=port), "connect")
    assert isinstance(error, ConnectFailed) and error.retryable
    assert f"127.0.0.1:{port}" in str(error)


@pytest.mark.parametrize(("options", "named"), [({"encrypt": "yes"}, "encrypt"),
                                                 ({"timeout": 0}, "timeout")])
def test_bad_option_values_are_named(smbd: Any, options: dict[str, Any], named: str) -> None:
    endpoint = smb_endpoint(smbd, "x", **options)
    with pytest.raises(Fatal, match=f"the option {named} must"):
        Transport.for_endpoint(endpoint).connect(endpoint).close()


def test_the_cifs_scheme_is_the_same_plugin(smbd: Any, smb_folder: str) -> None:
    endpoint = attrs.evolve(smb_endpoint(smbd, smb_folder), scheme="cifs")
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("a.ofi", BytesSource(b"cifs"))
    assert (smbd.root / smb_folder / "a.ofi").read_bytes() == b"cifs"


# -- sessions never leak ----------------------------------------------------------------


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("msg_worker-")]


def _connections(smbd: Any) -> int:
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{smbd.port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def test_no_session_is_shared_or_left_behind(smbd: Any, smb_folder: str) -> None:
    # smbprotocol's smbclient helpers cache sessions per server and user, and
    # a cached one lets a wrong password through. Each connect here has its
    # own TCP connection and session: a wrong password after a right one, on
    # the same server in the same process, is refused while the first is open.
    before = _connections(smbd)
    right = smb_endpoint(smbd, smb_folder)
    transport = Transport.for_endpoint(right)
    with transport.connect(right) as first:
        first.put("a.ofi", BytesSource(b"1"))
        with pytest.raises(AuthError):
            transport.connect(smb_endpoint(smbd, smb_folder, password="wrong")).close()
        unknown = attrs.evolve(right, username="nobody-here")
        with pytest.raises(AuthError):
            transport.connect(unknown).close()
        with transport.connect(right) as second:
            assert second.conn.connection is not first.conn.connection
            assert second.conn.session.session_id != first.conn.session.session_id
            assert [f.path for f in second.list()] == ["a.ofi"]
        assert _connections(smbd) == before + 1
        first.put("b.ofi", BytesSource(b"2"))  # untouched by the others
    # Every connection closed, and its receiving thread gone.
    assert _connections(smbd) == before
    assert _workers() == []


def test_the_plugin_keeps_out_of_smbclients_process_wide_cache() -> None:
    # smbclient (smbprotocol's high-level helpers) keeps one connection cache
    # per process; the plugin must not even load it.
    import sys

    code = ("import sys, offsite_cifs.transport, offsite_cifs.smb, offsite_cifs.pipeline; "
            "print('smbclient' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# -- the server dies mid-transfer; the put resumes ----------------------------------------


def _serving_pid(smbd: Any, local_port: int) -> int:
    """The smbd child that serves the client on ``local_port``."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{smbd.port} "
                          f"and dport = :{local_port} )"], capture_output=True, text=True,
                         check=True).stdout
    found = re.search(r"pid=(\d+)", out)
    assert found, out
    return int(found.group(1))


@attrs.define
class KillingSource:
    """A source that kills the smbd child serving ``port`` once ``at`` bytes are read."""

    data: bytes
    at: int
    kill: Callable[[], None]

    @property
    def size(self) -> int:
        return len(self.data)

    def open(self, offset: int = 0) -> BinaryIO:
        source = self

        class Stream(io.RawIOBase):
            pos = offset

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                if self.pos >= source.at:
                    source.kill()
                n = min(len(buffer), len(source.data) - self.pos)
                buffer[:n] = source.data[self.pos:self.pos + n]
                self.pos += n
                return n

        return Stream()


def test_server_dying_mid_transfer_loses_nothing_and_resumes(smbd: Any, smb_folder: str) -> None:
    import os
    import signal

    data = random_bytes(40 * MiB + 123, seed=3)
    endpoint = smb_endpoint(smbd, smb_folder)
    transport = Transport.for_endpoint(endpoint)
    tokens: list[dict[str, Any]] = []
    with transport.connect(endpoint) as session:
        port = session.conn.connection.transport._sock.getsockname()[1]
        victim = _serving_pid(smbd, port)
        killed: list[int] = []

        def kill() -> None:
            if not killed:
                killed.append(victim)
                os.kill(victim, signal.SIGKILL)

        with pytest.raises(Transient) as caught:
            session.put("set/big.ofi", KillingSource(data, 25 * MiB, kill),
                        on_token=lambda t: tokens.append(dict(t)))
        assert killed
        error = caught.value
        assert error.step == "put" and error.retryable
        assert smbd.password not in str(error)
    # Nothing under the final name; the partial holds what the token vouches for.
    folder = smbd.root / smb_folder / "set"
    assert not (folder / "big.ofi").exists()
    held = (folder / ".big.ofi.offsite-partial").stat().st_size
    offset = tokens[-1]["offset"]
    assert 0 < offset <= held <= 25 * MiB + 16 * MiB
    # The next attempt sends only what is missing.
    again = RecordingSource(data)
    with transport.connect(endpoint) as session:
        placed = session.put("set/big.ofi", again, resume=tokens[-1])
    assert placed.size == len(data)
    assert again.offsets == [offset]
    # Killed when 25 MiB had been read: at most the source's read-ahead, the
    # request being gathered and the writes in flight (4 + 2 + 8 MiB) were
    # not confirmed, and go again.
    sent_again = len(data) - again.offsets[0]
    assert sent_again <= len(data) - 11 * MiB, f"sent {sent_again} bytes again"
    assert (folder / "big.ofi").read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == ["big.ofi"]


def test_a_dropped_connection_resumes_where_the_server_confirmed(smbd: Any,
                                                                 smb_folder: str) -> None:
    import socket

    data = random_bytes(30 * MiB + 7, seed=4)
    endpoint = smb_endpoint(smbd, smb_folder, encrypt=True)
    transport = Transport.for_endpoint(endpoint)
    tokens: list[dict[str, Any]] = []
    with transport.connect(endpoint) as session:
        sock = session.conn.connection.transport._sock
        with pytest.raises(Transient):
            session.put("d.ofi", KillingSource(data, 20 * MiB,
                                               lambda: sock.shutdown(socket.SHUT_RDWR)),
                        on_token=lambda t: tokens.append(dict(t)))
    offset = tokens[-1]["offset"]
    assert offset >= 6 * MiB  # read 20 MiB: 4 MiB read ahead, at most 8 MiB unconfirmed
    again = RecordingSource(data)
    with transport.connect(endpoint) as session:
        session.put("d.ofi", again, resume=tokens[-1])
    assert again.offsets == [offset]
    assert (smbd.root / smb_folder / "d.ofi").read_bytes() == data


# -- the command line, end to end -----------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, smbd: Any, smb_folder: str) -> Callable[..., Any]:
    dest = tmp_path / "destination"
    dest.mkdir()
    config = tmp_path / "offsite.toml"
    config.write_text(f'''
[[job]]
name = "nightly"
destination = "{dest}"
[[job.target]]
name = "vault"
url = "{smbd.url(smb_folder)}"
[job.target.options]
encrypt = true
''')

    def run(*args: str, code: int = 0, input: str | None = None) -> Any:
        result = CliRunner().invoke(cli, ["--config", str(config), *args], input=input)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    run.dest = dest  # type: ignore[attr-defined]
    return run


def test_replicate_with_consolidation_and_restore(site: Callable[..., Any], smbd: Any,
                                                   smb_folder: str, tmp_path: Path) -> None:
    endtoend.replicate_consolidate_restore(
        site, site.dest, tmp_path,  # type: ignore[attr-defined]
        lambda: os.listdir(smbd.root / smb_folder), credentials={"password": smbd.password})
    assert "security" in site("check").stdout


def test_check_with_a_wrong_password_on_the_command_line(site: Callable[..., Any]) -> None:
    site("credentials", "set", "nightly.vault", "--stdin",
         input=json.dumps({"password": "wrong-" + "x" * 8}))
    out = site("check", code=4).stdout
    assert "auth" in out and "STATUS_LOGON_FAILURE" in out and "wrong-xxxxxxxx" not in out

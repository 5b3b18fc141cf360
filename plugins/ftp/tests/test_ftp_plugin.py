"""What only FTP has, against the real pyftpdlib servers: TLS and the
password, the check steps and their failures, dropped data connections and
resume, the LIST parser, error translation and the command line end to end."""

from __future__ import annotations

import ftplib
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from offsite import paths
from offsite.cli import cli
from offsite.errors import (
    AuthError,
    ConnectFailed,
    Fatal,
    NotFound,
    PermissionDenied,
    ResolveFailed,
    StorageFull,
    TargetError,
    TLSFailed,
    Transient,
)
from offsite.session import Transport
from offsite.testing import endtoend
from offsite.testing.certs import make_certs
from offsite.testing.conformance import raw_paths, read_all
from offsite.testing.sources import MiB, RecordingSource, random_bytes
from offsite.throttle import BandwidthLimit
from offsite.transport import BytesSource, Endpoint, FileSource, Source
from offsite_ftp import errors
from offsite_ftp.listing import parse_list_line, parse_mlsd_line, parse_mlst_reply
from offsite_ftp.testserver import FtpdInfo


@pytest.fixture(params=["ftp", "ftps"])
def server(request: pytest.FixtureRequest) -> FtpdInfo:
    return request.getfixturevalue("ftpd" if request.param == "ftp" else "ftpsd")


@pytest.fixture
def folder(server: FtpdInfo) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex}"
    yield name
    shutil.rmtree(server.root / name, ignore_errors=True)


def endpoint_of(server: FtpdInfo, folder: str, *, scheme: str | None = None,
                password: str | None = None, **options: Any) -> Endpoint:
    return Endpoint.from_url(server.url(folder, scheme), name="ftp-test",
                             options={**server.options(), **options},
                             credentials={"password": server.password if password is None
                                          else password})


def check_fails(endpoint: Endpoint, step: str) -> TargetError:
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.failed is not None, "the check should fail"
    assert report.failed.name == step, report.steps
    error = report.failed.error
    assert error is not None and error.hint, "it says how to fix it"
    assert error.step == step
    for secret in endpoint.secrets():
        assert secret not in str(error) and secret not in repr(report)
    return error


def check_passes(endpoint: Endpoint) -> list[str]:
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.ok, report.failed
    return [s.name for s in report.steps]


# -- check steps --------------------------------------------------------------------


def test_check_runs_every_step(server: FtpdInfo, folder: str) -> None:
    names = check_passes(endpoint_of(server, folder))
    expected = ["resolve", "connect", *(["tls"] if server.tls else []), "auth", "folder",
                "features", "probe-write", "probe-list", "probe-read", "probe-delete"]
    assert names == expected


def test_wrong_password(server: FtpdInfo, folder: str) -> None:
    error = check_fails(endpoint_of(server, folder, password="not-the-Passw0rd"), "auth")
    assert isinstance(error, AuthError) and "530" in str(error)
    assert "offsite credentials set" in str(error)


def test_no_password_stored(server: FtpdInfo, folder: str) -> None:
    error = check_fails(endpoint_of(server, folder, password=""), "auth")
    assert isinstance(error, AuthError) and "no password is stored" in str(error)


def test_untrusted_certificate(ftpsd: FtpdInfo, folder: str, tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other")
    error = check_fails(endpoint_of(ftpsd, folder, ca_file=str(other.ca_file)), "tls")
    assert isinstance(error, TLSFailed) and "certificate verify failed" in str(error)
    assert "ca_file" in error.hint
    # and without a ca_file the system's CAs do not know the test CA either
    bare = attrs.evolve(endpoint_of(ftpsd, folder), options={})
    assert isinstance(check_fails(bare, "tls"), TLSFailed)


def test_certificate_for_another_host(ftpsd_misnamed: FtpdInfo) -> None:
    # Its certificate names backup.example.com (and localhost), not 127.0.0.1.
    error = check_fails(endpoint_of(ftpsd_misnamed, "x"), "tls")
    assert isinstance(error, TLSFailed) and "certificate verify failed" in str(error)
    assert "mismatch" in str(error).lower() or "127.0.0.1" in str(error)


def test_tls_verify_off_is_explicit_and_loud(ftpsd: FtpdInfo, folder: str, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    other = make_certs(tmp_path / "other")
    caplog.set_level(logging.WARNING)
    check_passes(endpoint_of(ftpsd, folder, ca_file=str(other.ca_file), tls_verify=False))
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("tls_verify = false" in r.getMessage() and "NOT" in r.getMessage()
               for r in warned), caplog.text
    assert ftpsd.password not in caplog.text


def test_ftps_to_a_server_without_tls(ftpd: FtpdInfo, folder: str) -> None:
    error = check_fails(endpoint_of(ftpd, folder, scheme="ftps"), "tls")
    assert isinstance(error, TLSFailed) and "does not offer TLS" in str(error)


@pytest.mark.parametrize("which", ["ftpd_offered", "ftpsd"])
def test_no_password_in_clear_to_a_server_that_offers_tls(
        request: pytest.FixtureRequest, which: str) -> None:
    server: FtpdInfo = request.getfixturevalue(which)
    folder = f"t-{uuid.uuid4().hex}"
    plain = endpoint_of(server, folder, scheme="ftp")
    plain = attrs.evolve(plain, options={})  # no ca_file: ftp:// takes none
    error = check_fails(plain, "auth")
    assert isinstance(error, Fatal) and "clear text" in str(error)
    assert "ftps://" in error.hint and "allow_plaintext_password" in error.hint
    assert not (server.root / folder).exists(), "it never logged in"
    if which == "ftpd_offered":
        # said explicitly, it goes; and ftps:// to the same server is the better way
        check_passes(attrs.evolve(plain, options={"allow_plaintext_password": True}))
        check_passes(endpoint_of(attrs.evolve(server, tls="required"), folder))
    shutil.rmtree(server.root / folder, ignore_errors=True)


def test_missing_nested_folder_is_created(server: FtpdInfo, folder: str) -> None:
    check_passes(endpoint_of(server, f"{folder}/a/b c/d"))
    assert (server.root / folder / "a" / "b c" / "d").is_dir()


def test_absolute_folder_with_a_double_slash(server: FtpdInfo, folder: str) -> None:
    # ftp://host//x is /x at the server: here the same as the home's x.
    endpoint = endpoint_of(server, f"/{folder}/abs")
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        assert session.conn.root == f"/{folder}/abs"
        session.put("f.ofi", BytesSource(b"abs"))
    assert (server.root / folder / "abs" / "f.ofi").read_bytes() == b"abs"


def test_folder_without_permission_to_create(server: FtpdInfo, folder: str) -> None:
    (server.root / folder).mkdir()
    server.deny_writes(server.root / folder)
    error = check_fails(endpoint_of(server, f"{folder}/new"), "folder")
    assert isinstance(error, PermissionDenied)


def test_target_path_that_is_a_file(server: FtpdInfo) -> None:
    error = check_fails(endpoint_of(server, "a-file"), "folder")
    assert "is a file where a folder is needed" in str(error)
    assert (server.root / "a-file").read_bytes() == b"not a folder"


def test_nothing_listens(server: FtpdInfo, folder: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = check_fails(attrs.evolve(endpoint_of(server, folder), port=port), "connect")
    assert isinstance(error, ConnectFailed) and error.retryable
    assert f"127.0.0.1:{port}" in str(error)


def test_host_that_does_not_resolve(ftpd: FtpdInfo, folder: str) -> None:
    endpoint = attrs.evolve(endpoint_of(ftpd, folder), host="no-such-host.invalid")
    assert isinstance(check_fails(endpoint, "resolve"), ResolveFailed)


@pytest.mark.parametrize(("option", "value"), [("passive", "yes"), ("timeout", 0),
                                           ("tls_verify", "false"), ("ca_file", 5)])
def test_option_values_are_checked(ftpd: FtpdInfo, folder: str, option: str,
                                   value: object) -> None:
    endpoint = endpoint_of(ftpd, folder, **{option: value})
    with pytest.raises(Fatal, match=f"option {option} must"):
        Transport.for_endpoint(endpoint).connect(endpoint).close()


def test_active_mode(server: FtpdInfo, folder: str) -> None:
    endpoint = endpoint_of(server, folder, passive=False)
    data = random_bytes(2 * MiB + 5, seed=3)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("active.ofi", BytesSource(data))
        assert read_all(session, "active.ofi", 7) == data[7:]
        assert [f.path for f in session.list()] == ["active.ofi"]


# -- uploads: segments, resume, dropped data connections -------------------------------


def source_of(kind: str, data: bytes, tmp_path: Path) -> Source:
    """The bytes as a source in memory, or as a local file (which plain FTP
    sends by sendfile: see offsite_ftp.datachannel)."""
    if kind == "bytes":
        return BytesSource(data)
    path = tmp_path / f"source-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return FileSource(path)


@pytest.mark.parametrize("kind", ["bytes", "file"])
def test_a_put_goes_in_confirmed_segments(server: FtpdInfo, folder: str, kind: str,
                                          tmp_path: Path) -> None:
    endpoint = endpoint_of(server, folder)
    data = random_bytes(5 * MiB + 3, seed=4)
    tokens: list[int] = []
    progress: list[int] = []
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.conn.segment_min = MiB
        session.put("seg/x.ofi", source_of(kind, data, tmp_path),
                    on_token=lambda t: tokens.append(int(t["offset"])),
                    on_progress=progress.append)
        assert read_all(session, "seg/x.ofi") == data
    assert tokens[0] == 0 and tokens[1] == MiB, tokens  # the first segment, confirmed
    assert tokens == sorted(tokens) and tokens[-1] == len(data)
    assert progress == sorted(progress) and progress[-1] == len(data)
    assert set(tokens) <= set(progress), "each segment's end was reported as progress"
    assert (server.root / folder / "seg" / "x.ofi").read_bytes() == data


def test_a_bandwidth_limit_paces_a_local_file(server: FtpdInfo, folder: str,
                                              tmp_path: Path) -> None:
    # The limit wraps the source, so even a local file over plain FTP goes
    # through the limiter's reads (not sendfile): its bucket sees every byte.
    endpoint = endpoint_of(server, folder)
    data = random_bytes(3 * MiB + 1, seed=7)
    limit = BandwidthLimit(1 << 40)
    taken: list[int] = []
    take = limit.bucket.take
    limit.bucket.take = lambda n: (taken.append(n), take(n))[1]  # type: ignore[method-assign]
    transport = Transport.for_endpoint(endpoint, wrappers=[limit])
    with transport.connect(endpoint) as session:
        session.put("paced.ofi", source_of("file", data, tmp_path))
    assert sum(taken) == len(data)
    assert (server.root / folder / "paced.ofi").read_bytes() == data


@pytest.mark.parametrize("kind", ["bytes", "file"])
def test_a_dropped_data_connection_resumes_where_the_server_stopped(
        server: FtpdInfo, folder: str, kind: str, tmp_path: Path) -> None:
    endpoint = endpoint_of(server, folder)
    data = random_bytes(6 * MiB + 11, seed=5)
    drop_at = 3 * MiB + 500_000
    tokens: list[dict[str, Any]] = []
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.conn.segment_min = MiB
        server.drop_next_upload(drop_at)
        with pytest.raises(Transient) as caught:
            session.put("d/x.ofi", source_of(kind, data, tmp_path),
                        on_token=lambda t: tokens.append(dict(t)))
    assert caught.value.step == "put" and caught.value.path == "d/x.ofi"
    assert server.password not in str(caught.value)
    partial = paths.partial_path("d/x.ofi")
    assert not (server.root / folder / "d" / "x.ofi").exists(), "nothing under the final name"
    held = (server.root / folder / partial).stat().st_size
    # the first segment (1 MiB) was confirmed, then the server kept drop_at
    # bytes of the second: the token trusts exactly what SIZE showed after it
    assert held >= MiB + drop_at
    assert tokens[-1]["offset"] == held
    # a new session (the engine's retry) resumes from the token: only the rest moves
    again = RecordingSource(data)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put("d/x.ofi", again, resume=tokens[-1])
        assert raw_paths(session) == {"d/x.ofi"}
    assert placed.size == len(data)
    assert again.offsets == [tokens[-1]["offset"]]
    resent = len(data) - again.offsets[0]
    assert resent <= len(data) - MiB, f"sent {resent} bytes again"
    assert (server.root / folder / "d" / "x.ofi").read_bytes() == data


def test_a_partial_longer_than_the_source_is_replaced(server: FtpdInfo, folder: str) -> None:
    # FTP cannot cut a file short: the upload starts again from 0 and replaces it.
    endpoint = endpoint_of(server, folder)
    data = random_bytes(1 * MiB, seed=6)
    (server.root / folder).mkdir()
    (server.root / folder / paths.partial_path("long.ofi")).write_bytes(b"j" * (2 * MiB))
    token = {"partial": paths.partial_path("long.ofi"), "offset": 500_000}
    again = RecordingSource(data)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("long.ofi", again, resume=token)
    assert again.offsets == [0]
    assert (server.root / folder / "long.ofi").read_bytes() == data


def test_a_get_closed_early_leaves_the_session_usable(server: FtpdInfo, folder: str) -> None:
    endpoint = endpoint_of(server, folder)
    data = random_bytes(8 * MiB + 1, seed=7)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("big.ofi", BytesSource(data))
        with session.get("big.ofi", 0) as f:
            assert f.read(100_000) == data[:100_000]
        session.put("after.ofi", BytesSource(b"fine"))
        assert read_all(session, "big.ofi", 5) == data[5:]
        assert {f.path for f in session.list()} == {"big.ofi", "after.ofi"}


def test_get_of_a_folder_is_not_found(server: FtpdInfo, folder: str) -> None:
    endpoint = endpoint_of(server, folder)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("sub/x.ofi", BytesSource(b"x"))
        with pytest.raises(NotFound):
            read_all(session, "sub")


# -- the LIST fallback and error translation (the parsers, on real server texts) -------


NOW = 1_764_000_000.0  # 2025-11-24T16:00:00Z


@pytest.mark.parametrize(("line", "expected"), [
    # pyftpdlib
    ("-rw-r--r--   1 root     root       300000 Nov 24 15:38 a b.ofi",
     ("a b.ofi", "file", 300000, "2025-11-24T15:38")),
    # vsftpd, numeric owners, a year for older files
    ("-rw-------    1 1000     1000         1234 Jan 03  2019 old.ofi",
     ("old.ofi", "file", 1234, "2019-01-03T00:00")),
    ("drwxr-xr-x    2 0        0            4096 Mar 01 09:05 set",
     ("set", "dir", 4096, "2025-03-01T09:05")),
    # a date later in the year than today: last year's
    ("-rw-r--r-- 1 u g 5 Dec 30 23:59 x", ("x", "file", 5, "2024-12-30T23:59")),
    ("lrwxrwxrwx   1 u g 11 Nov 20 10:00 link -> target", ("link", "other", 11,
                                                           "2025-11-20T10:00")),
    # IIS / DOS style
    ("11-24-25  03:38PM              123456 iis file.ofi",
     ("iis file.ofi", "file", 123456, "2025-11-24T15:38")),
    ("11-24-2025  12:05AM       <DIR>          folder", ("folder", "dir", 0,
                                                         "2025-11-24T00:05")),
])
def test_list_lines(line: str, expected: tuple[str, str, int, str]) -> None:
    import time

    entry = parse_list_line(line, NOW)
    assert entry is not None
    stamp = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(entry.mtime))
    assert (entry.name, entry.kind, entry.size, stamp) == expected


def test_lines_that_are_not_entries() -> None:
    assert parse_list_line("total 12", NOW) is None
    assert parse_list_line("drwxr-xr-x 2 u g 4096 Nov 20 10:00 .", NOW) is None
    assert parse_mlsd_line("type=cdir;modify=20251124000000; .") is None


def test_mlsx_facts() -> None:
    entry = parse_mlsd_line("type=file;size=12;modify=20251124153800.5;perm=r; semi;colon x")
    assert entry is not None and (entry.name, entry.size, entry.mtime) == \
        ("semi;colon x", 12, NOW - 1320 + 0.5)
    reply = "250-Listing /a/b.ofi\n type=file;size=3;modify=20251124160000; /a/b.ofi\n250 End."
    placed = parse_mlst_reply(reply)
    assert placed is not None and (placed.name, placed.size, placed.mtime) == ("b.ofi", 3, NOW)


@pytest.mark.parametrize(("reply", "kind"), [
    ("530 Authentication failed.", AuthError),
    ("550 No such file or directory.", NotFound),
    ("501 No such directory.", NotFound),
    ("550 Not enough privileges.", PermissionDenied),
    ("553 Could not create file.", PermissionDenied),
    ("550 Permission denied.", PermissionDenied),
    ("552 Requested file action aborted. Exceeded storage allocation.", StorageFull),
    ("452 Insufficient storage space.", StorageFull),
    ("426 No space left on device; transfer aborted.", StorageFull),
    ("550 Disk quota exceeded.", StorageFull),
    ("421 Too many connections.", Transient),
    ("425 Can't open data connection.", Transient),
    ("426 Connection reset by the test server; transfer aborted.", Transient),
    ("502 Command not implemented.", Fatal),
])
def test_replies_are_translated(reply: str, kind: type[TargetError]) -> None:
    error_class = ftplib.error_temp if reply.startswith("4") else ftplib.error_perm
    error = errors.translate(error_class(reply))
    assert type(error) is kind, error
    assert error.retryable == (kind is Transient)
    assert reply[4:].rstrip(".") in str(error)


def test_broken_connections_are_transient() -> None:
    for exc in (EOFError(), TimeoutError("timed out"), ConnectionResetError(104, "reset"),
                BrokenPipeError(32, "Broken pipe")):
        translated = errors.translate(exc)
        assert isinstance(translated, Transient), exc


# -- the command line, end to end --------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, server: FtpdInfo, folder: str) -> Callable[..., Any]:
    dest = tmp_path / "destination"
    dest.mkdir()
    conf = tmp_path / "conf"
    conf.mkdir()
    config = conf / "offsite.toml"
    options = "".join(f'{k} = "{v}"\n' for k, v in server.options().items())
    config.write_text(f'''
[[job]]
name = "nightly"
destination = "{dest}"
[[job.target]]
name = "vault"
url = "{server.url(folder)}"
[job.target.options]
{options}''')

    def run(*args: str, code: int = 0, input: str | None = None) -> Any:
        result = CliRunner().invoke(cli, ["--config", str(config), *args], input=input)
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert server.password not in result.stdout + result.stderr
        return result

    run.dest = dest  # type: ignore[attr-defined]
    return run


def test_replicate_with_consolidation_and_restore(site: Callable[..., Any], server: FtpdInfo,
                                                   folder: str, tmp_path: Path) -> None:
    site("credentials", "set", "nightly.vault", "--stdin",
         input=json.dumps({"password": "wrong-Passw0rd"}))
    refused = site("check", code=4)
    assert "auth" in refused.stdout and "530" in refused.stdout
    endtoend.replicate_consolidate_restore(
        site, site.dest, tmp_path,  # type: ignore[attr-defined]
        lambda: os.listdir(server.root / folder), credentials={"password": server.password})
    site("check")

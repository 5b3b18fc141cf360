"""offsite-webdav's own rules and bad input: TLS both ways, 401 against 403,
HTML error pages, odd folder names, digest, options, and the end-to-end run
whose interrupted upload starts again from its first byte."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from offsite.errors import (
    AuthError,
    Fatal,
    NotFound,
    PermissionDenied,
    TargetError,
    TLSFailed,
    Transient,
)
from offsite.session import Transport
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.sources import random_bytes
from offsite.transport import BytesSource, Endpoint
from offsite_webdav.propfind import NotWebDAV, href_path, parse_multistatus, quote_path
from offsite_webdav.testserver import READONLY, DavInfo


def check_fails(endpoint: Endpoint, step: str) -> TargetError:
    """Check ``endpoint``; it must fail at ``step`` with a fix, and leak no secret."""
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.failed is not None and report.failed.name == step, report.steps
    assert report.steps[-1] is report.failed
    error = report.failed.error
    assert error is not None and error.hint, "every failure says how to fix it"
    text = f"{error} {error!r} {report!r}"
    for secret in endpoint.secrets():
        assert secret not in text
    assert "Traceback" not in text and "ParseError" not in text
    return error


def roundtrip(endpoint: Endpoint, name: str = "set/a.ofi", size: int = 300_001) -> None:
    data = random_bytes(size, seed=size)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put(name, BytesSource(data))
        with session.get(name) as stream:
            assert stream.read() == data
        assert [(f.path, f.size) for f in session.list()] == [(name, size)]
        assert placed.checksum and placed.checksum.startswith("etag:")


# -- TLS --------------------------------------------------------------------------


def test_an_untrusted_certificate_is_refused_at_the_tls_step(dav_https: DavInfo) -> None:
    endpoint = dav_https.endpoint("x")
    untrusted = attrs.evolve(endpoint, options={})  # no ca_file: the system's CAs
    error = check_fails(untrusted, "tls")
    assert isinstance(error, TLSFailed) and "certificate verify failed" in str(error)
    assert "ca_file" in error.hint
    assert Transport.for_endpoint(endpoint).check(endpoint).ok, "with ca_file it works"


def test_tls_verify_false_works_and_says_so_loudly(dav_https: DavInfo, dav_folder: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    endpoint = dav_https.endpoint(dav_folder, tls_verify=False)
    endpoint = attrs.evolve(endpoint, options={"tls_verify": False})
    caplog.set_level(logging.WARNING)
    report = Transport.for_endpoint(endpoint).check(endpoint)
    assert report.ok, report.failed
    assert "verification is OFF" in caplog.text
    assert "NOT verified" in next(s.detail for s in report.steps if s.name == "tls")


def test_plain_http_to_an_https_port(dav_https: DavInfo) -> None:
    endpoint = attrs.evolve(dav_https.endpoint("x"), scheme="webdav", options={})
    error = check_fails(endpoint, "auth")
    assert isinstance(error, Fatal) and "speaks HTTPS" in str(error)
    assert "webdavs://" in error.hint


def test_https_to_a_plain_http_port(dav_http: DavInfo, dav_certs: Any) -> None:
    endpoint = attrs.evolve(dav_http.endpoint("x"), scheme="webdavs",
                            options={"ca_file": str(dav_certs.ca_file)})
    error = check_fails(endpoint, "tls")
    assert isinstance(error, TLSFailed) and "does not speak TLS" in str(error)
    assert "webdav://" in error.hint


# -- credentials and permissions ----------------------------------------------------


def test_a_wrong_password_is_told_apart_from_a_refused_folder(dav_http: DavInfo) -> None:
    wrong = attrs.evolve(dav_http.endpoint("x"), credentials={"password": "wrong-Secret-1"})
    error = check_fails(wrong, "auth")
    assert isinstance(error, AuthError) and "401" in str(error)
    # The right password, but a folder in the read-only share: 403 at the folder step.
    error = check_fails(dav_http.endpoint(f"{READONLY}/new-folder"), "folder")
    assert isinstance(error, PermissionDenied) and "403" in str(error)
    assert "Forbidden" in str(error), "the server's page is named by its title"


def test_no_password_stored(dav_http: DavInfo) -> None:
    error = check_fails(attrs.evolve(dav_http.endpoint("x"), credentials={}), "auth")
    assert isinstance(error, AuthError) and "none is stored" in str(error)


def test_digest_authentication(dav_digest: DavInfo, dav_folder: str) -> None:
    endpoint = dav_digest.endpoint(dav_folder, auth="digest")
    assert Transport.for_endpoint(endpoint).check(endpoint).ok
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        for i in range(3):  # every put after the first goes with the nonce already known
            data = random_bytes(2_000_000 + i, seed=i)
            session.put(f"d/{i}.ofi", BytesSource(data))
            with session.get(f"d/{i}.ofi", 5) as stream:
                assert stream.read() == data[5:]
        assert len(session.list()) == 3
    basic = attrs.evolve(endpoint, options={})
    assert isinstance(check_fails(basic, "auth"), AuthError), "the server wants digest"
    wrong = attrs.evolve(endpoint, credentials={"password": "wrong-Secret-2"})
    assert isinstance(check_fails(wrong, "auth"), AuthError)


# -- servers that answer with web pages ----------------------------------------------


def _html(address: str, folder: str) -> Endpoint:
    return Endpoint.from_url(f"webdav://u@{address}/{folder}", name="dav-test",
                             credentials={"password": "html-Secret-3"})


def test_an_html_500_page(html_server: str) -> None:
    error = check_fails(_html(html_server, "status-500/backups"), "auth")
    assert isinstance(error, Transient) and "500" in str(error)
    assert "an HTML page ('500 Internal Server Error')" in str(error)


def test_an_html_403_page(html_server: str) -> None:
    error = check_fails(_html(html_server, "status-403/backups"), "folder")
    assert isinstance(error, PermissionDenied)
    assert "an HTML page ('403 Forbidden')" in str(error)


def test_a_web_server_without_webdav(html_server: str) -> None:
    error = check_fails(_html(html_server, "backups"), "folder")
    assert isinstance(error, Fatal) and "not WebDAV XML" in str(error)
    assert "Welcome to our portal" in str(error) and "WebDAV" in error.hint


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("dav", ["http", "https"])
def test_a_folder_with_spaces_non_ascii_hash_and_percent(request: pytest.FixtureRequest,
                                                         dav: str, dav_folder: str) -> None:
    info: DavInfo = request.getfixturevalue(f"dav_{dav}")
    folder = f"{dav_folder}/Sicherung Größe/a#b 100%/日本 ;x"
    endpoint = info.endpoint(folder)
    assert "%23" in info.url(folder) and endpoint.path == f"/{folder}"
    roundtrip(endpoint, "sub dir/ü #1 50%.ofi")
    on_disk = info.root / folder / "sub dir" / "ü #1 50%.ofi"
    assert on_disk.is_file(), sorted(str(p) for p in (info.root / dav_folder).rglob("*"))


def test_a_file_in_the_way_of_a_folder(dav_http: DavInfo, dav_folder: str) -> None:
    endpoint = dav_http.endpoint(dav_folder)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("taken", BytesSource(b"a file"))
        with pytest.raises(Fatal, match="is a file where a folder is needed"):
            session.put("taken/x.ofi", BytesSource(b"x"))
        with pytest.raises(NotFound):
            session.delete("nothing/here.ofi")
    assert (dav_http.root / dav_folder / "taken").read_bytes() == b"a file", "nothing lost"


def test_a_folder_removed_between_puts_is_made_again(dav_http: DavInfo,
                                                     dav_folder: str) -> None:
    import shutil

    endpoint = dav_http.endpoint(dav_folder)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        session.put("set/a.ofi", BytesSource(b"a"))
        shutil.rmtree(dav_http.root / dav_folder / "set")
        session.put("set/b.ofi", BytesSource(b"b"))
        assert [f.path for f in session.list()] == ["set/b.ofi"]


def test_connections_racing_to_make_the_same_folder_all_get_it(dav_http: DavInfo,
                                                               dav_folder: str) -> None:
    """Two jobs' targets on one server make the same folders at once: wsgidav
    answers the MKCOL that loses the race with a 500 (FileExistsError), which
    must not fail the connect (it did, once in a full CI run)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(8):
        endpoint = dav_http.endpoint(f"{dav_folder}/r{round_}/a/b/c")
        barrier = threading.Barrier(6)

        def connect(n: int, endpoint: Endpoint = endpoint,
                    barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            with Transport.for_endpoint(endpoint).connect(endpoint) as session:
                session.put(f"f{n}.ofi", BytesSource(b"%d" % n))

        with ThreadPoolExecutor(6) as pool:
            for done in [pool.submit(connect, n) for n in range(6)]:
                done.result()
        assert sorted(p.name for p in (dav_http.root / dav_folder / f"r{round_}/a/b/c").iterdir()
                      ) == [f"f{n}.ofi" for n in range(6)]


@pytest.mark.parametrize("name", ["a b.ofi", "ü/ß.ofi", "100%.ofi", "%20.ofi", "a#b;c?d.ofi",
                                  "日本/バ.ofi", "emoji 🎉.ofi"])
def test_paths_are_percent_encoded_both_ways(name: str) -> None:
    quoted = quote_path(f"/base/{name}")
    assert quoted.isascii() and " " not in quoted and "#" not in quoted
    assert href_path(quoted) == f"/base/{name}"
    assert href_path(f"https://host:8443{quoted}/") == f"/base/{name}", "a full URL too"


def test_multistatus_parsing() -> None:
    body = (b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">'
            b"<d:response><d:href>/f/</d:href><d:propstat><d:prop><d:resourcetype>"
            b"<d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
            b"</d:propstat></d:response>"
            b"<d:response><d:href>/f/a%20b.ofi</d:href><d:propstat><d:prop>"
            b"<d:getcontentlength>12</d:getcontentlength><d:getetag>W/\"abc\"</d:getetag>"
            b"<d:getlastmodified>Wed, 25 Nov 2026 00:38:41 GMT</d:getlastmodified>"
            b"<d:resourcetype/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
            b"<d:propstat><d:prop><d:displayname/></d:prop>"
            b"<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>"
            b"</d:multistatus>")
    folder, entry = parse_multistatus(body)
    assert (folder.path, folder.folder) == ("/f", True)
    assert (entry.path, entry.folder, entry.size, entry.etag) == ("/f/a b.ofi", False, 12, "abc")
    assert entry.mtime == 1795567121.0
    with pytest.raises(NotWebDAV, match="an HTML page"):
        parse_multistatus(b"<html><head><title>Login</title><body><p>x<br></body></html>")
    with pytest.raises(NotWebDAV, match="not a WebDAV multistatus"):
        parse_multistatus(b"<?xml version='1.0'?><error>no</error>")


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "named"), [
    ({"timeout": "soon"}, "timeout"), ({"timeout": 0}, "timeout"),
    ({"auth": "ntlm"}, "auth"), ({"tls_verify": "no"}, "tls_verify"),
    ({"ca_file": "/etc/ssl/certs/ca-certificates.crt"}, "ca_file")])
def test_bad_option_values_are_named(dav_http: DavInfo, options: dict[str, Any],
                                     named: str) -> None:
    endpoint = attrs.evolve(dav_http.endpoint("x"), options=options)
    with pytest.raises(Fatal, match=named):
        Transport.for_endpoint(endpoint).connect(endpoint)


def test_the_plugin_declares_it_cannot_resume(dav_http: DavInfo) -> None:
    info = Transport.for_endpoint(dav_http.endpoint("x")).info
    assert info.capabilities == {"resume": False} and not info.resumable


# -- end to end ----------------------------------------------------------------------------


def _wait(until: Callable[[], bool], seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_replicate_interrupt_restart_and_restore(tmp_path: Path, dav_https: DavInfo,
                                                 dav_folder: str) -> None:
    spec = TargetSpec(dav_https.url(dav_folder), {"ca_file": str(dav_https.ca_file)},
                      {"password": dav_https.password})
    site = FaultSite(tmp_path, spec, size=4 << 20, bwlimit="2M")
    for _ in range(4):
        site.image()
    folder = dav_https.root / dav_folder
    run = site.start("run")
    _wait(lambda: any(p.stat().st_size > 0 for p in folder.glob(".*offsite-partial"))
          if folder.is_dir() else False)
    run.send_signal(signal.SIGKILL)
    run.communicate()
    assert not [p for p in folder.iterdir() if not p.name.startswith(".")], \
        "nothing under a final name yet"
    done = site.offsite("run")
    assert done.returncode == 0, done.stderr
    assert "restarted from the beginning: the target cannot resume an upload" in done.stderr
    assert dav_https.password not in done.stdout + done.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["vol-b001-i003.ofi", "vol-b001.ofi"], "the incrementals consolidated"
    site.assert_sound()
    assert site.restore("vol-b001-i003.ofi") == site.vol.states[3]

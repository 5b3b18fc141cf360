"""offsite-webdav's cases of the bad-input matrix (docs/ERRORS.md) that its
other tests leave out: a host that does not resolve, a port where nothing
listens, a target URL that names a file."""

from __future__ import annotations

from offsite.errors import ConnectFailed, ResolveFailed
from offsite.testing.badinput import UNRESOLVABLE, check_fails, refused, unresolvable
from offsite_webdav.testserver import DavInfo


def test_a_host_that_does_not_resolve(dav_http: DavInfo, dav_folder: str) -> None:
    error = check_fails(unresolvable(dav_http.endpoint(dav_folder)), "resolve")
    assert isinstance(error, ResolveFailed) and not error.retryable
    assert f"cannot resolve host '{UNRESOLVABLE}'" in str(error)


def test_a_port_where_nothing_listens(dav_https: DavInfo, dav_folder: str) -> None:
    endpoint = refused(dav_https.endpoint(dav_folder))
    error = check_fails(endpoint, "connect")
    assert isinstance(error, ConnectFailed) and error.retryable
    assert f"127.0.0.1:{endpoint.port}" in str(error)


def test_a_target_path_that_is_a_file(dav_http: DavInfo, dav_folder: str) -> None:
    afile = dav_http.root / dav_folder / "a-file"
    afile.parent.mkdir(parents=True, exist_ok=True)
    afile.write_bytes(b"not a folder")
    error = check_fails(dav_http.endpoint(f"{dav_folder}/a-file"), "folder")
    assert "is a file where a folder is needed" in str(error)
    assert afile.read_bytes() == b"not a folder", "nothing lost at the target"

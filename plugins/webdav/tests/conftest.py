"""Real WebDAV servers on 127.0.0.1 for the WebDAV plugin's tests.

Fixtures:

* ``dav_certs`` (session): a throw-away CA and a certificate for 127.0.0.1
  (:func:`offsite.testing.certs.make_certs`); nothing else trusts the CA.
* ``dav_http`` / ``dav_https`` (session): wsgidav on cheroot
  (:func:`offsite_webdav.testserver.run_wsgidav`), over HTTP and over
  HTTPS with ``dav_certs``; each yields a
  :class:`~offsite_webdav.testserver.DavInfo` (``url(folder)`` gives a
  target URL, ``root`` the served folder, ``password`` the only one that
  works). Basic authentication.
* ``dav_digest`` (session): the same over HTTP with digest authentication.
* ``dav_folder`` (function): a fresh folder name under the servers' roots,
  removed afterwards (from both servers' folders).
* ``fake_dav``: a tiny HTTP server that plays a WebDAV server whose every
  PUT is answered with a given status (503 for a busy server, 507 for a
  full one); call ``fake_dav(status)`` for its base URL.
* ``html_server``: a tiny HTTP server that answers everything with an
  HTML page: ``/status-500/…`` a 500 error page, ``/status-403/…`` a 403
  error page, anything else 200 with a web page (a web server without
  WebDAV, a proxy's portal).

The fakes are plain ``http.server`` servers: they stand for servers we
cannot run here (a full disk, an overloaded or misconfigured server), not
for the library, which talks to them over real sockets.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("wsgidav")
pytest.importorskip("cheroot")

from offsite.testing.certs import TestCerts, make_certs
from offsite_webdav.testserver import DavInfo, run_wsgidav


@pytest.fixture(scope="session")
def dav_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("dav-certs"))


@pytest.fixture(scope="session")
def dav_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavInfo]:
    with run_wsgidav(tmp_path_factory.mktemp("dav-http")) as info:
        yield info


@pytest.fixture(scope="session")
def dav_https(tmp_path_factory: pytest.TempPathFactory, dav_certs: TestCerts
              ) -> Iterator[DavInfo]:
    with run_wsgidav(tmp_path_factory.mktemp("dav-https"), certs=dav_certs) as info:
        yield info


@pytest.fixture(scope="session")
def dav_digest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavInfo]:
    with run_wsgidav(tmp_path_factory.mktemp("dav-digest"), digest=True) as info:
        yield info


@pytest.fixture
def dav_folder(dav_http: DavInfo, dav_https: DavInfo) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    for info in (dav_http, dav_https):
        shutil.rmtree(info.root / name, ignore_errors=True)


# --------------------------------------------------------------------------- fakes

Answer = tuple[int, dict[str, str], bytes]


def _multistatus(path: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:">'
            f"<D:response><D:href>{path}</D:href><D:propstat><D:prop><D:resourcetype>"
            f"<D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status>"
            f"</D:propstat></D:response></D:multistatus>").encode()


def _page(status: int, title: str) -> bytes:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{status} {title}"
            f"</title><style>body {{ font: 12px sans-serif }}</style></head><body><h1>{title}"
            f"</h1><p>Something went wrong & we are sorry<br></body></html>").encode()


@contextmanager
def _serve(answer: Callable[[str, str], Answer]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            # Read the body first: unread, it would be taken for the next request.
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                got = self.rfile.read(min(left, 1 << 20))
                if not got:
                    break
                left -= len(got)
            status, headers, body = answer(self.command, self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_PROPFIND = do_MKCOL = do_MOVE = do_DELETE = _any
        do_OPTIONS = do_HEAD = _any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="session")
def fake_dav() -> Iterator[Callable[[int], str]]:
    """``fake_dav(status)``: host:port of a WebDAV server answering PUT with ``status``."""
    with contextlib.ExitStack() as stack:
        made: dict[int, str] = {}

        def make(status: int) -> str:
            if status not in made:
                def answer(method: str, path: str) -> Answer:
                    xml = {"Content-Type": "application/xml; charset=utf-8"}
                    if method == "PROPFIND":
                        return 207, xml, _multistatus(path)
                    if method == "OPTIONS":
                        return 200, {"DAV": "1,2", "Allow": "PUT, MOVE, MKCOL, PROPFIND, "
                                     "DELETE"}, b""
                    if method == "PUT":
                        return status, {"Content-Type": "text/html"}, _page(status, "No")
                    return 201, {}, b""

                made[status] = stack.enter_context(_serve(answer))
            return made[status]

        yield make


@pytest.fixture(scope="session")
def html_server() -> Iterator[str]:
    """host:port of a server that answers with HTML pages (see the module)."""

    def answer(method: str, path: str) -> Answer:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path.startswith("/status-500"):
            return 500, html, _page(500, "Internal Server Error")
        if path.startswith("/status-403"):
            return 403, html, _page(403, "Forbidden")
        return 200, html, _page(200, "Welcome to our portal")

    with _serve(answer) as address:
        yield address


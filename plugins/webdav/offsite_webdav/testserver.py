"""wsgidav on cheroot, on loopback, for the tests and ``bench/webdav.py``.

:func:`run_wsgidav` is a context manager: it serves a folder over WebDAV
on a free 127.0.0.1 port (the kernel picks it: the socket is bound before
the port is read, so there is no race), over HTTPS when given
certificates (:func:`offsite.testing.certs.make_certs`), waits until a
``PROPFIND`` answers and yields a :class:`DavInfo`::

    with run_wsgidav(root, certs=make_certs(tmp)) as dav:
        endpoint = Endpoint.from_url(dav.url("backups"),
                                     options={"ca_file": str(dav.ca_file)},
                                     credentials={"password": dav.password})

The server holds two shares: ``/`` (read-write, the folder ``root``) and
``/readonly`` (``root/.readonly``, read-only: writes there are answered
403, for the tests of a refused write). Only ``user`` with ``password``
may log in; basic authentication by default, digest with ``digest=True``.

The server runs in threads of the calling process (cheroot's own pool),
which is what the tests want: nothing to clean up when a test process
dies. The benchmark runs it in a child process with :func:`serve_forever`,
so that the server's CPU is not the client's GIL.

Needs ``wsgidav`` and ``cheroot`` (the plugin's ``test`` extra); nothing
here is used by the plugin itself.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import requests

if TYPE_CHECKING:
    from offsite.testing.certs import TestCerts
    from offsite.transport import Endpoint

USER = "offsite"
READY_TIMEOUT_S = 10.0
#: The read-only share (its folder lives inside the root, hidden).
READONLY = "readonly"

log = logging.getLogger(__name__)


@attrs.frozen
class DavInfo:
    """A running WebDAV server: where it is and how to log in."""

    host: str
    port: int
    user: str
    password: str = attrs.field(repr=False)
    #: The folder the ``/`` share serves.
    root: Path
    #: The CA that signed the server's certificate (HTTPS only).
    ca_file: Path | None = None

    @property
    def scheme(self) -> str:
        """``webdavs`` over HTTPS, else ``webdav``."""
        return "webdavs" if self.ca_file else "webdav"

    @property
    def base_url(self) -> str:
        """The server's HTTP(S) URL, for HTTP clients and rclone."""
        return f"{'https' if self.ca_file else 'http'}://{self.host}:{self.port}"

    def url(self, folder: str = "", *, scheme: str | None = None) -> str:
        """An offsite target URL for ``folder`` (percent-encoded here)."""
        path = urllib.parse.quote(folder.strip("/"), safe="/")
        return f"{scheme or self.scheme}://{self.user}@{self.host}:{self.port}/{path}"

    def endpoint(self, folder: str = "", *, name: str = "dav-test",
                 **options: Any) -> Endpoint:
        """The offsite endpoint of ``folder`` on this server, password stored
        and (over HTTPS) the test CA as ``ca_file``."""
        from offsite.transport import Endpoint

        if self.ca_file is not None:
            options = {"ca_file": str(self.ca_file), **options}
        return Endpoint.from_url(self.url(folder), name=name, options=options,
                                 credentials={"password": self.password})

    def rclone_flags(self) -> list[str]:
        """rclone's flags for this server: its CA for HTTPS (the webdav backend
        honours --ca-cert)."""
        return ["--ca-cert", str(self.ca_file)] if self.ca_file else []

    def rclone_env(self) -> dict[str, str] | None:
        """Variables for ``rclone ... :webdav:PATH`` against this server, or
        None without rclone. Merge them into os.environ for the subprocess.

        The password goes in obscured (rclone's reversible form), through the
        environment, never argv; RCLONE_CONFIG=/dev/null: no config file.
        """
        rclone = shutil.which("rclone")
        if rclone is None:
            return None
        obscured = subprocess.run(  # noqa: S603 - rclone, reading the password on stdin
            [rclone, "obscure", "-"], input=self.password, check=True, capture_output=True,
            text=True).stdout.strip()
        return {"RCLONE_CONFIG": "/dev/null", "RCLONE_WEBDAV_URL": self.base_url,
                "RCLONE_WEBDAV_VENDOR": "other", "RCLONE_WEBDAV_USER": self.user,
                "RCLONE_WEBDAV_PASS": obscured}


def _app(root: Path, user: str, password: str, digest: bool) -> Any:
    from wsgidav.wsgidav_app import WsgiDAVApp

    readonly = root / f".{READONLY}"
    readonly.mkdir(parents=True, exist_ok=True)
    return WsgiDAVApp({
        "provider_mapping": {
            "/": str(root),
            f"/{READONLY}": {"root": str(readonly), "readonly": True},
        },
        "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
        "http_authenticator": {
            "domain_controller": None,  # None: SimpleDomainController(simple_dc)
            "accept_basic": not digest,
            "accept_digest": digest,
            "default_to_digest": digest,
        },
        "verbose": 1,
        "logging": {"enable": False},
        # Keep the directory browser on (the default): with it off wsgidav
        # answers HEAD and GET on folders with 403, which webdavclient3's
        # own checks take for a refusal.
        "lock_storage": True,
        "property_manager": True,
    })


@contextmanager
def run_wsgidav(root: Path, *, certs: TestCerts | None = None, user: str = USER,
                password: str | None = None, digest: bool = False,
                threads: int = 16) -> Iterator[DavInfo]:
    """Serve ``root`` over WebDAV on 127.0.0.1 until the block ends."""
    from cheroot import wsgi

    password = password or secrets.token_urlsafe(12)
    root.mkdir(parents=True, exist_ok=True)
    server = wsgi.Server(("127.0.0.1", 0), _app(root, user, password, digest),
                         numthreads=threads, timeout=30)
    # cheroot writes errors (a client that dropped the TLS handshake, as the
    # untrusted-certificate tests do) straight to stderr: route them to logging.
    server.error_log = lambda msg="", level=20, traceback=False: log.log(
        level, msg, exc_info=traceback)
    if certs is not None:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(str(certs.cert_file), str(certs.key_file))
    server.prepare()  # binds and listens: bind_addr now has the real port
    host, port = server.bind_addr[:2]
    thread = threading.Thread(target=server.serve, name=f"wsgidav-{port}", daemon=True)
    thread.start()
    info = DavInfo(str(host), int(port), user, password, root,
                   certs.ca_file if certs is not None else None)
    try:
        _wait_ready(info, digest)
        yield info
    finally:
        server.stop()
        thread.join(10)


def _wait_ready(info: DavInfo, digest: bool) -> None:
    auth: Any = (requests.auth.HTTPDigestAuth(info.user, info.password) if digest
                 else (info.user, info.password))
    end = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            r = requests.request("PROPFIND", info.base_url + "/", auth=auth,
                                 headers={"Depth": "0"}, timeout=2,
                                 verify=str(info.ca_file) if info.ca_file else True)
            if r.status_code == 207:
                return
            raise RuntimeError(f"wsgidav answered PROPFIND with {r.status_code}")
        except (requests.ConnectionError, RuntimeError):
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def serve_forever(root: str, port_file: str, ca_dir: str = "") -> None:
    """Run a server until killed, writing ``port password`` to ``port_file``
    (for a benchmark's child process: ``python -c 'from offsite_webdav.testserver
    import serve_forever; serve_forever(...)'``)."""
    from offsite.testing.certs import make_certs

    certs = make_certs(Path(ca_dir)) if ca_dir else None
    with run_wsgidav(Path(root), certs=certs, threads=8) as info:
        Path(port_file).write_text(f"{info.port} {info.password}\n")
        threading.Event().wait()


__all__ = ["READONLY", "USER", "DavInfo", "run_wsgidav", "serve_forever"]

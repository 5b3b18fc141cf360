"""A real FTP/FTPS server on 127.0.0.1 (pyftpdlib), for tests and benchmarks.

    with run_ftpd(home, tls="required", certs=make_certs(tmp)) as ftpd:
        url = ftpd.url("folder")   # ftps://offsite@127.0.0.1:PORT/folder

It runs in a thread with its own IOLoop (``IOLoop.instance()`` is a
process-wide singleton) and binds port 0. Modes:

* ``tls=None``: plain FTP, no ``AUTH TLS`` in FEAT;
* ``tls="required"``: explicit FTPS, TLS required on control and data
  connections (a plain login is refused with 550);
* ``tls="offered"``: TLS offered (``AUTH TLS`` in FEAT) but not required: a
  server to which ``ftp://`` must not send a password in clear.

``mlsd=False`` takes ``MLSD``/``MLST`` away (FEAT no longer lists them), for
the ``LIST`` fallback. Handler settings live in *class attributes* in
pyftpdlib, so each server gets its own subclasses. Knobs for fault tests,
changed while it runs: :meth:`FtpdInfo.deny_writes` (a folder where the user
may only read) and :meth:`FtpdInfo.drop_next_upload` (the server resets an
upload's data connection after so many bytes, as a broken network would).

``python -m offsite_ftp.testserver HOME [--tls] [--no-mlsd]`` runs one in
a process of its own (the benchmark measures its CPU) and prints its
:class:`FtpdInfo` as one JSON line; it stops when its stdin closes.

Needs the plugin's ``test`` extra: ``pyftpdlib`` and ``pyOpenSSL``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from offsite.testing.certs import TestCerts, make_certs

USER = "offsite"
PASSWORD = "ftp-Passw0rd-secret"  # noqa: S105 - a throw-away test server's


@attrs.frozen
class FtpdInfo:
    """A running test server.

    :ivar root: the user's home on disk: what ``/`` is over FTP.
    :ivar ca_file: the CA that signed the server's certificate (TLS modes).
    """

    host: str
    port: int
    root: Path
    user: str = USER
    password: str = attrs.field(default=PASSWORD, repr=False)
    tls: str | None = None
    ca_file: str | None = None
    #: The handler class (in-process servers only), for the fault knobs.
    handler: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls == "required" else "ftp"

    def url(self, folder: str = "", scheme: str | None = None) -> str:
        return f"{scheme or self.scheme}://{self.user}@{self.host}:{self.port}/{folder}"

    def options(self) -> dict[str, Any]:
        """The target options a client of this server needs."""
        return {"ca_file": self.ca_file} if self.tls == "required" else {}

    def on_disk(self, url_path: str, *more: str) -> Path:
        """Where a target folder (an endpoint's ``path``) and what is in it
        lie on the server's disk."""
        return Path(self.root, url_path.lstrip("/"), *more)

    def deny_writes(self, folder: Path) -> None:
        """From now on the user may only list and read in ``folder`` (on disk,
        under :attr:`root`): writes there get ``550 Not enough privileges``."""
        self.handler.authorizer.override_perm(self.user, str(folder), perm="elr",
                                              recursive=True)

    def drop_next_upload(self, after: int) -> None:
        """The next upload's data connection is reset by the server once it
        has received ``after`` bytes (the bytes up to then are written)."""
        self.handler.dtp_handler.drop_after = after

    # -- rclone as a reference client (benchmarks) --------------------------------

    def rclone_remote(self, path: str) -> str:
        """An on-the-fly rclone remote; the password goes in :meth:`rclone_env`,
        never in argv (where ``ps`` and a failed command's report show it).

        ``disable_mlsd``: pyftpdlib answers MLSD of a missing folder with 501,
        which rclone 1.60 does not take for "not found". ``disable_tls13``:
        over TLS 1.3 rclone's uploads arrive cut short (see datachannel).
        """
        opts = f"host={self.host},port={self.port},user={self.user},disable_mlsd=true"
        if self.tls == "required":
            opts += ",explicit_tls=true,disable_tls13=true"
        return f":ftp,{opts}:{path}"

    def rclone_env(self, obscured_password: str) -> dict[str, str]:
        """rclone's environment: the password (``rclone obscure`` it first), and
        the CA (rclone's FTP backend ignores --ca-cert; Go reads SSL_CERT_FILE)."""
        env = {"RCLONE_CONFIG": os.devnull, "RCLONE_FTP_PASS": obscured_password}
        if self.ca_file and self.tls == "required":
            env["SSL_CERT_FILE"] = self.ca_file
        return env


def _handler(tls: str | None, certs: TestCerts | None, mlsd: bool, home: Path,
             user: str, password: str, buffer: int) -> type:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.exceptions import _FileReadWriteError
    from pyftpdlib.handlers import DTPHandler, FTPHandler

    base: type = FTPHandler
    if tls:
        from pyftpdlib.handlers import TLS_FTPHandler  # needs pyOpenSSL

        base = TLS_FTPHandler

    class DroppingDTP(base.dtp_handler):  # type: ignore[name-defined,misc]
        """Resets an upload once it has :attr:`drop_after` bytes (once)."""

        drop_after: int | None = None
        ac_in_buffer_size = buffer
        ac_out_buffer_size = buffer

        def handle_error(self) -> None:
            # pyftpdlib 2.2 loses the errno of a failed write: a full disk is
            # answered "426 None; transfer aborted." over FTP, and not at all
            # over FTPS (its TLS handle_error closes without an answer). Answer
            # as a sound server does: "426 No space left on device; …".
            try:
                raise
            except _FileReadWriteError as exc:
                cause = exc.__cause__
                why = (os.strerror(cause.errno) if isinstance(cause, OSError) and cause.errno
                       else "write failed")
                self._resp = (f"426 {why}; transfer aborted.",
                              logging.getLogger("pyftpdlib").warning)
                DTPHandler.close(self)  # not the TLS close: no TLS shutdown now
            except Exception:
                super().handle_error()

        def recv(self, buffer_size: int) -> bytes:
            # (Not handle_read: DTPHandler binds handle_read_event to its own
            # handle_read at class creation.)
            limit = type(self).drop_after
            if limit is not None and self.receive and self.tot_bytes_received >= limit:
                type(self).drop_after = None
                with contextlib.suppress(Exception):  # RST, not FIN: a broken network
                    self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self._resp = ("426 Connection reset by the test server; transfer aborted.",
                              logging.getLogger("pyftpdlib").info)
                DTPHandler.close(self)
                return b""
            data: bytes = super().recv(buffer_size)
            return data

    def ftp_CWD(self: Any, path: str) -> str | None:
        # pyftpdlib's CWD does a process-wide os.chdir() there and back: a
        # test that removes the folder as soon as the answer is out leaves
        # the process in a deleted folder, and every later CWD (of every
        # server in the process) fails on os.getcwd(). Same answers, no chdir.
        if not self.fs.isdir(path):
            why = "Not a directory" if self.fs.lexists(path) else "No such file or directory"
            self.respond(f"550 {why}.")
            return None
        self.fs.cwd = self.fs.fs2ftp(path)
        self.respond(f'250 "{self.fs.cwd}" is the current directory.')
        return path

    authorizer = DummyAuthorizer()
    # e=cwd l=list r=retr a=appe d=dele f=rename m=mkd w=stor M=chmod T=mfmt
    authorizer.add_user(user, password, str(home), perm="elradfmwMT")
    lo = random.randrange(50000, 59000)  # noqa: S311 - a port window, no secret
    attrs_: dict[str, Any] = dict(
        authorizer=authorizer,
        dtp_handler=DroppingDTP,
        ftp_CWD=ftp_CWD,
        passive_ports=range(lo, lo + 100),  # pyftpdlib falls back to any port if all busy
        banner="offsite test ftpd ready",
        auth_failed_timeout=0.05,  # the default waits 3 s before every 530
        timeout=60,
        # Not always "elradfmwMT"-style: a copy per server, never shared.
        proto_cmds=dict(base.proto_cmds),
    )
    if not mlsd:
        for cmd in ("MLSD", "MLST"):
            attrs_["proto_cmds"].pop(cmd, None)
    if tls:
        assert certs is not None
        attrs_.update(certfile=str(certs.cert_file), keyfile=str(certs.key_file),
                      tls_control_required=tls == "required",
                      tls_data_required=tls == "required",
                      ssl_context=None)  # get_ssl_context() caches it on the class
    return type("OffsiteTestFTPHandler", (base,), attrs_)


@contextlib.contextmanager
def run_ftpd(home: Path, *, tls: str | None = None, certs: TestCerts | None = None,
             mlsd: bool = True, user: str = USER, password: str = PASSWORD,
             buffer: int = 65536) -> Iterator[FtpdInfo]:
    """Serve ``home`` over FTP on a free 127.0.0.1 port while inside.

    :param tls: None, ``"required"`` or ``"offered"`` (see the module doc).
    :param certs: the server's certificate; made in ``home``'s parent when
        None and ``tls`` is set.
    :param buffer: pyftpdlib's data socket read/write size (its default 64 KiB).
    """
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    # Else pyftpdlib's IOLoop puts its own stderr handler on first use.
    logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())
    logging.getLogger("pyftpdlib").propagate = False
    if tls and certs is None:
        certs = make_certs(home.parent / f"{home.name}-certs")
    handler = _handler(tls, certs, mlsd, home, user, password, buffer)
    ioloop = IOLoop()
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=ioloop)
    host, port = server.address[:2]
    stop = threading.Event()

    def serve() -> None:
        try:
            # Not serve_forever(blocking=False): that logs a banner every call.
            while not stop.is_set():
                ioloop.loop(timeout=0.05, blocking=False)
        finally:
            server.close_all()

    thread = threading.Thread(target=serve, name=f"ftpd-{port}", daemon=True)
    thread.start()
    try:
        yield FtpdInfo(host, port, home, user, password, tls,
                       str(certs.ca_file) if tls and certs else None, handler)
    finally:
        stop.set()
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description="a pyftpdlib test server until stdin closes")
    parser.add_argument("home", type=Path)
    parser.add_argument("--tls", action="store_true", help="explicit FTPS, TLS required")
    parser.add_argument("--no-mlsd", action="store_true")
    parser.add_argument("--buffer", type=int, default=65536)
    args = parser.parse_args()
    with run_ftpd(args.home, tls="required" if args.tls else None, mlsd=not args.no_mlsd,
                  buffer=args.buffer) as info:
        print(json.dumps({"host": info.host, "port": info.port, "root": str(info.root),
                          "user": info.user, "password": info.password, "tls": info.tls,
                          "ca_file": info.ca_file}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()


__all__ = ["PASSWORD", "USER", "FtpdInfo", "run_ftpd"]

"""Proxies on loopback that a test can break and mend.

:class:`TcpProxy` can be cut and restored: a server that goes away in the
middle of a transfer and comes back, for any protocol.

::

    with TcpProxy("127.0.0.1", sshd.port) as proxy:
        url = f"sftp://user@127.0.0.1:{proxy.port}/folder"
        ...
        proxy.cut()       # every connection reset, new ones refused
        proxy.restore()   # accepting again, on the same port

The server itself keeps running: what the client sees is what it sees when
the network or the server goes down (a reset, then "connection refused"),
without a test server having to stop and start on the same port. FTP's
passive data connections go to the server directly; cutting the control
connection ends the transfer all the same.

:meth:`TcpProxy.corrupt` flips a bit of what the server sends, at a chosen
byte of every connection that gets that far: a link or a middlebox that
damages data, which a signed or encrypted protocol must refuse, never hand
on.

:class:`HttpRefusingProxy` passes HTTP requests on to a real server, but
while it is told to, answers every write (``PUT``, ``POST``) itself with an
error the test chooses: a bucket policy that denies writes (403
AccessDenied), a store whose disks are full (507), for a server such as
moto that cannot be made to refuse or to fill up.

::

    with HttpRefusingProxy(moto.endpoint_url) as proxy:
        proxy.refuse(507, "XMinioStorageFull")   # writes answered 507
        proxy.accept()                            # passed on again
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import socket
import struct
import threading
import urllib.parse
from types import TracebackType
from typing import Any


class TcpProxy:
    """Forwards connections from ``127.0.0.1:port`` to ``host:upstream_port``.

    :ivar port: where clients connect.
    :ivar connections: how many client connections were accepted so far.
    """

    def __init__(self, host: str, upstream_port: int) -> None:
        self.upstream = (host, upstream_port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._corrupt_at: int | None = None
        self.connections = 0
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self.restore()

    # -- control -------------------------------------------------------------

    def restore(self) -> None:
        """Accept connections (again), on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name="offsite-test-proxy").start()

    def cut(self) -> None:
        """Reset every connection and refuse new ones, until :meth:`restore`."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for s in doomed:
            with contextlib.suppress(OSError):
                # A reset, as a dead server gives, not a clean end.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                # close() alone does not wake the pipe thread blocked in recv()
                # on it (Linux), and the socket would live on in the kernel.
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def corrupt(self, at: int | None) -> None:
        """Flip the lowest bit of byte ``at`` (counted from 0) of what the
        server sends on each connection, from now on; None: pass it unchanged."""
        self._corrupt_at = at

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- forwarding --------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
                self.connections += 1
            for a, b, downstream in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, downstream), daemon=True,
                                 name="offsite-test-proxy-pipe").start()

    def _pipe(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        passed = 0
        try:
            while data := src.recv(256 * 1024):
                at = self._corrupt_at
                if downstream and at is not None and passed <= at < passed + len(data):
                    damaged = bytearray(data)
                    damaged[at - passed] ^= 1
                    data = bytes(damaged)
                passed += len(data)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # a clean end, passed on
        except OSError:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


class HttpRefusingProxy:
    """An HTTP proxy at ``endpoint_url`` in front of ``upstream_url`` that can
    answer writes with an S3-style XML error instead of passing them on.

    Request and answer bodies are held in memory whole: it is for tests
    with bodies of a few MiB, not for benchmarks.

    :ivar endpoint_url: where clients connect (``http://127.0.0.1:PORT``).
    :ivar refused: how many writes it answered itself so far.
    """

    #: Hop-by-hop headers, not passed on (RFC 9110 §7.6.1).
    HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer",
                     "upgrade", "proxy-connection", "expect"})

    def __init__(self, upstream_url: str) -> None:
        url = urllib.parse.urlsplit(upstream_url)
        self._upstream = (url.hostname or "127.0.0.1", url.port or 80)
        self._refusal: tuple[int, str] | None = None
        self.refused = 0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="offsite-test-http-proxy")
        self._thread.start()

    def refuse(self, status: int, code: str) -> None:
        """Answer every write ``status`` with an ``<Error><Code>code</Code>`` body."""
        self._refusal = (status, code)

    def accept(self) -> None:
        """Pass every request on again."""
        self._refusal = None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> HttpRefusingProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.1: keep-alive and "Expect: 100-continue", as clients use them.
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                refusal = proxy._refusal
                if refusal is not None and self.command in ("PUT", "POST"):
                    proxy.refused += 1
                    status, code = refusal
                    self._answer(status, [("Content-Type", "application/xml")], (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>{code}</Message></Error>").encode())
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in proxy.HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    # A HEAD's Content-Length is the object's size: pass it on as it is.
                    drop = proxy.HOP if self.command == "HEAD" else proxy.HOP | {"content-length"}
                    self._answer(answer.status, [(k, v) for k, v in answer.getheaders()
                                                 if k.lower() not in drop], data)
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler


__all__ = ["HttpRefusingProxy", "TcpProxy"]

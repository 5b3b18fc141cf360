"""A TCP proxy on loopback that a test can cut and restore: a server that
goes away in the middle of a transfer and comes back, for any protocol.

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
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType


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
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True,
                                 name="offsite-test-proxy-pipe").start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(256 * 1024):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # a clean end, passed on
        except OSError:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


__all__ = ["TcpProxy"]

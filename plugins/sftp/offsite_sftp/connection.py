"""Opening an SFTP session, step by step, and :class:`SftpConnection`, what it gives.

:func:`connect` goes through the steps ``offsite check`` reports: resolve and
connect (the core's :func:`~offsite.checks.open_tcp`), the SSH ``handshake``
(ciphers in our order of preference), the ``hostkey``
(:mod:`offsite_sftp.hostkeys`) and ``auth`` (:mod:`offsite_sftp.auth`); it
opens the SFTP channel, with a deadline paramiko lacks, then the target
``folder`` (:mod:`offsite_sftp.folders`). Last it asks the server for its
request sizes, timing that one request to size what a put keeps in flight
(:mod:`offsite_sftp.wire`).
"""

from __future__ import annotations

import os
import posixpath
import socket
import threading
import time
from pathlib import Path

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
import attrs

from offsite.checks import Steps, open_tcp
from offsite.errors import Fatal, Transient
from offsite.transport import Endpoint
from offsite_sftp.auth import authenticate
from offsite_sftp.folders import target_root
from offsite_sftp.hostkeys import DEFAULT_PORT, check_host_key
from offsite_sftp.inbuffer import ChunkedPipe
from offsite_sftp.wire import SAFE_REQUEST, request_sizes
from offsite_sftp.writes import LINK_RATE, MAX_IN_FLIGHT, MIN_IN_FLIGHT

#: Fastest first where the server agrees (measured: aes256-gcm leads on AES-NI).
PREFERRED_CIPHERS = ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes128-ctr",
                     "aes256-ctr", "aes192-ctr")
#: The SSH window for what the server sends us (reads). Measured: larger
#: windows did not read faster here but let paramiko buffer 20-30 MiB.
WINDOW = 8 << 20
#: The largest SSH packet we take on the SFTP channel (paramiko's default:
#: 32 KiB). OpenSSH then answers a 255 KiB read in one packet instead of
#: eight, and each packet costs paramiko's reader thread the same Python work
#: whatever its size. Measured (1 GiB get from the test sshd, with
#: :class:`~offsite_sftp.inbuffer.ChunkedPipe`): 2.72 s at 32 KiB, 2.19 s at
#: 256 KiB.
MAX_PACKET = 256 << 10
#: Seconds to wait for the server, where the ``connect_timeout`` option says nothing.
DEFAULT_TIMEOUT = 15


@attrs.frozen
class SftpConnection:
    """An open SFTP session: the SSH transport, the client, the target folder."""

    endpoint: Endpoint = attrs.field(repr=lambda e: e.url)
    transport: paramiko.Transport = attrs.field(repr=False)
    sftp: paramiko.SFTPClient = attrs.field(repr=False)
    root: str
    #: The largest write request the server takes (see
    #: :func:`~offsite_sftp.wire.request_sizes`).
    write_size: int = SAFE_REQUEST
    #: The largest read request the server answers in full.
    read_size: int = SAFE_REQUEST
    #: Bytes of write requests a put keeps unanswered (see
    #: :data:`~offsite_sftp.writes.MIN_IN_FLIGHT`).
    in_flight: int = MIN_IN_FLIGHT

    def remote(self, path: str) -> str:
        """The server's path for ``path`` (relative to the target folder)."""
        return posixpath.join(self.root, path) if path else self.root


def connect(endpoint: Endpoint, steps: Steps) -> SftpConnection:
    """An SFTP session at ``endpoint``'s folder, each step reported to ``steps``.

    :raises Fatal: no user or host in the URL, or a step that cannot succeed.
    """
    host, port = endpoint.host, endpoint.port or DEFAULT_PORT
    options = endpoint.options
    timeout = float(options.get("connect_timeout", DEFAULT_TIMEOUT))
    if not host or not endpoint.username:
        raise Fatal("an SFTP URL needs a user and a host",
                    fix="write it as sftp://user@host[:port]/folder")
    sock = _EagerAcks.adopt(open_tcp(steps, host, port, timeout))
    transport = paramiko.Transport(sock, default_window_size=WINDOW)
    try:
        conn = _session(endpoint, steps, transport, host, port, timeout)
    except BaseException:
        transport.close()
        raise
    sock.eager = False  # set up: from here on our ACKs ride on requests
    return conn


def _session(endpoint: Endpoint, steps: Steps, transport: paramiko.Transport,
             host: str, port: int, timeout: float) -> SftpConnection:
    options = endpoint.options
    wanted = options.get("ciphers") or PREFERRED_CIPHERS
    security = transport.get_security_options()
    security.ciphers = [c for c in wanted if c in security.ciphers] or security.ciphers
    with steps.step("handshake", "SSH"):
        transport.start_client(timeout=timeout)
    known = Path(os.path.expanduser(str(options.get("known_hosts", "~/.ssh/known_hosts"))))
    with steps.step("hostkey", str(known)):
        check_host_key(transport.get_remote_server_key(), host, port, known)
    with steps.step("auth", endpoint.username):
        authenticate(transport, endpoint)
    sftp = _open_sftp(transport, timeout)
    with steps.step("folder", endpoint.path):
        root = target_root(sftp, endpoint.path)
    started = time.monotonic()
    write_size, read_size = request_sizes(sftp)
    # One request and its answer: the link's round trip, or a little more
    # (which only lets a put keep more in flight).
    trip = time.monotonic() - started
    in_flight = max(MIN_IN_FLIGHT, min(MAX_IN_FLIGHT, int(trip * LINK_RATE)))
    return SftpConnection(endpoint, transport, sftp, root, write_size, read_size, in_flight)


def _open_sftp(transport: paramiko.Transport, timeout: float) -> paramiko.SFTPClient:
    """The SFTP channel, or an error within ``timeout``: paramiko's
    ``SFTPClient.from_transport`` waits an hour for the channel and forever
    for the subsystem, and a server that stops answering between the login
    and the channel (seen behind a link that went down) would hang the run."""
    chan = transport.open_session(timeout=timeout, max_packet_size=MAX_PACKET)
    if chan is None:
        raise Transient("the server did not open an SFTP channel")
    # Before the subsystem starts, so that nothing has been buffered yet.
    chan.in_buffer = ChunkedPipe()
    chan.settimeout(max(timeout, 60.0))
    # invoke_subsystem has no timeout of its own: closing the transport ends its wait.
    watchdog = threading.Timer(timeout, transport.close)
    watchdog.daemon = True
    watchdog.start()
    try:
        chan.invoke_subsystem("sftp")
        sftp = paramiko.SFTPClient(chan)
    except (EOFError, paramiko.SSHException) as exc:
        if watchdog.finished.is_set() or not transport.is_active():
            raise Transient(f"the server did not open an SFTP channel within {timeout:g} s",
                            fix="check the server's load and logs") from exc
        raise
    finally:
        watchdog.cancel()
    return sftp


class _EagerAcks(socket.socket):
    """The SSH connection's socket, acknowledging what arrives at once while
    the session is set up (while :attr:`eager`).

    Right after authentication sshd sends a message that wants no answer (its
    host keys, ``hostkeys-00@openssh.com``), then its answer to our channel
    open. With Nagle's algorithm on the server's side that answer waits for
    our ACK of the first message, and Linux delays an ACK by 40 ms when it has
    nothing to send back: every connection lost 45 ms there. ``TCP_QUICKACK``
    does not stick, so it is set after every read. Once the session is up our
    ACKs ride on requests, and a system call per read would only cost CPU.
    """

    #: Linux only; elsewhere this is a plain socket.
    eager = hasattr(socket, "TCP_QUICKACK")

    @classmethod
    def adopt(cls, sock: socket.socket) -> _EagerAcks:
        """``sock`` (which this takes over) as an :class:`_EagerAcks`."""
        timeout = sock.gettimeout()
        adopted = cls(fileno=sock.detach())
        adopted.settimeout(timeout)
        return adopted

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        data = super().recv(bufsize, flags)
        if self.eager:
            self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


__all__ = ["DEFAULT_TIMEOUT", "PREFERRED_CIPHERS", "WINDOW", "SftpConnection", "connect"]

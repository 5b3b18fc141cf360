"""The shared check steps against a real TLS server on loopback.

:func:`offsite.checks.start_tls` is the ``tls`` step of every plugin that
speaks TLS: it must accept a certificate only when it chains to the given
CA file and names the host, and say which of the two went wrong.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from offsite.checks import Steps, open_tcp, start_tls
from offsite.errors import TargetError, TLSFailed
from offsite.testing.certs import TestCerts, make_certs


def _steps() -> Steps:
    def translate(exc: BaseException, step: str) -> TargetError:
        assert isinstance(exc, TargetError), exc  # start_tls raises typed errors only
        exc.step = step
        return exc

    return Steps(translate)


def _serve(listener: socket.socket, context: ssl.SSLContext | None) -> None:
    """Accept, handshake (when TLS), send one greeting, close; until closed."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            if context is not None:
                conn = context.wrap_socket(conn, server_side=True)
            conn.sendall(b"hello\n")
        except (OSError, ssl.SSLError):
            pass  # the client refused our certificate: that is the test
        finally:
            conn.close()


def _server(context: ssl.SSLContext | None) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_serve, args=(listener, context), daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone does not
        listener.close()
        thread.join(5)


def _tls_context(certs: TestCerts) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_port(certs: TestCerts) -> Iterator[int]:
    yield from _server(_tls_context(certs))


@pytest.fixture(scope="module")
def plain_port() -> Iterator[int]:
    yield from _server(None)


def _handshake(port: int, host: str = "127.0.0.1", ca_file: Path | None = None) -> Steps:
    steps = _steps()
    sock = open_tcp(steps, "127.0.0.1", port, timeout=5)
    with start_tls(steps, sock, host, ca_file=str(ca_file) if ca_file else None) as tls:
        assert tls.recv(6) == b"hello\n"
    return steps


def test_a_certificate_from_the_ca_file_is_trusted(tls_port: int, certs: TestCerts) -> None:
    steps = _handshake(tls_port, ca_file=certs.ca_file)
    assert [(s.name, s.ok) for s in steps.steps] == [
        ("resolve", True), ("connect", True), ("tls", True)]


def test_localhost_is_named_too(tls_port: int, certs: TestCerts) -> None:
    _handshake(tls_port, host="localhost", ca_file=certs.ca_file)


def test_an_unknown_ca_is_refused_with_the_fix(tls_port: int) -> None:
    with pytest.raises(TLSFailed) as caught:
        _handshake(tls_port)  # the system's CAs only
    assert caught.value.step == "tls"
    assert "certificate verify failed" in str(caught.value)
    assert "ca_file" in caught.value.hint


def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    other = make_certs(tmp_path, host="backup.example.net")  # and localhost, not 127.0.0.1
    for port in _server(_tls_context(other)):
        with pytest.raises(TLSFailed, match="mismatch"):
            _handshake(port, ca_file=other.ca_file)


def test_a_plain_port_is_named_as_such(plain_port: int, certs: TestCerts) -> None:
    with pytest.raises(TLSFailed, match="serving TLS"):
        _handshake(plain_port, ca_file=certs.ca_file)


def test_an_unreadable_ca_file_is_named(tls_port: int, tmp_path: Path) -> None:
    with pytest.raises(TLSFailed, match="cannot load the CA file"):
        _handshake(tls_port, ca_file=tmp_path / "missing.pem")

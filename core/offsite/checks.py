"""Check steps: what ``offsite check`` reports, one line per step.

A plugin's ``connect`` hook runs its phases inside :meth:`Steps.step`
(``resolve``, ``connect``, ``tls``, ``hostkey``, ``auth``, ``folder`` …). The
core passes a :class:`Steps` on every connect, so the same code path that the
engine uses is the one a check reports on; a check then adds the plugin's own
``check`` hook and the core's write/list/read/delete probe. When a step fails
it records the translated :class:`~offsite.errors.TargetError` (with the step
set on it) and re-raises it, so a caller sees exactly where things broke.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs

from offsite.errors import ConnectFailed, ResolveFailed, TargetError, TLSFailed


@attrs.frozen
class CheckStep:
    """One step of connecting to or checking a target.

    :ivar name: ``resolve``, ``connect``, ``tls``, ``auth``, ``folder``,
        ``probe-write`` …
    :ivar detail: what was done (``127.0.0.1:22``, the folder's path …).
    :ivar error: why it failed, with the fix; ``None`` when it passed.
    """

    name: str
    ok: bool
    detail: str = ""
    error: TargetError | None = attrs.field(default=None, eq=False)
    seconds: float = 0.0


@attrs.frozen
class CheckReport:
    """The outcome of checking one target: its steps in order."""

    target: str
    steps: tuple[CheckStep, ...]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> CheckStep | None:
        """The step that failed, if any (steps stop at the first failure)."""
        return next((s for s in self.steps if not s.ok), None)


def open_tcp(steps: Steps, host: str, port: int, timeout: float, *,
             resolve_fix: str | None = None) -> socket.socket:
    """The ``resolve`` and ``connect`` steps every network plugin starts with.

    The socket sends small messages at once (``TCP_NODELAY``): the protocols
    are request and answer, and with Nagle's algorithm a request waits for
    the ACK of the one before, which the peer delays by up to 40 ms (measured
    on SSH: password authentication took 61 ms with Nagle, 19 ms without).

    :param resolve_fix: the fix when the host does not resolve, where the
        host is not the target URL's (an option such as S3's endpoint_url).
    :returns: the connected socket (the caller owns it).
    :raises ResolveFailed: the host name does not resolve.
    :raises ConnectFailed: nothing answers at ``host:port`` (retried).
    """
    with steps.step("resolve", host):
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ResolveFailed(exc.strerror or str(exc), host=host, fix=resolve_fix) from None
    with steps.step("connect", f"{host}:{port}"):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise ConnectFailed(exc.strerror or str(exc), address=f"{host}:{port}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def start_tls(steps: Steps, sock: socket.socket, host: str, *,
              ca_file: str | None = None) -> ssl.SSLSocket:
    """The ``tls`` step: a verified handshake on a connected socket.

    The server's certificate must chain to ``ca_file`` (the ``ca_file``
    target option: a private CA) or, without one, to the system's CAs, and
    must name ``host``. There is no switch to skip verification: a server
    with a self-signed certificate is trusted by naming that certificate as
    its ``ca_file``.

    :returns: the TLS socket (the caller owns it).
    :raises TLSFailed: the certificate is not trusted or does not name
        ``host``, or the server does not speak TLS on this port; ``sock``
        is closed then.
    """
    with steps.step("tls", host), _closed_on_error(sock):
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSFailed(f"cannot load the CA file {ca_file}: {exc}", host=host) from None
        try:
            return context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raise TLSFailed(f"certificate verify failed: {exc.verify_message or exc.reason}",
                            host=host) from None
        except ssl.SSLError as exc:
            # e.g. WRONG_VERSION_NUMBER: plain text where TLS was expected.
            raise TLSFailed(f"{exc.reason or exc}: is this port serving TLS?",
                            host=host) from None
        except OSError as exc:
            raise TLSFailed(f"the connection broke during the handshake "
                            f"({exc.strerror or exc})", host=host) from None


@contextmanager
def _closed_on_error(sock: socket.socket) -> Iterator[None]:
    try:
        yield
    except BaseException:
        sock.close()
        raise


class Steps:
    """Records steps as a plugin (and the core) runs them.

    :param translate: turns any exception into a :class:`TargetError`
        for a step (the core's translator, which asks the plugin's
        ``translate_error`` hook and scrubs secrets).
    """

    def __init__(self, translate: Callable[[BaseException, str], TargetError]) -> None:
        self._translate = translate
        self.steps: list[CheckStep] = []

    @contextmanager
    def step(self, name: str, detail: str = "", *, quiet: bool = False) -> Iterator[None]:
        """Run the body as step ``name``; record whether it passed.

        :param quiet: record only a failure (for a step that groups others).
        :raises TargetError: the body's failure, translated, with ``step=name``
            unless an inner step already named it.
        """
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            error = self._translate(exc, name)
            if not any(s.error is error for s in self.steps):  # an inner step has it
                self.steps.append(
                    CheckStep(name, False, detail, error, time.monotonic() - started)
                )
            if error is exc:
                raise
            raise error from exc
        if not quiet:
            self.steps.append(CheckStep(name, True, detail, None, time.monotonic() - started))

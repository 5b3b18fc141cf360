"""The fixtures the conformance suite runs on, in two tiers.

* **To provide** (they fail here, saying what to write):
  :meth:`TransportFixtures.endpoint`, a fresh, empty, working target folder
  for each test; :meth:`~TransportFixtures.broken_endpoint`, a target that
  cannot work, with the name of the check step that must fail;
  :meth:`~TransportFixtures.wrong_credentials`, the endpoint with secrets
  the server refuses, or why the protocol has none;
  :meth:`~TransportFixtures.faults`, how to make the real server refuse a
  write, run out of space or drop the connection, or why it cannot.
* **Capabilities and limits** (override when yours differ):
  ``supports_resume``, ``tamper_partial``, ``symlink``, ``stream_size``, ``heap_limit``,
  ``get_heap_limit``, ``read_heap_limit``, ``large_size``, ``unstorable``,
  ``name_limits``.

The core fixtures ``transport`` and ``session`` are never overridden: they
discover the plugin through its installed entry point, exactly as offsite
does at run time, and talk to it through the core's typed wrapper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import attrs
import pytest

from offsite.session import Session, Transport
from offsite.testing.conformance.contract import tamper_partial_file
from offsite.testing.conformance.names import NameLimits
from offsite.testing.sources import MiB
from offsite.transport import Endpoint, ResumeToken

#: ``tamper_partial(session, path, token, how)``: change what an interrupted
#: put of ``path`` left at the target (``how`` is ``"shorten"``,
#: ``"lengthen"`` or ``"remove"``); returns None, or why it cannot.
Tamper = Callable[[Session, str, ResumeToken, str], "str | None"]


@attrs.frozen
class Provoke:
    """What a fault's function gets: the transport, the working endpoint, and
    a session connected to it."""

    transport: Transport
    endpoint: Endpoint
    session: Session


#: ``symlink(link, points_to)``: make a symbolic link at the target, both
#: paths relative to the target folder.
Symlink = Callable[[str, str], None]

#: A function that makes the real server fail one way, through a call the
#: core makes (``provoke.session.put(...)``, ``provoke.transport.connect(...)``):
#: the test expects that call to raise the fault's error class.
Fault = Callable[[Provoke], object]


class TransportFixtures:
    """Fixtures the suite runs on; subclass it and provide the first four."""

    # -- to provide ---------------------------------------------------------

    @pytest.fixture
    def endpoint(self) -> Endpoint:
        """A working target whose folder is fresh and empty for each test."""
        raise NotImplementedError("provide an `endpoint` fixture: a fresh, empty target folder")

    @pytest.fixture
    def broken_endpoint(self) -> tuple[Endpoint, str]:
        """A target that cannot work, and the name of the check step that fails.

        A protocol with no network (a local folder) can still break: a
        target path that is a file fails the ``folder`` step.
        """
        raise NotImplementedError(
            "provide a `broken_endpoint` fixture: (endpoint, name of the step that must fail)"
        )

    @pytest.fixture
    def wrong_credentials(self, endpoint: Endpoint) -> Endpoint | str:
        """The endpoint with every secret field set to
        :data:`~offsite.testing.conformance.contract.CANARY`, which the server
        must refuse at the ``auth`` step; or a sentence saying why the
        protocol has no credentials (the tests that need them skip with it)."""
        raise NotImplementedError(
            "provide a `wrong_credentials` fixture: the endpoint with conformance.CANARY "
            "as every secret, or a string saying why your protocol takes none"
        )

    @pytest.fixture
    def faults(self) -> Mapping[str, Fault | str]:
        """How to make the real server fail in each way translate_error must
        tell apart: ``"permission"`` (a write the server refuses),
        ``"full"`` (no space left, or over quota) and ``"transient"`` (a
        dropped connection, a server error worth retrying). Each maps to a
        :data:`Fault`, or to a sentence saying why it cannot be provoked
        (the test skips with it). ``"missing"`` and ``"auth"`` need nothing:
        the suite provokes them itself."""
        raise NotImplementedError(
            "provide a `faults` fixture: for 'permission', 'full' and 'transient', a function "
            "of a conformance.Provoke that makes the real server fail so, or a string "
            "saying why it cannot"
        )

    # -- capabilities and limits ---------------------------------------------

    @pytest.fixture
    def supports_resume(self) -> bool:
        """Whether an interrupted put continues where it stopped (not from 0)."""
        return True

    @pytest.fixture
    def tamper_partial(self) -> Tamper:
        """How to change what an interrupted put left at the target behind the
        plugin's back. The default works where that is a file under
        :func:`offsite.paths.partial_path`; override it where the protocol
        keeps something else (an S3 multipart upload)."""
        return tamper_partial_file

    @pytest.fixture
    def symlink(self) -> Symlink | str:
        """How to make a symbolic link at the target (as an operator or another
        tool would, behind the plugin), or why the storage has none."""
        return "the fixtures do not say how to make a symlink at the target"

    @pytest.fixture
    def large_size(self) -> int:
        """A size past your protocol's largest chunk or part, not a multiple of any."""
        return 3 * MiB + 4097

    @pytest.fixture
    def stream_size(self) -> int:
        """The size of the streaming test's upload."""
        return 256 * MiB

    @pytest.fixture
    def heap_limit(self) -> int:
        """The Python heap peak allowed while putting ``stream_size``."""
        return 32 * MiB

    @pytest.fixture
    def get_heap_limit(self, heap_limit: int) -> int:
        """The heap growth allowed while getting ``stream_size`` (default: as put).

        A client library that reads ahead may buffer what its flow-control
        window allows; say how much here, and why, in your fixtures."""
        return heap_limit

    @pytest.fixture
    def read_heap_limit(self) -> int:
        """The heap growth allowed while restoring or verifying a 40 MiB image
        straight from the target (:mod:`offsite.testing.remote_read`; at most
        half of it). offsite holds up to eight payloads waiting for the
        restore's worker thread, the one it checks and writes, and a round
        of index entries (256 KiB blocks: under 3 MiB); the rest is your
        client's."""
        return 8 * MiB

    @pytest.fixture
    def unstorable(self) -> Mapping[str, str]:
        """What the protocol cannot hold in a name: a regular expression
        searched in one name component, each with why (default: nothing).
        Your ``put`` must refuse such a name, naming it
        (:mod:`~offsite.testing.conformance.names`)."""
        return {}

    @pytest.fixture
    def name_limits(self) -> NameLimits:
        """How long names may be (default: 255 bytes of UTF-8 a folder name,
        as POSIX file systems hold, and a file name short enough for its
        partial name to fit too)."""
        return NameLimits()

    # -- the core's (never overridden) ---------------------------------------

    @pytest.fixture
    def transport(self, endpoint: Endpoint) -> Transport:
        return Transport.for_endpoint(endpoint)

    @pytest.fixture
    def session(self, transport: Transport, endpoint: Endpoint) -> Iterator[Session]:
        with transport.connect(endpoint) as session:
            yield session

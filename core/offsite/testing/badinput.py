"""The target side of the bad-input matrix (docs/ERRORS.md): endpoints that
cannot work, and the one assertion every such case shares.

::

    error = check_fails(unresolvable(endpoint), "resolve")
    assert isinstance(error, ResolveFailed)

A case fails at a named check step, with a typed :class:`TargetError` whose
message names that step and says how to fix it, and without a secret in
what ``offsite check`` would print.
"""

from __future__ import annotations

import attrs

from offsite.errors import TargetError
from offsite.session import Transport
from offsite.testing.processes import free_port
from offsite.transport import Endpoint

#: A name that never resolves (RFC 6761 reserves ``.invalid``).
UNRESOLVABLE = "no-such-host.invalid"


def check_fails(endpoint: Endpoint, step: str) -> TargetError:
    """Check ``endpoint``: it must stop at ``step`` with a fix and no secret."""
    report = Transport.for_endpoint(endpoint).check(endpoint)
    failed = report.failed
    assert failed is not None and failed.name == step, report.steps
    assert report.steps[-1] is failed, "the steps stop at the failure"
    error = failed.error
    assert isinstance(error, TargetError) and error.step == step, error
    assert error.hint, "every failure says how to fix it"
    printed = f"{failed.detail} {error}"  # what `offsite check` prints for the step
    assert f"{step} failed" in printed, "the message names the step"
    for secret in endpoint.secrets():
        assert secret not in printed and secret not in repr(report)
    return error


def unresolvable(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` with a host name that does not resolve."""
    return attrs.evolve(endpoint, host=UNRESOLVABLE)


def refused(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` on a port of this machine where nothing listens."""
    return attrs.evolve(endpoint, host="127.0.0.1", port=free_port())

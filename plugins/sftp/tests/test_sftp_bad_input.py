"""offsite-sftp's cases of the bad-input matrix (docs/ERRORS.md) that its
other tests leave out: a host name that does not resolve."""

from __future__ import annotations

from typing import Any

from offsite.errors import ResolveFailed
from offsite.testing.badinput import UNRESOLVABLE, check_fails, unresolvable
from offsite.transport import Endpoint


def endpoint_of(sshd: Any, folder: str) -> Endpoint:
    return Endpoint.from_url(sshd.url(folder), name="sftp-test",
                             options={"known_hosts": str(sshd.known_hosts)},
                             credentials={"password": sshd.password})


def test_a_host_that_does_not_resolve(sshd: Any, sftp_folder: str) -> None:
    error = check_fails(unresolvable(endpoint_of(sshd, sftp_folder)), "resolve")
    assert isinstance(error, ResolveFailed) and not error.retryable
    assert f"cannot resolve host '{UNRESOLVABLE}'" in str(error)

"""offsite-s3's cases of the bad-input matrix (docs/ERRORS.md) that its
other tests leave out: an endpoint whose host does not resolve, and one where
nothing listens."""

from __future__ import annotations

from typing import Any

from offsite.errors import ConnectFailed, ResolveFailed
from offsite.testing.badinput import UNRESOLVABLE, check_fails
from offsite.testing.processes import free_port
from offsite.transport import Endpoint


def endpoint_at(moto_s3: Any, endpoint_url: str) -> Endpoint:
    """The test bucket's folder, reached through ``endpoint_url``."""
    return Endpoint.from_url(
        "s3://offsite-bad-input/nightly", name="s3-test",
        options={"endpoint_url": endpoint_url, "region": moto_s3.region,
                 "connect_timeout": 5},
        credentials={"access_key_id": moto_s3.access_key_id,
                     "secret_access_key": moto_s3.secret_access_key})


def test_an_endpoint_that_does_not_resolve(moto_s3: Any) -> None:
    error = check_fails(endpoint_at(moto_s3, f"http://{UNRESOLVABLE}:9000"), "resolve")
    assert isinstance(error, ResolveFailed) and not error.retryable
    assert f"cannot resolve host '{UNRESOLVABLE}'" in str(error)
    # The host came from an option, not from the URL (which names the bucket).
    assert f"check the target option endpoint_url (http://{UNRESOLVABLE}:9000)" in str(error)


def test_an_endpoint_where_nothing_listens(moto_s3: Any) -> None:
    port = free_port()
    error = check_fails(endpoint_at(moto_s3, f"http://127.0.0.1:{port}"), "connect")
    assert isinstance(error, ConnectFailed) and error.retryable
    assert f"127.0.0.1:{port}" in str(error) and "Connection refused" in str(error)

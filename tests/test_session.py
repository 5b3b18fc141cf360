"""The core's typed wrapper: translation, scrubbing, and contract enforcement.

A small test transport (a real plugin, made on the fly and discovered like
any other) misbehaves on purpose: library-style exceptions that carry the
password, a hook that returns nothing, a stream that fails mid-read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from offsite.errors import AuthError, Fatal, PluginError, TargetError
from offsite.session import Transport
from offsite.transport import BytesSource, Endpoint

MakeDist = Callable[..., str]

MISBEHAVING = '''
from offsite import hookimpl
from offsite.errors import AuthError, NotFound

class LibraryError(Exception):
    pass

class FailingStream:
    def read(self, n=-1):
        raise LibraryError("connection reset while reading")
    def close(self):
        pass

class Plugin:
    @hookimpl
    def connect(self, endpoint, steps):
        with steps.step("auth", endpoint.username):
            if endpoint.credentials.get("password") != "right":
                pw = endpoint.credentials["password"]
                raise LibraryError("login rejected for password " + pw)
        return endpoint
    @hookimpl
    def translate_error(self, exc):
        if isinstance(exc, LibraryError) and "login" in str(exc):
            return AuthError(str(exc))
        return None
    @hookimpl
    def put(self, conn, path, transfer):
        return None  # breaks the contract
    @hookimpl
    def get(self, conn, path, offset):
        if path == "reads-fail":
            return FailingStream()
        raise KeyError("internal state " + conn.credentials["password"])
    @hookimpl
    def list(self, conn, folder):
        from offsite.transport import RemoteFile
        return [RemoteFile("a/.b.ofi.offsite-partial", 1, 0.0), RemoteFile("a/b.ofi", 2, 0.0)]
    @hookimpl
    def delete(self, conn, path):
        raise NotFound()
    @hookimpl
    def close(self, conn):
        raise RuntimeError("close must never mask anything")

plugin = Plugin()
'''


@pytest.fixture
def transport(make_dist: MakeDist) -> Transport:
    make_dist("offsite-misbehaving", MISBEHAVING, schemes={"mis": "plugin"})
    return Transport.for_endpoint(Endpoint.from_url("mis://h/x"))


def ep(password: str) -> Endpoint:
    return Endpoint.from_url("mis://bob@h/x", name="t1", credentials={"password": password})


def test_translated_error_is_scrubbed_and_located(transport: Transport) -> None:
    with pytest.raises(AuthError) as caught:
        transport.connect(ep("WRONG-pw-123"))
    err = caught.value
    assert (err.step, err.target) == ("auth", "t1")
    assert "WRONG-pw-123" not in str(err) and "***" in str(err)


def test_check_reports_failed_auth_step(transport: Transport) -> None:
    report = transport.check(ep("WRONG-pw-123"))
    assert not report.ok and report.failed is not None
    assert report.failed.name == "auth" and isinstance(report.failed.error, AuthError)


def test_unknown_exception_becomes_fatal_naming_its_type(transport: Transport) -> None:
    with transport.connect(ep("right")) as session, pytest.raises(Fatal) as caught:
        session.get("x")
    assert "KeyError" in str(caught.value) and "right" not in caught.value.detail
    assert (caught.value.step, caught.value.path) == ("get", "x")


def test_read_errors_are_translated(transport: Transport) -> None:
    with transport.connect(ep("right")) as session:
        stream = session.get("reads-fail")
        with pytest.raises(TargetError, match="connection reset") as caught:
            stream.read(10)
        assert caught.value.path == "reads-fail"
        stream.close()


def test_hook_returning_nothing_is_a_plugin_error(transport: Transport) -> None:
    with transport.connect(ep("right")) as session, pytest.raises(PluginError, match="put"):
        session.put("y", BytesSource(b"data"))


def test_typed_error_gets_path_step_target(transport: Transport) -> None:
    with transport.connect(ep("right")) as session, pytest.raises(TargetError) as caught:
        session.delete("/z//w.ofi")
    err = caught.value
    assert (err.path, err.step, err.target) == ("z/w.ofi", "delete", "t1")


def test_list_hides_partials_and_paths_are_checked(transport: Transport) -> None:
    with transport.connect(ep("right")) as session:
        assert [f.path for f in session.list()] == ["a/b.ofi"]
        with pytest.raises(ValueError, match=r"\.\."):
            session.delete("../escape")


FAILS_OUTSIDE_STEPS = MISBEHAVING.replace(
    "    def connect(self, endpoint, steps):\n",
    "    def connect(self, endpoint, steps):\n"
    "        if endpoint.host == 'outside':\n"
    "            raise LibraryError('refused before any step')\n",
).replace(
    "        return None  # breaks the contract\n",
    "        with transfer.open(0) as reader:\n"
    "            try:\n"
    "                reader.read(10)\n"
    "            except Exception as exc:\n"
    "                raise LibraryError('upload aborted') from exc\n",
)


@pytest.fixture
def strict(make_dist: MakeDist) -> Transport:
    make_dist("offsite-outside", FAILS_OUTSIDE_STEPS, schemes={"outside": "plugin"})
    return Transport.for_endpoint(Endpoint.from_url("outside://h/x"))


def test_failure_outside_any_step_still_fails_the_check(strict: Transport) -> None:
    endpoint = Endpoint.from_url("outside://outside/x", credentials={"password": "right"})
    report = strict.check(endpoint)
    assert not report.ok
    assert report.failed is not None and report.failed.name == "connect"
    assert "refused before any step" in str(report.failed.error)


def test_source_error_wrapped_by_a_library_comes_out_as_source_error(strict: Transport) -> None:
    from offsite.errors import SourceError
    from offsite.testing.sources import FailingSource

    endpoint = Endpoint.from_url("outside://h/x", credentials={"password": "right"})
    with strict.connect(endpoint) as session, pytest.raises(SourceError):
        session.put("y", FailingSource(b"x" * 100, 0))


BROKEN_TRANSLATOR = '''
from offsite import hookimpl

class Plugin:
    @hookimpl
    def connect(self, endpoint, steps):
        return endpoint
    @hookimpl
    def translate_error(self, exc):
        raise TypeError("translator bug on " + str(exc))
    @hookimpl
    def put(self, conn, path, transfer):
        return None
    @hookimpl
    def get(self, conn, path, offset):
        return None
    @hookimpl
    def list(self, conn, folder):
        raise ValueError("listing exploded for " + conn.credentials["password"])
    @hookimpl
    def delete(self, conn, path):
        return True
    @hookimpl
    def close(self, conn):
        return True

plugin = Plugin()
'''


def test_a_translate_error_that_raises_is_logged_and_the_error_goes_on(
        make_dist: MakeDist, caplog: pytest.LogCaptureFixture) -> None:
    make_dist("offsite-badtrans", BROKEN_TRANSLATOR, schemes={"badtrans": "plugin"})
    endpoint = Endpoint.from_url("badtrans://h/x", name="t1",
                                 credentials={"password": "s3cret-pw-42"})
    caplog.set_level(logging.DEBUG, logger="offsite.session")
    for _ in range(2):  # a fresh manager each time, as every target gets
        transport = Transport.for_endpoint(endpoint)
        with transport.connect(endpoint) as session, pytest.raises(Fatal) as caught:
            session.list()
        err = caught.value
        assert type(err) is Fatal, "untranslated, as before"
        assert err.detail == "ValueError: listing exploded for ***"
        assert (err.step, err.target) == ("list", "t1")

    records = [r for r in caplog.records if r.name == "offsite.session"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "once per plugin and process, not once per error"
    text = warnings[0].getMessage()
    assert text.startswith("plugin offsite-badtrans (badtrans://): its translate_error hook "
                           "raised TypeError: translator bug on listing exploded for *** "
                           "while translating ValueError")
    assert "Fix: upgrade offsite-badtrans" in text
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert len(debug) == 2, "each one at debug level"
    for message in debug:
        assert "Traceback (most recent call last)" in message
        assert "TypeError: translator bug on" in message and "ValueError: listing" in message
    assert all("s3cret-pw-42" not in r.getMessage() for r in records), "no secret in a log"

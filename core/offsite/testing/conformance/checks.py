"""Contract tests beyond transfer: check, errors, options and secrets."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest

from offsite.errors import (
    AuthError,
    ConfigError,
    NotFound,
    PermissionDenied,
    StorageFull,
    TargetError,
    Transient,
)
from offsite.session import Transport
from offsite.testing.conformance.contract import (
    CANARY,
    CHECK_OK,
    CHECK_STEPS,
    ERRORS,
    OPTIONS,
    SECRETS,
    raw_paths,
    read_all,
)
from offsite.testing.conformance.fixtures import Fault, Provoke
from offsite.transport import Endpoint

#: The faults translate_error must tell apart, and the class each must become.
FAULTS: Mapping[str, type[TargetError]] = {
    "permission": PermissionDenied,
    "missing": NotFound,
    "full": StorageFull,
    "auth": AuthError,
    "transient": Transient,
}


class CheckTests:
    """check: every step on a working target; the failing step on a broken one."""

    def test_check_passes_and_cleans_up(self, transport: Transport, endpoint: Endpoint) -> None:
        report = transport.check(endpoint)
        assert report.ok, f"{CHECK_OK}: {report.failed}"
        names = [s.name for s in report.steps]
        for probe in ("probe-write", "probe-list", "probe-read", "probe-delete"):
            assert probe in names, CHECK_OK
        assert names.index("probe-write") > 0, f"{CHECK_OK}: connect records its own steps"
        with transport.connect(endpoint) as session:
            assert raw_paths(session) == set(), f"{CHECK_OK}: the probe is cleaned up"

    def test_check_names_failing_step(
        self, transport: Transport, broken_endpoint: tuple[Endpoint, str]
    ) -> None:
        endpoint, step = broken_endpoint
        report = transport.check(endpoint)
        assert not report.ok, CHECK_STEPS
        failed = report.failed
        assert failed is not None and failed.name == step, f"{CHECK_STEPS}: {report.steps}"
        assert isinstance(failed.error, TargetError), CHECK_STEPS
        assert failed.error.step == step, CHECK_STEPS
        assert failed.error.hint, f"{CHECK_STEPS}: the error must say how to fix it"
        assert report.steps[-1] is failed, f"{CHECK_STEPS}: steps stop at the failure"

    def test_connect_raises_typed_error(
        self, transport: Transport, broken_endpoint: tuple[Endpoint, str]
    ) -> None:
        endpoint, step = broken_endpoint
        with pytest.raises(TargetError) as caught:
            transport.connect(endpoint).close()
        assert caught.value.step == step, CHECK_STEPS
        assert caught.value.target == endpoint.label, CHECK_STEPS


class SecretTests:
    """No secret leaks through a repr, a message, a traceback or the log."""

    @staticmethod
    def _texts(*things: object) -> list[str]:
        out: list[str] = []
        for thing in things:
            out += [repr(thing), str(thing)]
            if isinstance(thing, BaseException):
                out.append("".join(traceback.format_exception(thing)))
        return out

    def test_no_secret_in_session_or_errors(
        self,
        transport: Transport,
        endpoint: Endpoint,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        # The canary rides along as every credential field the endpoint has,
        # plus a password, whether or not this protocol uses them.
        fields = set(endpoint.credentials) | {"password"}
        canary = attrs.evolve(endpoint, credentials={f: CANARY for f in fields})
        things: list[object] = [canary, canary.credentials.keys(), transport]
        try:
            session = transport.connect(canary)
        except TargetError as exc:
            things.append(exc)
        else:
            with session:
                things += [session, session.conn]
                for call in (lambda: read_all(session, "missing.ofi"),
                             lambda: session.delete("missing.ofi")):
                    try:
                        call()
                    except TargetError as exc:
                        things.append(exc)
        for text in self._texts(*things):
            assert CANARY not in text, f"{SECRETS}: {text[:200]}"
        assert CANARY not in caplog.text, SECRETS

    def test_wrong_credentials_refused_without_leak(
        self,
        transport: Transport,
        wrong_credentials: Endpoint | str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        if isinstance(wrong_credentials, str):
            pytest.skip(f"no credentials to refuse: {wrong_credentials}")
        caplog.set_level(logging.DEBUG)
        report = transport.check(wrong_credentials)
        assert report.failed is not None and report.failed.name == "auth", CHECK_STEPS
        for text in self._texts(report.failed.error, report):
            assert CANARY not in text, SECRETS
        assert CANARY not in caplog.text, SECRETS

    def test_endpoint_repr_hides_credentials(self, endpoint: Endpoint) -> None:
        secret = attrs.evolve(endpoint, credentials={"password": CANARY})
        for text in self._texts(secret, secret.url, secret.label):
            assert CANARY not in text, SECRETS


def _missing(provoke: Provoke) -> None:
    read_all(provoke.session, "no/such/file.ofi")


class ErrorTests:
    """translate_error: each fault of the real server becomes the right class."""

    @pytest.mark.parametrize("fault", list(FAULTS))
    def test_faults_are_classified(
        self,
        fault: str,
        faults: Mapping[str, Fault | str],
        wrong_credentials: Endpoint | str,
        transport: Transport,
        endpoint: Endpoint,
    ) -> None:
        how: Fault | str | None
        if fault == "missing":
            how = _missing
        elif fault == "auth":
            how = wrong_credentials if isinstance(wrong_credentials, str) else (
                lambda p: p.transport.connect(wrong_credentials).close())
        else:
            how = faults.get(fault)
        if how is None:
            pytest.fail(f"{ERRORS}: the `faults` fixture neither provokes {fault!r} nor says "
                        "why it cannot")
        if isinstance(how, str):
            pytest.skip(f"{fault} cannot be provoked: {how}")
        with transport.connect(endpoint) as session, pytest.raises(TargetError) as caught:
            how(Provoke(transport, endpoint, session))
        error = caught.value
        assert isinstance(error, FAULTS[fault]), \
            f"{ERRORS}: {fault} came out as {type(error).__name__}: {error}"
        assert error.retryable == (fault == "transient"), \
            f"{ERRORS}: {fault} must {'' if fault == 'transient' else 'not '}be retried"
        assert error.step, f"{ERRORS}: the error names the step that failed"
        assert error.target == endpoint.label, ERRORS


class OptionsTests:
    """options: declared with help, and an unknown key refused at load."""

    def test_options_are_declared(self, transport: Transport) -> None:
        assert "options" in transport.info.hooks, f"{OPTIONS}: implement the options hook"
        declared = transport.info.options
        assert isinstance(declared, Mapping), OPTIONS
        for name, help_text in declared.items():
            assert isinstance(name, str) and name.isidentifier(), f"{OPTIONS}: {name!r}"
            assert isinstance(help_text, str) and help_text.strip(), \
                f"{OPTIONS}: option {name!r} has no help"

    def test_an_unknown_option_is_refused(self, transport: Transport, endpoint: Endpoint,
                                          tmp_path: Path) -> None:
        from offsite.config import Config
        from offsite.plugins import check_options, discover

        text = (f'[[job]]\nname = "j"\ndestination = {json.dumps(str(tmp_path / "d"))}\n'
                f'[[job.target]]\nname = "t"\nurl = {json.dumps(endpoint.url)}\n'
                "[job.target.options]\nnot_an_option_of_yours = 1\n")
        config = Config.from_text(text, tmp_path / "offsite.toml")
        with pytest.raises(ConfigError) as caught:
            check_options(config, discover({endpoint.scheme}))
        assert caught.value.key == "job[0].target[0].options.not_an_option_of_yours", OPTIONS

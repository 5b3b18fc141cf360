"""The error tree: templates, fixes, context, scrubbing."""

from __future__ import annotations

import pytest

from offsite.errors import (
    AuthError,
    ConnectFailed,
    Fatal,
    HostKeyRejected,
    NotFound,
    OffsiteError,
    PermissionDenied,
    PluginError,
    ResolveFailed,
    SourceError,
    TargetError,
    TLSFailed,
    Transient,
)


def test_tree_shape() -> None:
    for cls in (AuthError, PermissionDenied, NotFound, Transient, Fatal):
        assert issubclass(cls, TargetError)
    assert issubclass(ConnectFailed, Transient)
    for cls in (ResolveFailed, TLSFailed, HostKeyRejected):
        assert issubclass(cls, Fatal)
    assert not issubclass(SourceError, TargetError)
    assert not issubclass(PluginError, TargetError)
    assert all(issubclass(c, OffsiteError) for c in (TargetError, SourceError, PluginError))


def test_only_transient_is_retryable() -> None:
    assert Transient().retryable and ConnectFailed().retryable
    for cls in (AuthError, PermissionDenied, NotFound, Fatal, TLSFailed):
        assert not cls().retryable


def test_message_names_target_step_path_and_fix() -> None:
    err = PermissionDenied("mkdir refused", path="set/a.ofi", step="put", target="vault")
    text = str(err)
    assert text.startswith("[vault] put failed: permission denied: mkdir refused")
    assert "(remote path 'set/a.ofi')" in text
    assert "Fix: give the target's user write access" in text


def test_templates_fill_from_fields() -> None:
    err = HostKeyRejected(host="vault:22", reason="unknown", fingerprint="SHA256:abc")
    assert err.message == "host key of vault:22 is unknown: SHA256:abc"
    assert "--trust-host-key" in err.hint
    assert ConnectFailed("refused", address="10.0.0.1:22").message == (
        "cannot connect to 10.0.0.1:22: refused"
    )
    # a missing field never raises while formatting an error
    assert ResolveFailed("no such host").message == "cannot resolve host '?': no such host"


def test_not_found_puts_path_in_message_once() -> None:
    err = NotFound(path="a/b.ofi", step="get")
    assert str(err) == "get failed: 'a/b.ofi' not found"


def test_instance_fix_overrides_class_fix() -> None:
    err = Fatal("the folder is a file", fix="point the URL at a folder")
    assert str(err) == "the folder is a file. Fix: point the URL at a folder"
    assert Fatal("x").hint == ""


def test_scrub_blanks_secrets_everywhere() -> None:
    err = AuthError("user bob with password hunter2 refused", host="hunter2.example")
    err.scrub(["hunter2", ""])
    assert "hunter2" not in str(err) and "hunter2" not in repr(err)
    assert "hunter2" not in str(err.args) and "***" in err.detail
    assert err.fields["host"] == "***.example"


@pytest.mark.parametrize("cls", [AuthError, PermissionDenied, Transient, ConnectFailed,
                                 ResolveFailed, TLSFailed, HostKeyRejected])
def test_every_operator_facing_error_says_how_to_fix(cls: type[TargetError]) -> None:
    assert cls().hint, f"{cls.__name__} needs a fix text"


def test_fixes_name_the_target_to_type() -> None:
    # Before the session knows the target, a fix shows the placeholder; once
    # it fills in the name, the command in the fix is the one to type.
    auth = AuthError("refused")
    assert "offsite credentials set JOB.TARGET" in str(auth)
    auth.name = "nightly.vault"
    assert "offsite credentials set nightly.vault" in str(auth)
    key = HostKeyRejected(host="h", reason="unknown", fingerprint="SHA256:x")
    key.name = "nightly.vault"
    assert "offsite check --trust-host-key nightly vault" in key.hint
    told = AuthError("no password", fix="offsite credentials set {name}")
    told.name = "job.t"
    assert told.hint == "offsite credentials set job.t"

"""hookspecs.py is the plugin author's manual: keep every hook documented."""

from __future__ import annotations

import inspect

import pytest

from offsite import hookspecs

HOOKS = ["options", "capabilities", "connect", "check", "translate_error", "put", "discard",
         "get", "list", "delete", "close"]


def test_the_contract_is_these_hooks() -> None:
    specs = {n for n, f in vars(hookspecs).items()
             if inspect.isfunction(f) and hasattr(f, "offsite_spec")}
    assert specs == set(HOOKS)
    assert set(hookspecs.REQUIRED) == {"connect", "put", "get", "list", "delete", "close"}


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_firstresult_and_documented(name: str) -> None:
    func = getattr(hookspecs, name)
    assert func.offsite_spec["firstresult"] is True
    doc = inspect.getdoc(func) or ""
    assert "Stops at the first non-None result." in doc
    for param in inspect.signature(func).parameters:
        assert f":param {param}:" in doc, f"{name}: parameter {param} undocumented"
    assert ":returns:" in doc
    if name not in ("close", "translate_error", "options", "capabilities"):
        assert ":raises" in doc, f"{name}: say which errors it raises"

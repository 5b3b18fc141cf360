"""Remote path normalisation: properties that every plugin relies on."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offsite import paths

segment = st.text(
    alphabet=st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)),
    min_size=1, max_size=12,
).filter(lambda s: s not in (".", ".."))
path = st.lists(st.one_of(segment, st.just(""), st.just(".")), max_size=6).map("/".join)


@given(path)
def test_normalise_is_idempotent_and_clean(p: str) -> None:
    n = paths.normalise(p)
    assert paths.normalise(n) == n
    assert not n.startswith("/") and not n.endswith("/") and "//" not in n
    assert unicodedata.is_normalized("NFC", n)
    assert ".." not in n.split("/") and "." not in n.split("/")


@given(st.lists(segment, min_size=1, max_size=5))
def test_partial_name_is_beside_and_recognised(parts: list[str]) -> None:
    p = paths.normalise("/".join(parts))
    partial = paths.partial_path(p)
    assert paths.is_partial(partial)
    assert partial.rsplit("/", 1)[0] == p.rsplit("/", 1)[0] or "/" not in p
    if not paths.is_partial(p):
        assert partial != p


def test_examples() -> None:
    assert paths.normalise("/a//b/./c/") == "a/b/c"
    assert paths.normalise("") == paths.normalise("/") == ""
    assert paths.normalise("cafe\u0301.ofi") == "café.ofi"
    assert paths.partial_path("set/vol-b001.ofi") == "set/.vol-b001.ofi.offsite-partial"
    assert not paths.is_partial("set/vol-b001.ofi")
    assert not paths.is_partial(".hidden")


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "a\x00b", "a\\b"])
def test_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"\.\.|NUL|backslash"):
        paths.normalise(bad)

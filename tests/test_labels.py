"""Image labels are full Unicode (issue 22), limited in bytes, not characters:
an image's file name, and the hidden names it is written and uploaded under,
must fit the 255 bytes a file system or server holds for a name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from offsite import paths
from offsite.cli import cli
from offsite.errors import UsageError
from offsite.image import create
from offsite.image.format import MAX_LABEL_BYTES, check_label, image_name
from offsite.image.writer import temporary_path


def _longest_name(label: str) -> str:
    """The longest name an image of ``label`` is stored under: its upload's
    partial name at a target, for a big generation and sequence number."""
    return paths.partial_path(image_name(label, 9999, 99999))


@pytest.mark.parametrize("label", ["Süd 日本 #1 100% a+b&c;d", " lead & trail ", "💾" * 50,
                                   "日" * (MAX_LABEL_BYTES // 3)])
def test_awkward_labels_make_images(tmp_path: Path, label: str) -> None:
    source = tmp_path / "vol.raw"
    source.write_bytes(os.urandom(50_000))
    dest = tmp_path / "dest"
    dest.mkdir()
    made = create(source, dest, label=label, block_size=4096)
    assert made.name == image_name(label, 1)
    again = create(source, dest, label=label)
    assert again.name == image_name(label, 1, 1)


def test_a_label_too_long_in_bytes_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    source = tmp_path / "vol.raw"
    source.write_bytes(os.urandom(10_000))
    dest = tmp_path / "dest"
    dest.mkdir()
    label = "日" * 100  # 100 characters, 300 bytes: no file system names it
    result = CliRunner().invoke(cli, ["image", "create", str(source), str(dest),
                                      "--label", label])
    assert result.exit_code == 2, result.output
    assert "--label" in result.stderr and "300 bytes" in result.stderr
    assert f"at most {MAX_LABEL_BYTES}" in result.stderr
    assert list(dest.iterdir()) == []


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=210))
def test_every_label_allowed_fits_a_file_name(label: str) -> None:
    try:
        check_label(label)
    except UsageError:
        assert (len(label.encode()) > MAX_LABEL_BYTES or any(c in label for c in "/\\")
                or any(ord(c) < 0x20 for c in label))
        return
    for name in (_longest_name(label), temporary_path(Path(image_name(label, 9999, 99999))).name,
                 f".{label}-b9999.ofimap"):
        assert len(name.encode()) <= 255, name


def test_a_label_that_is_not_unicode_is_refused() -> None:
    # A source file named in another encoding gives a label with surrogates.
    with pytest.raises(UsageError, match="not valid Unicode"):
        check_label("caf\udce9")

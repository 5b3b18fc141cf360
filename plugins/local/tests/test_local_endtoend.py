"""offsite-local end to end through the command line: replicate with
consolidation, restore from the target; plain names, then awkward ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from offsite.testing import endtoend


@pytest.mark.parametrize("names", [endtoend.PLAIN, endtoend.AWKWARD], ids=["plain", "awkward"])
def test_replicate_with_consolidation_and_restore(names: endtoend.Names, tmp_path: Path) -> None:
    target = tmp_path / names.under("target")
    site = endtoend.CliSite(tmp_path, f"file://{endtoend.url_path(str(target))}", names)
    endtoend.replicate_consolidate_restore(
        site, site.dest, tmp_path, lambda: os.listdir(target), credentials={},
        label=names.label)

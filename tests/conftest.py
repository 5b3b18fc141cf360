"""Shared fixtures for the core tests."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from offsite.testing.site import Site

_counter = itertools.count()

GOOD_PLUGIN = '''
from offsite import hookimpl

class Plugin:
    @hookimpl
    def connect(self, endpoint, steps): return object()
    @hookimpl
    def put(self, conn, path, transfer): return None
    @hookimpl
    def get(self, conn, path, offset): return None
    @hookimpl
    def list(self, conn, folder): return []
    @hookimpl
    def delete(self, conn, path): return True
    @hookimpl
    def close(self, conn): return True

plugin = Plugin()
'''

MakeDist = Callable[..., str]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A destination with a volume's images, a config folder and target folders."""
    return Site(tmp_path)


@pytest.fixture
def good_plugin() -> str:
    """The source of a minimal plugin module that passes validation."""
    return GOOD_PLUGIN


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeDist:
    """Make an installed distribution on the fly: a ``*.dist-info`` with
    ``entry_points.txt`` and a module, in a folder put on ``sys.path``.

    Returns the module's (unique) name. ``schemes`` maps entry-point names to
    the attribute they point at (default ``plugin``).
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(
        distribution: str,
        source: str = GOOD_PLUGIN,
        *,
        schemes: dict[str, str] | None = None,
        version: str = "1.2.3",
    ) -> str:
        module = f"offsite_test_{distribution.replace('-', '_')}_{next(_counter)}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        lines = [f"{name} = {module}:{attr}" for name, attr in (schemes or {}).items()]
        (info / "entry_points.txt").write_text("[offsite.targets]\n" + "\n".join(lines) + "\n")
        return module

    return make

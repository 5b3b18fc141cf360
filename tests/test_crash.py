"""An error nobody expected (a bug) ends as one line, a report file and exit code 70."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from offsite.cli import EXIT_INTERNAL, cli

MakeDist = Callable[..., str]

# A plugin that breaks the contract in a way the core does not check for:
# its listing holds something that is not a RemoteFile.
BROKEN = '''
from offsite import hookimpl
from offsite_local import LocalTransport

class Broken(LocalTransport):
    @hookimpl
    def list(self, conn, folder):
        return [42]

plugin = Broken()
'''


@pytest.fixture
def crashing(tmp_path: Path, make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_dist("offsite-broken", BROKEN, schemes={"broken": "plugin"})
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "dest").mkdir()
    config = tmp_path / "offsite.toml"
    config.write_text(f'[[job]]\nname = "j"\ndestination = "{tmp_path / "dest"}"\n'
                      f'[[job.target]]\nname = "t"\nurl = "broken://{tmp_path / "t"}"\n')
    return config


def test_a_bug_is_one_line_with_a_report_file(crashing: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(crashing), "plan"])
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: internal error (a bug in offsite or one of its plugins): "
                           "AttributeError:")
    (report,) = (tmp_path / "state" / "offsite" / "crash").iterdir()
    assert str(report) in line
    assert os.stat(report).st_mode & 0o777 == 0o600
    text = report.read_text()
    assert "Traceback" in text and "AttributeError" in text and "plan" in text


def test_verbose_prints_the_traceback_too(crashing: Path) -> None:
    result = CliRunner().invoke(cli, ["-v", "--config", str(crashing), "plan"])
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: internal error")


def test_known_errors_are_not_reported_as_bugs(tmp_path: Path) -> None:
    config = tmp_path / "offsite.toml"
    config.write_text("[[job]]\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "plan"])
    assert result.exit_code == 2
    assert "internal error" not in result.stderr


def test_ctrl_c_anywhere_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import offsite.plugins

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(offsite.plugins, "discover", interrupted)
    result = CliRunner().invoke(cli, ["targets"])
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted"

"""Every exit code a command can return is listed where an operator looks."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from offsite import cli, events

USAGE = Path(__file__).parents[1] / "docs" / "USAGE.md"

#: What `offsite run` can return: every code exit_code() ranks, plus the CLI's own.
RUN_CODES = {events.EXIT_OK, events.EXIT_TARGET_FAILED, events.EXIT_USAGE,
             events.EXIT_BAD_DATA, events.EXIT_LOCKED, cli.EXIT_INTERNAL,
             cli.EXIT_INTERRUPTED}


def listed(text: str) -> set[int]:
    """The codes a help text lists: '0 all done; 1 a target failed …'."""
    return {int(n) for n in re.findall(r"(?:^|[:;,]\s+)(\d+) [a-z]", " ".join(text.split()))}


def test_run_help_lists_every_exit_code_run_returns() -> None:
    result = CliRunner().invoke(cli.cli, ["run", "--help"])
    assert result.exit_code == 0
    assert listed(result.stdout) == RUN_CODES


def test_usage_lists_every_exit_code_of_run() -> None:
    text = " ".join(USAGE.read_text().split())
    (line,) = re.findall(r"Exit codes: ([\d, or]+) \(see \[Exit codes\]", text)
    assert {int(n) for n in re.findall(r"\d+", line)} == RUN_CODES
    table = {int(n) for n in re.findall(r"^\| (\d+) \|", USAGE.read_text(), re.MULTILINE)}
    assert RUN_CODES | {cli.EXIT_CHECK_FAILED} == table


def test_every_ranked_code_is_one_run_can_return() -> None:
    ranked = [events.exit_code([]),
              events.exit_code([events.TargetResult("j", "t", False)]),
              events.exit_code([events.TargetResult("j", "t", False, setup_error=True)]),
              events.exit_code([events.TargetResult("j", "t", True, bad_data=True)]),
              events.exit_code([events.TargetResult("j", "t", False, locked=True)])]
    assert set(ranked) <= RUN_CODES

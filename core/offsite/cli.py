"""The ``offsite`` command line (click).

Data goes to stdout (a table on a terminal, compact JSON with ``--json``);
status, warnings and errors go to stderr. Exit codes (docs/USAGE.md):
0 all done, 1 a target failed, 2 usage or configuration error, 3 bad data,
4 a check failed, 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import sys

import click
from rich.console import Console
from rich.table import Table

from offsite import __version__
from offsite.plugins import DISABLE_ENV, discover

EXIT_OK = 0
EXIT_TARGET_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_DATA = 3
EXIT_CHECK_FAILED = 4
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="offsite")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--quiet", is_flag=True, help="Only errors on stderr; no progress display.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Replicate backup image sets to offsite targets."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = {"quiet": quiet}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def targets(as_json: bool) -> None:
    """List the installed target plugins: scheme, distribution, version, status.

    A plugin that fails to load is listed with the reason and does not stop
    the others. Switch one off with OFFSITE_DISABLED_PLUGINS=scheme,...
    """
    registry = discover()
    if as_json:
        click.echo(json.dumps({"targets": [p.to_json() for p in registry.plugins]},
                              ensure_ascii=False, separators=(",", ":")))
        return
    console = Console()
    if not registry.plugins:
        Console(stderr=True).print(
            "No target plugins installed: pip install offsite-local (file://), offsite-sftp, …"
        )
        return
    table = Table(box=None, pad_edge=False)
    for column in ("scheme", "distribution", "version", "status"):
        table.add_column(column, no_wrap=column != "status", overflow="fold")
    for p in registry.plugins:
        status = {"ok": "[green]ok[/]", "disabled": f"[yellow]disabled[/] ({DISABLE_ENV})"}.get(
            p.status, f"[red]failed to load[/]: {p.reason}"
        )
        table.add_row(p.scheme, p.distribution, p.version, status)
    console.print(table, soft_wrap=not console.is_terminal)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="offsite")

"""The ``offsite`` command line (click).

Data goes to stdout (a table on a terminal, compact JSON with ``--json``);
status, warnings and errors go to stderr. Exit codes (docs/USAGE.md):
0 all done, 1 a target failed, 2 usage or configuration error, 3 bad data,
4 a check failed, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click

from offsite import __version__
from offsite.errors import ImageError, OffsiteError, UsageError

# Commands import what they need when they run: `offsite image …` should not
# pay for rich, stevedore and every plugin at start-up.

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
    from rich.console import Console
    from rich.table import Table

    from offsite.plugins import DISABLE_ENV, discover

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


# ---------------------------------------------------------------------------
# offsite image …
# ---------------------------------------------------------------------------


def _fail(exc: OffsiteError, code: int) -> NoReturn:
    # Plain text on stderr: one line per error, never wrapped, easy to grep.
    click.echo(f"error: {exc}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """Map the error tree to the documented exit codes."""
    try:
        yield
    except ImageError as exc:
        _fail(exc, EXIT_BAD_DATA)
    except UsageError as exc:
        _fail(exc, EXIT_USAGE)
    except FileExistsError as exc:
        _fail(UsageError(str(exc)), EXIT_USAGE)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        _fail(UsageError(f"{exc.strerror}: {exc.filename}"), EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


@cli.group()
def image() -> None:
    """Create, inspect, verify, consolidate and restore OFI images."""


@image.command("create")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("destdir", type=click.Path(exists=True, file_okay=False))
@click.option("--label", help="Name of the image set (default: the source's name).")
@click.option("--full", is_flag=True, help="Start a new generation set with a full image.")
@click.option("--block-size", "block_size", help="Block size for a new set, e.g. 1M (default).")
@click.option("--compression", type=click.Choice(["zstd", "none"]), default="zstd",
              show_default=True)
def image_create(source: str, destdir: str, label: str | None, full: bool,
                 block_size: str | None, compression: str) -> None:
    """Write the next image of SOURCE (a file or block device) into DESTDIR.

    A full image when DESTDIR has no set for the label (or with --full),
    otherwise the next incremental. Prints the path written.
    """
    from offsite.image.create import create as create_image

    with _exit_codes():
        try:
            bs = _size(block_size) if block_size else None
        except ValueError:
            raise UsageError(f"--block-size: not a size: {block_size!r}") from None
        path = create_image(source, destdir, label=label, full=full, block_size=bs,
                            compression="zstd" if compression == "zstd" else "none")
        click.echo(str(path))


@image.command("info")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def image_info(path: str, as_json: bool) -> None:
    """Show an image's metadata and block statistics."""
    from offsite.image.reader import ImageReader

    with _exit_codes(), ImageReader(path) as reader:
        stored = zero = compressed = 0
        for entry in reader.entries():
            stored += entry.length
            zero += entry.zero
            compressed += bool(entry.flags & 0x2)
        doc = {
            "file": str(path),
            "format_version": ".".join(map(str, reader.version)),
            **reader.meta.to_dict(),
            "block_count": reader.meta.block_count,
            "blocks_present": reader.count,
            "zero_blocks": zero,
            "compressed_blocks": compressed,
            "payload_bytes": stored,
            "file_size": reader.size,
        }
        if as_json:
            click.echo(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            return
        width = max(map(len, doc))
        for key, value in doc.items():
            click.echo(f"{key:<{width}}  {value}")


@image.command("verify")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def image_verify(paths: tuple[str, ...]) -> None:
    """Check every byte of images, and every chain in folders. Exit 3 on a problem."""
    from offsite.image.verify import verify as verify_images

    with _exit_codes():
        report = verify_images(paths)
    for ok in report.ok:
        click.echo(f"ok       {ok}")
    for problem in report.problems:
        click.echo(f"PROBLEM  {problem}", err=True)
    if not report.clean:
        sys.exit(EXIT_BAD_DATA)


@image.command("consolidate")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The file to write (must not exist).")
def image_consolidate(images: tuple[str, ...], output: str) -> None:
    """Merge IMAGES (one unbroken run of a chain, oldest first) into one.

    Incrementals a..b give one incremental covering a..b; a full plus
    incrementals gives a synthetic full. Payloads are copied verbatim.
    """
    from offsite.image.consolidate import Consolidation

    with _exit_codes(), Consolidation(images) as plan:
        plan.write_file(Path(output))
        click.echo(output)


@image.command("restore")
@click.argument("image_path", metavar="IMAGE", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path())
@click.option("--force", is_flag=True, help="Replace OUTPUT if it is an existing file.")
def image_restore(image_path: str, output: str, force: bool) -> None:
    """Write the volume as it was at IMAGE to OUTPUT (its chain read beside it)."""
    from offsite.image.restore import restore as restore_image

    with _exit_codes():
        chain = restore_image(image_path, output, force=force)
        click.echo(f"restored {output} from {len(chain)} image(s): "
                   + ", ".join(c.path.name for c in chain), err=True)

"""The ``offsite`` command line (click).

Data goes to stdout (a table on a terminal, compact JSON with ``--json``);
status, warnings and errors go to stderr. Exit codes (docs/USAGE.md):
0 all done, 1 a target failed, 2 usage or configuration error (a target's
plugin switched off or broken included), 3 bad data, 4 a check failed,
70 internal error, 75 a job another process works, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from offsite import __version__
from offsite.errors import ImageError, OffsiteError, UsageError
from offsite.redact import RedactingFormatter, redact_handlers

# Commands import what they need when they run: `offsite image …` should not
# pay for rich, stevedore and every plugin at start-up.

EXIT_OK = 0
EXIT_TARGET_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_DATA = 3
EXIT_CHECK_FAILED = 4
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug in offsite or a plugin
EXIT_LOCKED = 75  # sysexits' EX_TEMPFAIL: another process works the job; try later
EXIT_INTERRUPTED = 130


class _Offsite(click.Group):
    """The command group; an exception nothing expected ends here, as one line.

    Every failure offsite knows of is an :class:`OffsiteError` and is mapped
    to its exit code by the command. Anything else is a bug: the operator
    gets one line saying so, where the full report was written, and exit
    code 70; the traceback itself only with ``-v``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            # Ctrl-C where no command caught it (while a command imports what
            # it needs, say): 130 as documented, not click's "Aborted!" and 1.
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            from offsite.crash import report

            verbose = bool(ctx.params.get("verbose"))
            click.echo(report(exc, sys.argv, verbose=verbose), err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Offsite, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="offsite")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--quiet", is_flag=True, help="Only errors on stderr; no progress display.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="OFFSITE_CONFIG",
              help="The configuration file (default: $OFFSITE_CONFIG, else "
              "~/.config/offsite/offsite.toml).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, config_path: str | None) -> None:
    """Replicate backup image sets to offsite targets."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, 2)]
    before = list(logging.getLogger().handlers)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Tracebacks show chained library exceptions, which nobody scrubbed.
    redact_handlers(h for h in logging.getLogger().handlers if h not in before)
    ctx.obj = {"quiet": quiet, "ctx": _Context(config_path)}


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
    # A command's start-up makes the objects it lives with (modules, plugins:
    # 80,000 with boto3's S3 model), none of them garbage. The collector's
    # default (a pass per 700 new objects) went over them again and again as
    # they piled up, and once more at exit: 60 ms of a 0.3 s `offsite run`.
    # A pass per 50,000 still collects cycles in a run of hours; at exit,
    # what is left is not looked at.
    gc.set_threshold(50_000)
    try:
        cli(prog_name="offsite")
    finally:
        gc.freeze()


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
            # What the journal records for a placed image (unchecked here: verify).
            "digest": f"ofi:{reader.digest.hex()}",
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


# ---------------------------------------------------------------------------
# replication: check, plan, run, status, restore, credentials
# ---------------------------------------------------------------------------


class _Context:
    """What the replication commands share: the config, and things made from it."""

    def __init__(self, config_path: str | None) -> None:
        from offsite.config import default_config_path

        self.config_path = Path(config_path) if config_path else default_config_path()
        self._config: Any = None
        self._registry: Any = None

    @property
    def registry(self) -> Any:
        """The plugins the config's targets use, imported (and only those), with
        the targets' options checked against what each plugin declares."""
        if self._registry is None:
            from offsite.plugins import discover_for

            self._registry = discover_for(self.config)
        return self._registry

    @property
    def config(self) -> Any:
        if self._config is None:
            from offsite.config import Config
            from offsite.plugins import installed_schemes

            self._config = Config.load(self.config_path, schemes=installed_schemes())
            for warning in self._config.warnings:
                click.echo(f"warning: {warning}", err=True)
        return self._config

    def journal(self) -> Any:
        from offsite.journal import Journal

        return Journal(self.config.folder / "journal.sqlite")

    def credentials(self) -> Any:
        from offsite.credentials import CredentialStore

        return CredentialStore(self.config.folder)

    def targets(self, job: str | None, target: str | None) -> list[tuple[Any, Any]]:
        jobs = [self.config.job(job)] if job else list(self.config.jobs)
        return [(j, j.target(target) if target else t) for j in jobs
                for t in ([None] if target else j.targets)]


def _ctx() -> _Context:
    obj: _Context = click.get_current_context().find_root().obj["ctx"]
    return obj


@contextlib.contextmanager
def _replication_errors() -> Iterator[None]:
    """Exit codes for the replication commands (docs/USAGE.md)."""
    from offsite.errors import (
        ConfigError,
        CredentialError,
        JournalError,
        Locked,
        PluginError,
        TargetError,
    )

    with _exit_codes():
        try:
            yield
        except (ConfigError, CredentialError, JournalError, PluginError) as exc:
            _fail(exc, EXIT_USAGE)
        except Locked as exc:
            _fail(exc, EXIT_LOCKED)
        except TargetError as exc:  # plan, restore, check: the target failed
            _fail(exc, EXIT_TARGET_FAILED)


def _trust_host_key(error: Any) -> bool:
    """Offer to record the host key a check refused; True if recorded."""
    known, entry = error.fields.get("known_hosts"), error.fields.get("entry")
    if not known or not entry:
        return False
    click.echo(f"The server {error.fields.get('host')} offers this "
               f"{error.fields.get('key_type', '')} host key:\n"
               f"  {error.fields.get('fingerprint')}\n"
               "Compare it with the fingerprint the server's administrator gives you "
               "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server).")
    if not click.confirm(f"Trust it and add it to {known}?", default=False):
        return False
    path = Path(known)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [line for line in (path.read_text().splitlines() if path.exists() else [])
             if not line.startswith(entry.split()[0] + " ")]  # replace a changed key
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join([*lines, entry]) + "\n")
    click.echo(f"recorded in {known}")
    return True


@cli.command()
@click.argument("job", required=False)
@click.argument("target", required=False)
@click.option("--trust-host-key", is_flag=True,
              help="If a server's SSH host key is unknown or changed, show its fingerprint, "
              "ask, and record it in that target's known_hosts.")
def check(job: str | None, target: str | None, trust_host_key: bool) -> None:
    """Check targets step by step: resolve, connect, authenticate, probe.

    Every target of every job, or those of JOB, or just JOB's TARGET.
    Exit 4 if any check failed; 2 if a target's plugin is switched off or
    failed to load (the other targets are still checked).
    """
    from offsite.engine import target_endpoint, target_transport
    from offsite.errors import HostKeyRejected, PluginError

    with _replication_errors():
        ctx = _ctx()
        store = ctx.credentials()
        failed = unusable = False
        jobs_seen: set[str] = set()
        for j, t in ctx.targets(job, target):
            endpoint = target_endpoint(j, t, store)
            try:
                transport = target_transport(j, t, store, ctx.registry)
            except PluginError as exc:
                # Nothing to connect with: one failed step, with the message run gives.
                unusable = True
                failed |= not _destination_once(j, jobs_seen)
                click.echo(f"{j.name}.{t.name}  {endpoint.url}")
                click.echo(f"  FAILED {'plugin':13} {exc.fields.get('distribution', '?')}")
                click.echo(f"         {exc}")
                continue
            # After the target's configuration is known to be sound: a
            # configuration error prints nothing but itself (exit 2).
            failed |= not _destination_once(j, jobs_seen)
            report = transport.check(endpoint)
            refused = report.failed.error if report.failed else None
            if (trust_host_key and isinstance(refused, HostKeyRejected)
                    and _trust_host_key(refused)):
                report = transport.check(endpoint)
            click.echo(f"{j.name}.{t.name}  {endpoint.url}")
            for step in report.steps:
                mark = "ok    " if step.ok else "FAILED"
                click.echo(f"  {mark} {step.name:13} {step.detail}")
                if step.error is not None:
                    click.echo(f"         {step.error}")
            failed |= not report.ok
        if unusable:
            sys.exit(EXIT_USAGE)
        if failed:
            sys.exit(EXIT_CHECK_FAILED)


def _destination_once(job: Any, seen: set[str]) -> bool:
    """:func:`_check_destination` for the first of a job's targets; True after."""
    if job.name in seen:
        return True
    seen.add(job.name)
    return _check_destination(job)


def _check_destination(job: Any) -> bool:
    """Print the job's destination as one step; True if run could scan it.

    A run reads the destination before it connects anywhere: a disk that
    is not mounted, or a folder this user cannot read, fails every target
    of the job, so check says so first.
    """
    import getpass

    from offsite.errors import ConfigError

    folder = job.destination
    click.echo(f"{job.name}  {folder}")
    try:
        job.require_destination()
    except ConfigError as exc:
        problem = str(exc)
    else:
        problem = "" if os.access(folder, os.R_OK | os.X_OK) else (
            f"this user ({getpass.getuser()}) cannot read the destination folder. Fix: give "
            "it read access (the service's user, for the replicator), or correct the "
            "destination key")
    if problem:
        click.echo(f"  FAILED {'destination':13} {folder}")
        click.echo(f"         {problem}")
        return False
    click.echo(f"  ok     {'destination':13} {folder}")
    return True


def _action_json(action: Any) -> dict[str, Any]:
    import attrs

    return {"action": type(action).__name__.lower(), **attrs.asdict(action)}


@cli.command()
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def plan(job: str | None, as_json: bool) -> None:
    """Show what `offsite run` would do, changing nothing.

    A target that cannot be planned is said on stderr as run says it, and
    the others are planned. Exit 2 if a target's plugin is switched off or
    failed to load, else 1 if a target could not be reached or listed.
    """
    import attrs

    from offsite.engine import Engine, scan_destination
    from offsite.errors import PluginError, TargetError

    unusable = failed = False
    with _replication_errors():
        ctx = _ctx()
        with ctx.journal() as journal:
            engine = Engine(ctx.config, journal, ctx.credentials(), registry=ctx.registry)
            doc: list[dict[str, Any]] = []
            for j in engine.jobs([job] if job else None):
                j.require_destination()
                local = scan_destination(j.destination, j.settle)
                for t in j.targets:
                    entry: dict[str, Any] = {"job": j.name, "target": t.name, "error": None,
                                             "actions": [], "notes": [], "forget": [],
                                             "adopted": []}
                    doc.append(entry)
                    try:
                        p = engine.plan_target(j, t, local)
                    except (PluginError, TargetError) as exc:
                        # The line run prints for such a target; the others are planned.
                        unusable |= isinstance(exc, PluginError)
                        failed = True
                        entry["error"] = str(exc)
                        click.echo(f"{j.name}.{t.name}: FAILED: {exc}", err=True)
                        continue
                    entry.update(actions=[_action_json(a) for a in p.actions],
                                 notes=[attrs.asdict(n) for n in p.notes],
                                 forget=list(p.forget),
                                 adopted=[a.remote_path for a in p.adopted])
    if as_json:
        click.echo(json.dumps({"plans": doc}, ensure_ascii=False, separators=(",", ":")))
    else:
        for entry in doc:
            if entry["error"] is not None:
                continue  # said on stderr
            click.echo(f"{entry['job']}.{entry['target']}:")
            for path in entry["adopted"]:
                click.echo(f"  {path}: already placed (adopted: matches)")
            if not entry["actions"] and not entry["notes"]:
                click.echo("  nothing to do")
            for a in entry["actions"]:
                what = " + ".join(a["sources"]) if a["action"] == "put" else ""
                click.echo(f"  {a['action']:6} {a['remote']}"
                           + (f"  <- {what}" if what else "") + f"  ({a['reason']})")
            for n in entry["notes"]:
                click.echo(f"  {n['kind']:6} {n['file']}: {n['message']}")
    if unusable:
        sys.exit(EXIT_USAGE)
    if failed:
        sys.exit(EXIT_TARGET_FAILED)


@cli.command()
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line on stdout.")
@click.option("--max-delete", "max_delete", type=click.IntRange(0, 100), metavar="PERCENT",
              help="For this run, let mirror targets delete up to PERCENT of the files "
              "offsite placed there (instead of each target's max_delete).")
@click.option("--wait", is_flag=True,
              help="If another offsite process works a job, wait for it to finish "
              "instead of leaving the job (exit code 75).")
@click.pass_context
def run(click_ctx: click.Context, job: str | None, as_json: bool,
        max_delete: int | None, wait: bool) -> None:
    """One pass over every job (or JOB) and its targets, then exit.

    One process works a job at a time: a job that another offsite process
    works is left alone (or waited for, with --wait).

    Exit codes: 0 all done; 1 a target failed after its retries (the others
    still ran); 2 usage or configuration error, or a target could not start
    (its credentials, or its plugin switched off or broken: the others still
    ran); 3 bad data found (nothing replicated past it); 70 internal error (a
    bug); 75 a job was left because another process works it; 130
    interrupted (the next run resumes).
    """
    from offsite.display import JsonLines, LogLines, ProgressDisplay
    from offsite.engine import Engine, exit_code

    quiet = click_ctx.find_root().obj["quiet"]
    with _replication_errors():
        ctx = _ctx()
        with ctx.journal() as journal:
            engine = Engine(ctx.config, journal, ctx.credentials(), registry=ctx.registry,
                            max_delete=max_delete, wait=wait)
            display: Any = None
            if as_json:
                engine.listeners.append(JsonLines(sys.stdout))
            elif not quiet and sys.stderr.isatty():
                display = ProgressDisplay()
                engine.listeners.append(display)
            elif not quiet:
                engine.listeners.append(LogLines())
            else:  # --quiet: errors only
                engine.listeners.append(LogLines(errors_only=True))
            try:
                if display is not None:
                    display.start()
                from offsite.engine import Cancelled

                try:
                    results = engine.run([job] if job else None)
                except (KeyboardInterrupt, Cancelled):
                    engine.cancel.set()
                    click.echo("interrupted: the next run resumes where this one stopped",
                               err=True)
                    sys.exit(EXIT_INTERRUPTED)
            finally:
                if display is not None:
                    display.stop()
    sys.exit(exit_code(results))


@cli.command()
@click.argument("jobs", nargs=-1, metavar="[JOB]...")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line on stdout.")
@click.option("--poll", "poll", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Look at every destination every SECONDS instead of being told of "
              "changes by the kernel (inotify). Destinations on network file systems "
              "(NFS, CIFS, FUSE) are polled every 5 s without it.")
@click.option("--metrics", "metrics", type=click.Path(dir_okay=False), metavar="FILE",
              help="Keep FILE (e.g. /var/lib/node_exporter/textfile/offsite.prom) "
              "updated with Prometheus metrics of every target, written atomically "
              "every 2 s, for node_exporter's textfile collector.")
@click.pass_context
def replicator(click_ctx: click.Context, jobs: tuple[str, ...], as_json: bool,
               poll: float | None, metrics: str | None) -> None:
    """The service: replicate each image as it completes, until SIGTERM.

    Works every job (or each JOB) as `run` does, under the same per-job lock
    (a job another process works is taken up when it lets go): at start,
    which resumes the uploads a stopped or killed run left; then whenever
    its destination changed and stayed quiet for a moment; again after a
    failed pass, with a growing delay (30 s up to 15 min).

    SIGTERM or Ctrl-C stops within seconds, every upload resumable (exit 0,
    or 130 for Ctrl-C); SIGHUP reads the configuration again (a broken one
    is reported and the old one kept). Watch it with `offsite status
    --watch`. Exit codes: 0 stopped by SIGTERM; 2 configuration error at
    start; 70 internal error; 130 stopped by Ctrl-C.
    """
    import signal

    from offsite.display import JournaldFormatter, JsonLines, LogLines, to_journald
    from offsite.engine import Engine
    from offsite.metrics import write_textfile
    from offsite.replicator import Replicator, Timing
    from offsite.status import live

    quiet = click_ctx.find_root().obj["quiet"]
    journald = to_journald()
    if journald:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(RedactingFormatter(JournaldFormatter("%(message)s")))
    if not quiet:  # the service's log: what it watches, reloads
        logging.getLogger("offsite.replicator").setLevel(logging.INFO)
    with _replication_errors():
        root_ctx = _ctx()
        journal = root_ctx.journal()
        for name in jobs:
            root_ctx.config.job(name)  # an unknown job is a usage error now, not later
        listener: Any = (JsonLines(sys.stdout) if as_json else
                         LogLines(errors_only=quiet, priorities=journald))

        def build() -> Engine:
            ctx = _Context(str(root_ctx.config_path))  # the configuration as it is now
            engine = Engine(ctx.config, journal, ctx.credentials(), registry=ctx.registry,
                            wait=True, command="offsite replicator")
            engine.listeners.append(listener)
            return engine

        tick = None
        if metrics:
            metrics_path = Path(metrics)
            folder = root_ctx.config.folder

            def tick() -> None:
                write_textfile(metrics_path, live(journal, folder))

        timing = Timing(poll=poll) if poll else Timing()
        service = Replicator(build, jobs, timing=timing, poll=poll is not None, tick=tick)
        try:
            signum = service.serve()
        finally:
            journal.close()
    sys.exit(EXIT_INTERRUPTED if signum == signal.SIGINT else 0)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
def status(as_json: bool, watch: bool) -> None:
    """Per target: state, the upload in flight (bytes done/total, rate, ETA), last error.

    Reads the journal, so it shows a run going on in another process, and
    the job locks, so it tells a run that died (killed, a power cut) from
    one that is running: its targets show as interrupted, with the uploads
    the next run resumes.
    """
    import attrs

    from offsite.display import status_table
    from offsite.status import live

    with _replication_errors():
        ctx = _ctx()
        with ctx.journal() as journal:
            def now() -> Any:
                return live(journal, ctx.config.folder)

            if as_json:
                click.echo(json.dumps({"targets": [attrs.asdict(s) for s in now()]},
                                      ensure_ascii=False, separators=(",", ":")))
                return
            from rich.console import Console

            # Not a terminal (a pipe, a log): lines as wide as they need to be.
            console = Console() if sys.stdout.isatty() else Console(width=250)
            if not watch:
                console.print(status_table(now()))
                return
            import time

            from rich.live import Live

            try:
                with Live(status_table(now()), console=console, refresh_per_second=2) as shown:
                    while True:
                        time.sleep(1)
                        shown.update(status_table(now()))
            except KeyboardInterrupt:
                return


def _verify_target(ctx: _Context, j: Any, t: Any, store: Any, journal: Any, read_data: bool,
                   as_json: bool) -> tuple[dict[str, Any], bool]:
    """Audit one target, mark what is bad; its JSON entry, and whether all was well."""
    import attrs

    from offsite.audit import Finding, audit
    from offsite.engine import target_endpoint, target_transport
    from offsite.errors import PluginError, TargetError

    name = f"{j.name}.{t.name}"

    def show(f: Finding) -> None:
        if not as_json:
            click.echo(f"{'ok ' if f.ok else 'BAD'}  {name}  {f.path}"
                       + (f": {f.problem}" if f.problem else ""))

    entry: dict[str, Any] = {"job": j.name, "target": t.name, "error": None, "findings": []}
    try:
        transport = target_transport(j, t, store, ctx.registry)
        with transport.connect(target_endpoint(j, t, store)) as session:
            findings = audit(session, journal.placed(j.name, t.name), read_data=read_data,
                             progress=show)
    except (PluginError, TargetError) as exc:  # the other targets are still verified
        click.echo(f"{name}: FAILED: {exc}", err=True)
        return {**entry, "error": str(exc), "unusable": isinstance(exc, PluginError)}, True
    wrong = [f for f in findings if not f.ok]
    journal.distrust(j.name, t.name, [(f.path, f.problem or "") for f in wrong])
    entry["findings"] = [{**attrs.asdict(f), "ok": f.ok} for f in findings]
    how = "by reading every byte" if read_data else "by listing"
    said = (f"{len(wrong)} not as placed: the next offsite run puts them again (where the "
            "destination still has their sources)" if wrong else "all as placed")
    click.echo(f"{name}: {len(findings)} placed file(s) checked {how}, {said}", err=True)
    return entry, not wrong


@cli.command("verify")
@click.argument("job")
@click.argument("target", required=False)
@click.option("--read-data", "read_data", is_flag=True,
              help="Read every byte back: images block by block against their own SHA-256s "
              "and the digest recorded when they were placed, other files against their "
              "recorded SHA-256.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--wait", is_flag=True,
              help="If another offsite process works JOB, wait for it to finish.")
def verify_cmd(job: str, target: str | None, read_data: bool, as_json: bool,
               wait: bool) -> None:
    """Check that what offsite placed at JOB's targets (or TARGET) is there as placed.

    Every file the journal records as placed is looked up in the target's
    listing (size, and the checksum or modification time the target
    reported when it was placed); with --read-data every byte is read back
    and checked. What is bad is marked in the journal, and the next offsite
    run puts it again. Files offsite did not place are not looked at.

    Exit 0 all as placed, 1 a target could not be checked, 2 a target's
    plugin is switched off or broken, 3 bad files found, 75 another offsite
    process works JOB (the highest that applies, in the order of run's).
    """
    from offsite.lock import JobLock

    with _replication_errors():
        ctx = _ctx()
        j = ctx.config.job(job)
        targets = [j.target(target)] if target else list(j.targets)
        store = ctx.credentials()
        doc: list[dict[str, Any]] = []
        failed = bad = unusable = False
        lock = JobLock(ctx.config.folder, j.name, "offsite verify")
        lock.acquire(wait=wait)
        try:
            with ctx.journal() as journal:
                for t in targets:
                    entry, ok = _verify_target(ctx, j, t, store, journal, read_data, as_json)
                    doc.append(entry)
                    failed |= entry["error"] is not None
                    unusable |= bool(entry.pop("unusable", False))
                    bad |= not ok
        finally:
            lock.release()
    if as_json:
        click.echo(json.dumps({"targets": doc}, ensure_ascii=False, separators=(",", ":")))
    if unusable:
        sys.exit(EXIT_USAGE)
    if bad:
        sys.exit(EXIT_BAD_DATA)
    if failed:
        sys.exit(EXIT_TARGET_FAILED)


def _at_target(exc: ImageError, job: str, target: str) -> ImageError:
    """``exc``, said of a file at a target, with what to do about a bad copy there."""
    fields = {k: v for k, v in exc.fields.items() if k != "file"}
    return type(exc)(exc.detail, file=f"{exc.file} at {job}.{target}", block=exc.block,
                     offset=exc.offset, **fields, fix=(
                         f"run offsite verify {job} {target} --read-data: it marks what is "
                         "damaged or missing at the target, and the next offsite run puts it "
                         "again from the destination"))


@cli.command("restore")
@click.argument("job")
@click.argument("target")
@click.argument("image_path", metavar="IMAGE")
@click.argument("output", type=click.Path())
@click.option("--force", is_flag=True, help="Replace OUTPUT if it is an existing file.")
def restore_cmd(job: str, target: str, image_path: str, output: str, force: bool) -> None:
    """Restore the volume at IMAGE straight from a target (the chain read via get).

    IMAGE is the image's path at the target, e.g. vol-b001-i004.ofi (the
    target's subfolder is tried first when it has one).
    """
    from offsite import paths
    from offsite.engine import target_endpoint, target_transport
    from offsite.fetch import restore_from_target

    with _replication_errors():
        ctx = _ctx()
        j = ctx.config.job(job)
        t = j.target(target)
        store = ctx.credentials()
        transport = target_transport(j, t, store, ctx.registry)
        with transport.connect(target_endpoint(j, t, store)) as session:
            candidates = [paths.join(t.subfolder, image_path)] if t.subfolder else []
            candidates.append(image_path)
            from offsite.errors import NotFound

            for i, candidate in enumerate(candidates):
                try:
                    chain = restore_from_target(session, candidate, Path(output), force=force)
                    break
                except ImageError as exc:
                    raise _at_target(exc, j.name, t.name) from exc
                except NotFound as exc:
                    if exc.path != paths.normalise(candidate):
                        raise  # something else is missing: a target error
                    if i == len(candidates) - 1:
                        raise UsageError(f"{image_path} is not at {j.name}.{t.name} "
                                         "(offsite plan or the target's listing show "
                                         "what is there)") from None
        click.echo(f"restored {output} from {j.name}.{t.name}: "
                   + ", ".join(c.path.name for c in chain), err=True)


@cli.group()
def credentials() -> None:
    """Store, remove and list target credentials (encrypted; never on the command line)."""


_FIELDS_BY_SCHEME = {
    "sftp": ("password", "private_key", "passphrase"),
    "s3": ("access_key_id", "secret_access_key"),
}
_SECRET_FIELDS = {"password", "passphrase", "secret_access_key", "private_key"}


@credentials.command("set")
@click.argument("name", metavar="JOB.TARGET")
@click.option("--stdin", "from_stdin", is_flag=True,
              help='Read a JSON object such as {"password": "…"} from standard input.')
def credentials_set(name: str, from_stdin: bool) -> None:
    """Store the credentials of JOB.TARGET, prompting for each field.

    Leave a field empty to skip it. Secrets are never read from arguments.
    """
    with _replication_errors():
        ctx = _ctx()
        job, _, target = name.partition(".")
        t = ctx.config.job(job).target(target)
        if from_stdin:
            try:
                fields = json.loads(sys.stdin.read())
            except json.JSONDecodeError as exc:
                raise UsageError(f"--stdin: not a JSON object: {exc.msg}") from None
            if not isinstance(fields, dict):
                raise UsageError("--stdin: expected a JSON object of field names to values")
        else:
            if not sys.stdin.isatty():
                raise UsageError("no terminal to prompt on: use --stdin with a JSON object")
            fields = {}
            for field in _FIELDS_BY_SCHEME.get(t.scheme, ("password",)):
                value = click.prompt(f"{field} (empty to skip)", default="", show_default=False,
                                     hide_input=field in _SECRET_FIELDS)
                if value:
                    fields[field] = value
        ctx.credentials().set(f"{job}.{target}", fields)
        click.echo(f"stored {len(fields)} field(s) for {job}.{target}", err=True)


@credentials.command("delete")
@click.argument("name", metavar="JOB.TARGET")
def credentials_delete(name: str) -> None:
    """Remove the stored credentials of JOB.TARGET."""
    with _replication_errors():
        if not _ctx().credentials().delete(name):
            raise UsageError(f"no credentials stored for {name}")
        click.echo(f"deleted the credentials of {name}", err=True)


@credentials.command("list")
def credentials_list() -> None:
    """List the targets that have stored credentials (names only)."""
    with _replication_errors():
        for name in _ctx().credentials().list():
            click.echo(name)

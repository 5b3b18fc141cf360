"""A replication site for end-to-end tests: a destination with a volume's
images, a config folder, target folders, and the command line to drive them.

::

    site = Site(tmp_path)
    site.image(); site.image()                 # a full and incremental 1
    site.one_target(site.target("usb"))        # a job "nightly" with target "t"
    site.cli("run")                            # asserts exit code 0
    assert files(site.target("usb")) == ["vol-b001-i001.ofi", "vol-b001.ofi"]
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from offsite.cli import cli
from offsite.config import Config
from offsite.engine import Engine, Event
from offsite.image import ImageReader
from offsite.journal import Journal
from offsite.testing.images import Volume

#: The block size of the site's volume.
BS = 16 * 1024


class Site:
    """A destination with a volume's images, a config folder, and target folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dest = root / "destination"
        self.dest.mkdir()
        self.conf_dir = root / "conf"
        self.conf_dir.mkdir()
        self.config = self.conf_dir / "offsite.toml"
        self.vol = Volume(root / "volume.raw", 40 * BS + 1234, seed=7)

    def image(self, *, full: bool = False) -> Path:
        """The next image of the volume: a full, or an incremental after a few changes."""
        if self.vol.images and not full:
            self.vol.scribble(3, 2 * BS)
            self.vol.zero(self.vol.random.randrange(30) * BS, BS)
        return self.vol.image(self.dest, block_size=BS, full=full)

    def target(self, name: str) -> Path:
        return self.root / "targets" / name

    def configure(self, *targets: str, job: str = "nightly") -> None:
        """Write a one-job configuration with these ``[[job.target]]`` texts."""
        body = "".join(textwrap.dedent(t) for t in targets)
        self.config.write_text(f'[[job]]\nname = "{job}"\ndestination = "{self.dest}"\n{body}')

    def one_target(self, folder: Path, extra: str = "", *, scheme: str = "file") -> None:
        """A job with one target named "t" at ``folder`` (plus ``extra`` TOML
        lines); a ``scheme`` other than file is a test plugin's."""
        url = folder.as_uri() if scheme == "file" else f"{scheme}://{folder}"
        self.configure(f'[[job.target]]\nname = "t"\nurl = "{url}"\n{extra}\n')

    def cli(self, *args: str, code: int | None = 0) -> Result:
        """Run ``offsite --config … ARGS``; assert the exit code unless None."""
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args])
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result

    def journal(self) -> Journal:
        return Journal(self.conf_dir / "journal.sqlite")

    def engine(self, events: list[Event] | None = None, **kw: Any) -> Engine:
        """An engine over the site's configuration; retries do not wait."""
        listeners = [events.append] if events is not None else []
        return Engine(Config.load(self.config), self.journal(), None, listeners=listeners,
                      sleep=lambda s: None, **kw)


def files(folder: Path) -> list[str]:
    """The visible files under ``folder``, relative and sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def seq(path: Path) -> tuple[int, int]:
    """The sequence numbers an image covers."""
    with ImageReader(path) as r:
        return r.meta.seq_first, r.meta.seq_last


_HOLD = """
import sys, time
from offsite.lock import JobLock
JobLock(sys.argv[1], sys.argv[2], "offsite test").acquire()
print("held", flush=True)
time.sleep(300)
"""


def hold_lock(folder: Path, job: str) -> subprocess.Popen[str]:
    """Another process that takes ``job``'s lock in the config folder
    ``folder`` and keeps it until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), job],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc

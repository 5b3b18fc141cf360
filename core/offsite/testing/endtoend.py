"""The end-to-end test every plugin runs against its real server: replicate a
destination with consolidation through the command line, then restore a
point from the target and compare bytes.

It is what docs/USAGE.md promises an operator ("Consolidation, and why the
chain still restores"): a full and incrementals 1..3 wait at the
destination; ``offsite run`` places the full and *one* incremental, named
like #3, that holds the changes of 1..3; incremental 4 then chains onto it;
nothing is left to do after; and restoring point 4 from the target gives
the bytes the volume had at point 4. A plugin's test calls it in one line,
with the command line of its ``site`` fixture (a config with one job and
one target on the plugin's server) and a way to see what is at the target::

    def test_replicate_with_consolidation_and_restore(site, sshd, sftp_folder, tmp_path):
        endtoend.replicate_consolidate_restore(
            site, site.dest, tmp_path, lambda: os.listdir(sshd.root / sftp_folder),
            credentials={"password": sshd.password})

The same with awkward names (issue 22): :class:`CliSite` writes the config
(destination ``tmp_path / names.dest``, the target's URL for its folder's
sub-folder ``names.target``, quoted with :func:`url_path`), and the test
passes ``label=names.label``::

    def test_awkward_label_and_folders(sshd, sftp_folder, tmp_path):
        site = CliSite(tmp_path, sshd.url(url_path(AWKWARD.under(sftp_folder))), AWKWARD,
                       options={"known_hosts": str(sshd.known_hosts)})
        replicate_consolidate_restore(
            site, site.dest, tmp_path, lambda: os.listdir(sshd.root / AWKWARD.under(sftp_folder)),
            credentials={"password": sshd.password}, label=AWKWARD.label)
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

import attrs
from click.testing import CliRunner, Result

from offsite.cli import cli
from offsite.image.format import Compression
from offsite.testing.images import Volume


def consolidated(label: str = "vol") -> list[str]:
    """What the first run must place: the full, and incrementals 1..3 as one named like #3."""
    return sorted([f"{label}-b001-i003.ofi", f"{label}-b001.ofi"])


CONSOLIDATED = consolidated()


@attrs.frozen
class Names:
    """The names an end-to-end test replicates under.

    :ivar label: the images' label (``LABEL-b001.ofi``).
    :ivar dest: the destination folder's name (in the test's ``tmp_path``).
    :ivar target: a sub-folder of the target's fresh folder to replicate to
        (``""``: the fresh folder itself).
    """

    label: str = "vol"
    dest: str = "destination"
    target: str = ""

    def under(self, folder: str) -> str:
        """The target folder: ``target`` inside the plugin's fresh ``folder``."""
        return f"{folder}/{self.target}" if self.target else folder


#: The names every end-to-end test used before issue 22.
PLAIN = Names()
#: What users type: accents, CJK, spaces, '#', '%' (and '%20' literally,
#: '+', '&', ';'), in the label, the destination and the target folder.
#: Nothing SMB forbids, nor '"' and '\\' (the test's TOML is written by hand).
AWKWARD = Names(label="Süd 日本 #1 100% a+b&c;d", dest="Données 備份 #2 50%20off",
                target="cible été/目標 #3 %25 x")


def url_path(folder: str) -> str:
    """``folder`` percent-quoted for a target URL (the core unquotes it: '#'
    would start a fragment, '%' an escape)."""
    return urllib.parse.quote(folder, safe="/")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


class CliSite:
    """``offsite`` on a config of one job with one target, for end-to-end tests.

    ``site(*args, code=0, input=None)`` runs ``offsite --config FILE ARGS``
    and asserts the exit code (and that no ``secrets`` show in its output).

    :param root: a fresh folder (``tmp_path``): the destination and ``conf/`` go here.
    :param url: the target's URL (see :func:`url_path`).
    :param names: the destination folder's name (:attr:`Names.dest`).
    :param options: the target's ``[job.target.options]``.
    """

    def __init__(self, root: Path, url: str, names: Names = PLAIN, *,
                 options: Mapping[str, object] | None = None, job: str = "nightly",
                 target: str = "vault", secrets: Iterable[str] = ()) -> None:
        self.names = names
        self.dest = root / names.dest
        self.dest.mkdir()
        self.conf = root / "conf"
        self.conf.mkdir(exist_ok=True)
        self.config = self.conf / "offsite.toml"
        self.secrets = list(secrets)
        lines = ["[[job]]", f"name = {_toml(job)}", f"destination = {_toml(self.dest)}",
                 "[[job.target]]", f"name = {_toml(target)}", f"url = {_toml(url)}",
                 "[job.target.options]",
                 *(f"{key} = {_toml(value)}" for key, value in (options or {}).items())]
        self.config.write_text("\n".join(lines) + "\n")

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> Result:
        result = CliRunner().invoke(cli, ["--config", str(self.config), *args], input=input)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        for secret in self.secrets:
            assert secret not in result.stdout + result.stderr, "a secret in the output"
        return result


class Cli(Protocol):
    """``offsite --config FILE ARGS…`` as a plugin test's ``site`` fixture runs
    it: ``input`` on standard input, exit code 0 asserted."""

    def __call__(self, *args: str, input: str | None = None) -> Result: ...


def replicate_consolidate_restore(
        cli: Cli, dest: Path, work: Path, at_target: Callable[[], Iterable[str]], *,
        credentials: Mapping[str, str], job: str = "nightly", target: str = "vault",
        size: int = 3 << 20, block_size: int = 64 << 10, compression: Compression = "zstd",
        change: int = 200_000, last_change: int = 50_000, seed: int = 5,
        label: str = "vol") -> Volume:
    """Replicate with consolidation to ``job``'s ``target``, then restore point 4 from it.

    :param cli: the command line on a config whose job ``job`` has the
        destination ``dest`` and the one target ``target``.
    :param work: a folder for the volume (``vol.raw``) and the restored point
        (``restored.raw``).
    :param at_target: the names in the target's folder, hidden ones too (a
        partial file left behind fails the test), as the server has them.
    :param credentials: stored for the target first (``offsite credentials set
        --stdin``, unless empty); none of their values may appear in what
        ``run`` prints.
    :param size: the volume's size; ``block_size``, ``compression``: its images';
        ``change``: the bytes of each of three changes before incrementals 1..3,
        ``last_change``: of the one change before incremental 4. (A plugin whose
        uploads change strategy with size picks them to cross that line.)
    :param label: the images' label (see :data:`AWKWARD`).
    :returns: the volume, with its bytes at every point (``states``).
    """
    if credentials:  # a local folder takes none
        cli("credentials", "set", f"{job}.{target}", "--stdin",
            input=json.dumps(dict(credentials)))
    vol = Volume(work / "vol.raw", size, seed=seed)
    vol.image(dest, block_size=block_size, compression=compression, label=label)
    for _ in range(3):
        vol.scribble(3, change)
        vol.image(dest, compression=compression, label=label)

    out = cli("run", "--json").stdout
    done = [json.loads(line)["remote"] for line in out.splitlines() if '"upload-done"' in line]
    assert sorted(done) == consolidated(label), "the full, and 1..3 consolidated"
    assert sorted(at_target()) == consolidated(label), "the target holds those two, nothing else"
    for secret in credentials.values():
        assert secret not in out, "a credential in run's output"

    vol.scribble(1, last_change)
    vol.image(dest, compression=compression, label=label)  # incremental 4 chains onto "1..3"
    cli("run")
    plans = json.loads(cli("plan", "--json").stdout)["plans"]
    assert [p["actions"] for p in plans] == [[]], "nothing left to do"

    restored = work / "restored.raw"
    cli("restore", job, target, f"{label}-b001-i004.ofi", str(restored))
    assert restored.read_bytes() == vol.states[4], "point 4 restored from the target"
    return vol


__all__ = ["AWKWARD", "CONSOLIDATED", "PLAIN", "Cli", "CliSite", "Names", "consolidated",
           "replicate_consolidate_restore", "url_path"]

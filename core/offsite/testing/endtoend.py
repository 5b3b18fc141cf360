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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from click.testing import Result

from offsite.image.format import Compression
from offsite.testing.images import Volume

#: What the first run must place: the full, and incrementals 1..3 as one named like #3.
CONSOLIDATED = ["vol-b001-i003.ofi", "vol-b001.ofi"]


class Cli(Protocol):
    """``offsite --config FILE ARGS…`` as a plugin test's ``site`` fixture runs
    it: ``input`` on standard input, exit code 0 asserted."""

    def __call__(self, *args: str, input: str | None = None) -> Result: ...


def replicate_consolidate_restore(
        cli: Cli, dest: Path, work: Path, at_target: Callable[[], Iterable[str]], *,
        credentials: Mapping[str, str], job: str = "nightly", target: str = "vault",
        size: int = 3 << 20, block_size: int = 64 << 10, compression: Compression = "zstd",
        change: int = 200_000, last_change: int = 50_000, seed: int = 5) -> Volume:
    """Replicate with consolidation to ``job``'s ``target``, then restore point 4 from it.

    :param cli: the command line on a config whose job ``job`` has the
        destination ``dest`` and the one target ``target``.
    :param work: a folder for the volume (``vol.raw``) and the restored point
        (``restored.raw``).
    :param at_target: the names in the target's folder, hidden ones too (a
        partial file left behind fails the test), as the server has them.
    :param credentials: stored for the target first (``offsite credentials set
        --stdin``); none of their values may appear in what ``run`` prints.
    :param size: the volume's size; ``block_size``, ``compression``: its images';
        ``change``: the bytes of each of three changes before incrementals 1..3,
        ``last_change``: of the one change before incremental 4. (A plugin whose
        uploads change strategy with size picks them to cross that line.)
    :returns: the volume, with its bytes at every point (``states``).
    """
    cli("credentials", "set", f"{job}.{target}", "--stdin", input=json.dumps(dict(credentials)))
    vol = Volume(work / "vol.raw", size, seed=seed)
    vol.image(dest, block_size=block_size, compression=compression)
    for _ in range(3):
        vol.scribble(3, change)
        vol.image(dest, compression=compression)

    out = cli("run", "--json").stdout
    done = [json.loads(line)["remote"] for line in out.splitlines() if '"upload-done"' in line]
    assert sorted(done) == CONSOLIDATED, "the full, and 1..3 consolidated"
    assert sorted(at_target()) == CONSOLIDATED, "the target holds those two, nothing else"
    for secret in credentials.values():
        assert secret not in out, "a credential in run's output"

    vol.scribble(1, last_change)
    vol.image(dest, compression=compression)  # incremental 4 chains onto "1..3"
    cli("run")
    plans = json.loads(cli("plan", "--json").stdout)["plans"]
    assert [p["actions"] for p in plans] == [[]], "nothing left to do"

    restored = work / "restored.raw"
    cli("restore", job, target, "vol-b001-i004.ofi", str(restored))
    assert restored.read_bytes() == vol.states[4], "point 4 restored from the target"
    return vol


__all__ = ["CONSOLIDATED", "Cli", "replicate_consolidate_restore"]

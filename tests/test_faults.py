"""Fault injection against the file:// target: kill -9 anywhere, two runs at once.

The same scenarios run against SFTP and S3 in their plugins' tests
(:mod:`offsite.testing.faults`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from offsite.testing import faults
from offsite.testing.faults import FaultSite, TargetSpec
from offsite.testing.site import files


def test_two_runs_at_once(tmp_path: Path) -> None:
    spec = TargetSpec((tmp_path / "t").as_uri())
    faults.two_runs_at_once(FaultSite(tmp_path, spec, bwlimit="1M"))


def test_kill_nine_anywhere(tmp_path: Path) -> None:
    site = FaultSite(tmp_path, TargetSpec((tmp_path / "t").as_uri()))
    faults.kill_nine_anywhere(site)
    partials = [p for p in (tmp_path / "t").iterdir() if p.name.startswith(".")]
    assert partials == [], "every partial file was finished or cleaned up"


def test_kill_nine_anywhere_in_a_mirror(tmp_path: Path) -> None:
    target = tmp_path / "t"
    site = FaultSite(tmp_path, TargetSpec(target.as_uri(), extra="mirror = true"))
    (site.dest / "notes.txt").write_text("runbook")
    target.mkdir()
    (target / "foreign.txt").write_text("another tool's")
    faults.kill_nine_anywhere(site, rounds=4)
    (site.dest / "notes.txt").unlink()
    assert site.offsite("run").returncode == 0
    local = sorted(p.name for p in site.dest.iterdir() if not p.name.startswith("."))
    assert files(target) == sorted([*local, "foreign.txt"])
    for name in local:
        assert (target / name).read_bytes() == (site.dest / name).read_bytes()


def test_the_replicator_killed_mid_upload_resumes(tmp_path: Path) -> None:
    # 24 MiB at 2 MiB/s: a checkpoint every second; the kill 40 % in.
    site = FaultSite(tmp_path, TargetSpec((tmp_path / "t").as_uri()), size=24 << 20,
                     bwlimit="2M")
    faults.replicator_killed_mid_upload(site)


def _journal_places(site: FaultSite) -> set[str]:
    from offsite.journal import Journal

    with Journal(site.conf / "journal.sqlite") as journal:
        return {p.remote_path for p in journal.placed(faults.JOB, faults.TARGET)}


def test_a_full_target_fails_clearly_and_the_next_pass_after_the_fix_completes(
        tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)],
                             capture_output=True, check=False)
    if mounted.returncode:
        pytest.skip("cannot mount a small tmpfs here (that needs root)")
    try:
        site = FaultSite(tmp_path, TargetSpec(target.as_uri()), size=4 << 20, bwlimit="0")
        image = site.image()
        before = site.snapshot()
        run = site.offsite("run")
        assert run.returncode == 1, run.stderr
        assert "storage full" in run.stderr.lower() or "no space" in run.stderr.lower(), run.stderr
        assert "Fix:" in run.stderr
        assert site.snapshot() == before, "the destination changed"
        assert _journal_places(site) == set(), "the journal records a file that is not there"
        assert not (target / image.name).exists(), "a half file under its final name"
        # The fix: a bigger disk (remounted bigger, as an operator would grow it).
        subprocess.run(["mount", "-o", "remount,size=64m", str(target)], check=True)
        again = site.offsite("run")
        assert again.returncode == 0, again.stderr
        assert _journal_places(site) == {image.name}
        assert site.restore(image.name) == site.vol.states[-1]
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_refused_target_fails_clearly_and_the_next_pass_after_the_fix_completes(
        tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode:
        pytest.skip("cannot make a folder immutable here (chattr +i)")
    try:
        site = FaultSite(tmp_path, TargetSpec(target.as_uri()), size=1 << 20, bwlimit="0")
        image = site.image()
        before = site.snapshot()
        run = site.offsite("run")
        assert run.returncode == 1, run.stderr
        assert "permission denied" in run.stderr.lower(), run.stderr
        assert site.snapshot() == before
        assert _journal_places(site) == set()
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)
    again = site.offsite("run")
    assert again.returncode == 0, again.stderr
    assert _journal_places(site) == {image.name}
    assert site.restore(image.name) == site.vol.states[-1]

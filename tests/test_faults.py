"""Fault injection against the file:// target: kill -9 anywhere, two runs at once.

The same scenarios run against SFTP and S3 in their plugins' tests
(:mod:`offsite.testing.faults`).
"""

from __future__ import annotations

from pathlib import Path

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


def test_a_full_target_fails_clearly_and_the_next_pass_after_the_fix_completes(
        tmp_path: Path) -> None:
    target = tmp_path / "t"
    site = FaultSite(tmp_path, TargetSpec(target.as_uri()), size=4 << 20, bwlimit="0")
    faults.target_full_then_fixed(site, target)


def test_a_refused_target_fails_clearly_and_the_next_pass_after_the_fix_completes(
        tmp_path: Path) -> None:
    target = tmp_path / "t"
    site = FaultSite(tmp_path, TargetSpec(target.as_uri()), size=1 << 20, bwlimit="0")
    faults.target_refuses_then_fixed(site, target)

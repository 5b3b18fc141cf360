"""``offsite verify``: what the journal says was placed, checked at the target
(by its listing, and with --read-data by every byte), and what is bad put
again by the next run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from offsite import lock
from offsite.image import ImageReader
from offsite.journal import Journal
from offsite.testing.images import Volume, flip_byte
from offsite.testing.site import BS, Site, hold_lock


@pytest.fixture
def placed(site: Site) -> Path:
    """A target holding a full, a consolidation and another file, as placed."""
    for _ in range(3):
        site.image()
    (site.dest / "notes.txt").write_text("runbook")
    t = site.target("t")
    site.one_target(t)
    site.cli("run")
    return t


def keep_mtime(path: Path) -> tuple[float, float]:
    st = path.stat()
    return st.st_atime, st.st_mtime


def test_all_as_placed(site: Site, placed: Path) -> None:
    for args in ((), ("--read-data",)):
        result = site.cli("verify", "nightly", *args)
        assert result.stdout.splitlines() == [
            "ok   nightly.t  notes.txt", "ok   nightly.t  vol-b001-i002.ofi",
            "ok   nightly.t  vol-b001.ofi"]
        assert "3 placed file(s) checked" in result.stderr and "all as placed" in result.stderr


def test_a_file_changed_by_hand_is_found_by_its_listing(site: Site, placed: Path) -> None:
    full = placed / "vol-b001.ofi"
    full.write_bytes(os.urandom(full.stat().st_size))
    later = full.stat().st_mtime + 10
    os.utime(full, (later, later))
    (placed / "notes.txt").unlink()
    result = site.cli("verify", "nightly", code=3)
    assert "BAD  nightly.t  notes.txt: missing at the target" in result.stdout
    assert "BAD  nightly.t  vol-b001.ofi: changed at the target" in result.stdout
    assert "2 not as placed: the next offsite run puts them again" in result.stderr
    with Journal(site.conf_dir / "journal.sqlite") as j:
        marks = {p.remote_path: p.problem for p in j.placed("nightly", "t")}
    assert marks["vol-b001.ofi"] is not None and marks["vol-b001-i002.ofi"] is None

    site.cli("run")
    assert full.read_bytes() == site.vol.images[0].read_bytes()
    assert (placed / "notes.txt").read_text() == "runbook"
    site.cli("verify", "nightly", "t", "--read-data")


@pytest.mark.parametrize("damage", ["flip-payload", "garbage", "other-image", "notes"])
def test_read_data_finds_what_the_listing_cannot(site: Site, placed: Path,
                                                 damage: str) -> None:
    # Same size, same modification time: only the bytes tell.
    name = {"notes": "notes.txt", "other-image": "vol-b001.ofi"}.get(damage, "vol-b001-i002.ofi")
    victim = placed / name
    times = keep_mtime(victim)
    if damage == "flip-payload":
        with ImageReader(victim) as r:
            entry = next(e for e in r.entries() if e.length)
        flip_byte(victim, entry.offset + 5)
    elif damage == "garbage":
        victim.write_bytes(os.urandom(victim.stat().st_size))
    elif damage == "other-image":  # a sound full image of the same size, not the one placed
        (site.root / "elsewhere").mkdir()
        twin = Volume(site.root / "twin.raw", len(site.vol.states[0]), seed=99)
        other = twin.image(site.root / "elsewhere", block_size=BS)
        assert other.stat().st_size == victim.stat().st_size
        victim.write_bytes(other.read_bytes())
    else:
        victim.write_text("RUNBOOK")
    os.utime(victim, times)
    site.cli("verify", "nightly")  # the listing cannot see it
    result = site.cli("verify", "nightly", "--read-data", code=3)
    line = next(x for x in result.stdout.splitlines() if x.startswith("BAD"))
    assert victim.name in line
    expected = {"flip-payload": "payload SHA-256 does not match",
                "garbage": "not an OFI image",
                "other-image": "is not the image that was placed",
                "notes": "its SHA-256 is"}[damage]
    assert expected in line
    site.cli("run")
    site.cli("verify", "nightly", "--read-data")
    out = site.root / "out.raw"
    site.cli("restore", "nightly", "t", "vol-b001-i002.ofi", str(out))
    assert out.read_bytes() == site.vol.states[2]


def test_json(site: Site, placed: Path) -> None:
    (placed / "notes.txt").unlink()
    doc = json.loads(site.cli("verify", "nightly", "--json", code=3).stdout)
    (entry,) = doc["targets"]
    assert (entry["job"], entry["target"], entry["error"]) == ("nightly", "t", None)
    by_path = {f["path"]: f for f in entry["findings"]}
    assert by_path["notes.txt"] == {"path": "notes.txt", "problem": "missing at the target",
                                    "how": "listed", "ok": False}
    assert by_path["vol-b001.ofi"]["ok"] is True


def test_a_locked_job_and_an_unreachable_target(site: Site, placed: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "GRACE", 0.2)
    proc = hold_lock(site.conf_dir, "nightly")
    try:
        result = site.cli("verify", "nightly", code=75)
        assert f"job 'nightly' is being worked by process {proc.pid}" in result.stderr
    finally:
        proc.kill()
        proc.wait()
    placed.rename(site.root / "moved")
    placed.write_text("a file where the target folder was")
    result = site.cli("verify", "nightly", code=1)
    assert "is a file where a folder is needed" in result.stderr
    assert "Traceback" not in result.stderr

"""Adoption (offsite.adopt): files put at a file:// target by hand that hold
the destination's own are counted as placed; anything else stays foreign.

The rules, one test each: a hand-copied set is adopted (plan says so, run
sends nothing and records it, restore works); another size, another footer,
a consolidation where the original incremental belongs are not; a small
other file is compared whole; a mirror never deletes what it adopted; the
journal keeps the mark and migrates to it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from offsite.image.consolidate import Consolidation
from offsite.journal import MIGRATIONS, Journal, Placed
from offsite.testing.images import flip_byte
from offsite.testing.site import Site, files


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A full and incrementals 1..3 at the destination; one file:// target "t"."""
    site = Site(tmp_path)
    for _ in range(4):
        site.image()
    site.target("usb").mkdir(parents=True)
    site.one_target(site.target("usb"))
    return site


def by_hand(site: Site, *names: str) -> Path:
    """Copy destination files into the target folder as another tool would."""
    target = site.target("usb")
    for name in names or [p.name for p in sorted(site.dest.glob("*.ofi"))]:
        shutil.copyfile(site.dest / name, target / name)
    return target


def planned(site: Site) -> dict[str, object]:
    [entry] = json.loads(site.cli("plan", "--json").stdout)["plans"]
    return entry  # type: ignore[no-any-return]


def grown(site: Site, name: str) -> tuple[Path, dict[str, object]]:
    """Copy the set by hand with one byte more in ``name``; the plan then."""
    target = by_hand(site)
    with open(target / name, "ab") as f:
        f.write(b"x")
    entry = planned(site)
    assert name not in entry["adopted"]  # type: ignore[operator]
    return target, entry


def uploads(site: Site) -> list[str]:
    out = site.cli("run", "--json").stdout
    return sorted(json.loads(line)["remote"] for line in out.splitlines()
                  if '"upload-done"' in line)


def test_a_set_copied_by_hand_is_adopted_and_nothing_is_sent(site: Site) -> None:
    target = by_hand(site)
    before = {n: (target / n).read_bytes() for n in files(target)}
    entry = planned(site)
    assert entry["actions"] == [] and entry["notes"] == []
    assert sorted(entry["adopted"]) == files(target)  # type: ignore[arg-type]
    text = site.cli("plan").stdout
    assert "vol-b001-i002.ofi: already placed (adopted: matches)" in text
    assert "nothing to do" in text
    with site.journal() as j:
        assert j.placed("nightly", "t") == [], "plan records nothing"

    assert uploads(site) == [], "run sends nothing"
    with site.journal() as j:
        placed = j.placed("nightly", "t")
    assert sorted(p.remote_path for p in placed) == files(target)
    assert all(p.adopted and p.sha256 and p.sha256.startswith("ofi:") for p in placed)
    assert {n: (target / n).read_bytes() for n in files(target)} == before
    assert planned(site)["adopted"] == [], "adopted once, then simply placed"

    site.image()  # incremental 4 chains onto the adopted ones
    assert uploads(site) == ["vol-b001-i004.ofi"]
    out = site.root / "restored.raw"
    site.cli("restore", "nightly", "t", "vol-b001-i004.ofi", str(out))
    assert out.read_bytes() == site.vol.states[4]


def test_another_size_stays_foreign_and_its_replacement_is_said(site: Site) -> None:
    target, entry = grown(site, "vol-b001-i003.ofi")
    assert len(entry["adopted"]) == 3  # type: ignore[arg-type]
    notes = [(n["kind"], n["file"]) for n in entry["notes"]]  # type: ignore[attr-defined]
    assert notes == [("replaces-foreign", "vol-b001-i003.ofi")]
    actions = [a["remote"] for a in entry["actions"]]  # type: ignore[attr-defined]
    assert actions == ["vol-b001-i003.ofi"]
    assert target.is_dir()


def test_a_gap_in_what_was_copied_is_filled_and_the_foreign_file_left(site: Site) -> None:
    target, entry = grown(site, "vol-b001-i002.ofi")
    # The chain at the target reaches 1; 2..3 go consolidated, named as 3,
    # over the adopted 3. The file at -i002 is not in the way: left alone.
    assert [(a["remote"], a["seq_first"]) for a in entry["actions"]] == [  # type: ignore[attr-defined]
        ("vol-b001-i003.ofi", 2)]
    assert entry["notes"] == []
    site.cli("run")
    assert (target / "vol-b001-i002.ofi").read_bytes()[-1:] == b"x"


def test_another_footer_of_the_same_size_stays_foreign(site: Site) -> None:
    target = by_hand(site, "vol-b001.ofi")
    flip_byte(target / "vol-b001.ofi", (target / "vol-b001.ofi").stat().st_size - 20)
    entry = planned(site)
    assert entry["adopted"] == []
    assert [n["kind"] for n in entry["notes"]] == ["replaces-foreign"]  # type: ignore[attr-defined]
    run = site.cli("run").stderr
    assert "vol-b001.ofi: replaces-foreign" in run, "never replaced silently"
    assert (target / "vol-b001.ofi").read_bytes() == (site.dest / "vol-b001.ofi").read_bytes()


def test_a_consolidation_where_the_original_incremental_belongs_is_not_adopted(
        site: Site) -> None:
    target = by_hand(site, "vol-b001.ofi")
    # offsite's own consolidation of 1..3, named as 3, copied there by hand:
    # the destination's -i003 is the original incremental 3, another image.
    incrementals = [site.dest / f"vol-b001-i00{n}.ofi" for n in (1, 2, 3)]
    with Consolidation(incrementals) as merged:
        merged.write_file(target / "vol-b001-i003.ofi")
    entry = planned(site)
    assert entry["adopted"] == ["vol-b001.ofi"]
    assert [(n["kind"], n["file"]) for n in entry["notes"]] == [  # type: ignore[attr-defined]
        ("replaces-foreign", "vol-b001-i003.ofi")]


def test_the_same_size_and_header_but_another_footer_is_not_a_match(site: Site) -> None:
    """The rule itself, without the planner: adopt() compares header and footer."""
    from offsite.adopt import adopt
    from offsite.destination import scan_destination
    from offsite.plan import Options
    from offsite.transport import RemoteFile

    target = by_hand(site, "vol-b001-i001.ofi")
    size = (target / "vol-b001-i001.ofi").stat().st_size
    flip_byte(target / "vol-b001-i001.ofi", size - 1)  # the footer's magic
    local = scan_destination(site.dest, 0)
    listing = [RemoteFile("vol-b001-i001.ofi", size, 0.0)]

    class Files:
        def get(self, path: str, offset: int = 0):  # type: ignore[no-untyped-def]
            f = open(target / path, "rb")  # noqa: SIM115 - the caller closes it
            f.seek(offset)
            return f

    assert adopt(Files(), site.dest, local, [], listing, Options()) == []
    shutil.copyfile(site.dest / "vol-b001-i001.ofi", target / "vol-b001-i001.ofi")
    [found] = adopt(Files(), site.dest, local, [], listing, Options())
    assert (found.remote_path, found.adopted, found.seq_first) == ("vol-b001-i001.ofi", True, 1)


def test_a_small_other_file_is_compared_whole(site: Site) -> None:
    (site.dest / "notes.txt").write_text("the same\n")
    (site.dest / "list.txt").write_text("ours ....\n")
    target = by_hand(site)
    (target / "notes.txt").write_text("the same\n")
    (target / "list.txt").write_text("theirs ..\n")  # same size, other bytes
    entry = planned(site)
    assert "notes.txt" in entry["adopted"]  # type: ignore[operator]
    assert "list.txt" not in entry["adopted"]  # type: ignore[operator]
    site.cli("run")
    assert (target / "list.txt").read_text() == "theirs ..\n", "a foreign file is left alone"


def test_a_mirror_never_deletes_what_it_adopted(site: Site) -> None:
    site.one_target(site.target("usb"), "mirror = true")
    target = by_hand(site)
    assert uploads(site) == []
    (site.dest / "vol-b001-i003.ofi").unlink()
    entry = planned(site)
    assert entry["actions"] == [], "adopted: offsite did not write it, so it never deletes it"
    site.cli("run")
    assert "vol-b001-i003.ofi" in files(target)


def test_the_journal_keeps_the_mark_and_migrates_to_it(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    for migration in MIGRATIONS[:5]:
        migration(conn)
    conn.execute("PRAGMA user_version = 5")
    conn.execute("INSERT INTO placed (job, target, remote_path, size, kind) "
                 "VALUES ('nightly', 't', 'a.ofi', 10, 'full')")
    conn.close()
    adopted = Placed("b.ofi", 20, "ofi:00", "full", adopted=True)
    with Journal(db) as j:
        [old] = j.placed("nightly", "t")
        assert old.adopted is False, "uploaded, as every file was before version 6"
        j.record_placed("nightly", "t", adopted)
    with Journal(db) as j:
        assert j.placed("nightly", "t")[1] == adopted


def test_only_unknown_paths_of_the_same_size_are_read(site: Site) -> None:
    from offsite.adopt import candidates
    from offsite.destination import scan_destination
    from offsite.plan import Options
    from offsite.transport import RemoteFile

    local = {f.name: f for f in scan_destination(site.dest, 0)}
    listing = [RemoteFile(f"sub/{n}", f.size + (n == "vol-b001-i002.ofi"), 0.0)
               for n, f in local.items()]
    known = [Placed("sub/vol-b001.ofi", local["vol-b001.ofi"].size, None, "full")]
    found = candidates(list(local.values()), known, listing, Options(subfolder="sub"))
    assert sorted(seen.path for _, seen in found) == [
        "sub/vol-b001-i001.ofi", "sub/vol-b001-i003.ofi"], "known, or another size: not read"
    assert candidates(list(local.values()), [], listing, Options()) == [], "not where it goes"

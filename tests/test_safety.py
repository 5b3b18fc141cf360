"""Never lose a backup: what a mirror may delete, a target edited by hand,
an image that only looks unfinished. End to end, through the command line,
against the real file:// plugin."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from offsite.image import ImageReader
from offsite.image.format import FOOTER
from offsite.journal import Journal
from offsite.testing.site import Site, files


def test_a_mirror_never_deletes_most_of_its_copies_in_one_run(site: Site) -> None:
    site.image()
    for i in range(4):
        (site.dest / f"doc{i}.txt").write_text(f"document {i}")
    m = site.target("m")
    site.one_target(m, "mirror = true")
    site.cli("run")
    assert len(files(m)) == 5

    for i in range(3):  # 3 of the 5 files offsite placed: 60 % > 50 %
        (site.dest / f"doc{i}.txt").unlink()
    (site.dest / "new.txt").write_text("arrived meanwhile")
    result = site.cli("run", code=1)
    assert "mirror would delete 3 of the 5 files offsite placed at the target (60%)" in \
        result.stderr
    assert "--max-delete 100 nightly" in result.stderr
    assert files(m) == ["doc0.txt", "doc1.txt", "doc2.txt", "doc3.txt", "new.txt",
                        "vol-b001.ofi"], "nothing deleted, the new file placed"
    status = json.loads(site.cli("status", "--json").stdout)["targets"][0]
    assert status["state"] == "failed" and "max_delete" in status["last_error"]

    site.cli("run", "--max-delete", "100")
    assert files(m) == ["doc3.txt", "new.txt", "vol-b001.ofi"]


def test_an_emptied_destination_deletes_nothing(site: Site) -> None:
    # What an unmounted backup disk looks like: the folder is there, empty.
    site.image()
    site.image()
    m = site.target("m")
    site.one_target(m, "mirror = true")
    site.cli("run")
    for p in list(site.dest.iterdir()):
        p.unlink()
    site.cli("run", code=1)
    assert files(m) == ["vol-b001-i001.ofi", "vol-b001.ofi"]


def test_a_file_replaced_at_the_target_by_hand_is_put_again(site: Site, tmp_path: Path) -> None:
    for _ in range(3):
        site.image()
    (site.dest / "notes.txt").write_text("runbook")
    t = site.target("t")
    site.one_target(t)
    site.cli("run")
    full = t / "vol-b001.ofi"
    good = full.read_bytes()
    garbage = os.urandom(len(good))  # same size, other bytes
    full.write_bytes(garbage)
    (t / "notes.txt").write_text("RUNBOOK")
    later = time.time() + 5  # written by hand later than offsite placed it
    os.utime(full, (later, later))
    os.utime(t / "notes.txt", (later, later))

    plan = json.loads(site.cli("plan", "--json").stdout)["plans"][0]
    assert sorted(a["remote"] for a in plan["actions"]) == ["notes.txt", "vol-b001.ofi"]
    result = site.cli("run")
    assert "vol-b001.ofi: changed at the target since offsite placed it" in result.stderr
    assert full.read_bytes() == good
    assert (t / "notes.txt").read_text() == "runbook"
    with Journal(site.conf_dir / "journal.sqlite") as j:
        assert all(p.problem is None for p in j.placed("nightly", "t"))
    site.cli("restore", "nightly", "t", "vol-b001-i002.ofi", str(tmp_path / "out.raw"))
    assert (tmp_path / "out.raw").read_bytes() == site.vol.states[2]
    again = site.cli("run", "--json").stdout
    assert '"upload-done"' not in again, "settled: nothing to do"


def _break_footer(image: Path) -> None:
    """Flip one bit of the footer's magic: the image looks unfinished."""
    size = image.stat().st_size
    with open(image, "r+b") as f:
        f.seek(size - 1)
        byte = f.read(1)[0]
        f.seek(size - 1)
        f.write(bytes([byte ^ 0x01]))
    assert FOOTER.size > 1


def test_an_image_that_looks_unfinished_for_too_long_is_reported(site: Site) -> None:
    site.image()
    site.image()
    _break_footer(site.vol.images[1])
    t = site.target("t")
    site.one_target(t)
    waiting = site.cli("run", "--json")  # just written: it may still be being written
    notes = [json.loads(line) for line in waiting.stdout.splitlines()
             if '"data-problem"' in line]
    assert [n["message"].split(":")[0] for n in notes] == ["waiting"]

    old = time.time() - 301  # unchanged for longer than the default settle time
    os.utime(site.vol.images[1], (old, old))
    result = site.cli("run", code=3)
    assert "vol-b001-i001.ofi: no valid footer, and unchanged for 5 min (settle = 5 min)" in \
        result.stderr
    assert files(t) == ["vol-b001.ofi"]
    with ImageReader(site.vol.images[0]):
        pass  # the sound image is untouched and still reads


def test_settle_is_per_job(site: Site) -> None:
    site.image()
    site.image()
    _break_footer(site.vol.images[1])
    old = time.time() - 60
    os.utime(site.vol.images[1], (old, old))
    site.one_target(site.target("t"))
    text = site.config.read_text().replace(
        f'destination = "{site.dest}"', f'destination = "{site.dest}"\nsettle = "30s"')
    site.config.write_text(text)
    result = site.cli("run", code=3)
    assert "unchanged for 60 s (settle = 30 s)" in result.stderr

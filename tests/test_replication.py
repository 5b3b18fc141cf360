"""End to end: jobs with file:// targets, through the CLI and the engine.

The seed's own example first: base + incrementals 1-3 at the destination give
base + one incremental named as #3 covering 1-3 at the target; incremental 4
then goes alone; restoring point 4 from the target gives exactly the bytes of
point 4 restored from the destination.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.display import describe
from offsite.engine import (
    Cancelled,
    DataProblem,
    Event,
    RetryScheduled,
    UploadDone,
    UploadStarted,
)
from offsite.image import ImageReader, restore
from offsite.journal import Journal
from offsite.plugins import PluginInfo
from offsite.testing.images import Volume, flip_byte
from offsite.testing.site import BS, Site, files, seq

MakeDist = Callable[..., str]


def test_seed_example_end_to_end(site: Site, tmp_path: Path) -> None:
    for _ in range(4):
        site.image()
    t = site.target("vault")
    site.configure(f'''
        [[job.target]]
        name = "vault"
        url = "{t.as_uri()}"
    ''')
    site.cli("run")
    assert files(t) == ["vol-b001-i003.ofi", "vol-b001.ofi"]
    assert seq(t / "vol-b001-i003.ofi") == (1, 3)

    site.image()  # incremental 4
    out = site.cli("run", "--json").stdout.splitlines()
    done = [json.loads(line) for line in out if '"upload-done"' in line]
    assert [d["remote"] for d in done] == ["vol-b001-i004.ofi"]
    assert files(t) == ["vol-b001-i003.ofi", "vol-b001-i004.ofi", "vol-b001.ofi"]

    site.cli("restore", "nightly", "vault", "vol-b001-i004.ofi", str(tmp_path / "from-target"))
    restore(site.dest / "vol-b001-i004.ofi", tmp_path / "from-destination")
    assert (tmp_path / "from-target").read_bytes() == (tmp_path / "from-destination").read_bytes()
    assert (tmp_path / "from-target").read_bytes() == site.vol.states[4]

    again = site.cli("run", "--json").stdout
    assert '"upload-done"' not in again, "nothing to do the third time"
    status = json.loads(site.cli("status", "--json").stdout)["targets"]
    assert [(s["job"], s["target"], s["state"]) for s in status] == [("nightly", "vault", "ok")]


def test_three_targets_with_different_options(site: Site) -> None:
    for _ in range(3):
        site.image()
    (site.dest / "notes.txt").write_text("runbook")
    a, b, c = site.target("a"), site.target("b"), site.target("c")
    site.configure(f'''
        [[job.target]]
        name = "consolidating"
        url = "{a.as_uri()}"
        priority = 1
        [[job.target]]
        name = "mirror"
        url = "{b.as_uri()}"
        priority = 2
        mirror = true
        [[job.target]]
        name = "fulls"
        url = "{c.as_uri()}"
        priority = 2
        types = ["full", "other"]
        subfolder = "site-a/nightly"
    ''')
    site.cli("run")
    assert files(a) == ["notes.txt", "vol-b001-i002.ofi", "vol-b001.ofi"]
    assert seq(a / "vol-b001-i002.ofi") == (1, 2)
    assert files(b) == ["notes.txt", "vol-b001-i001.ofi", "vol-b001-i002.ofi", "vol-b001.ofi"]
    assert files(c) == ["site-a/nightly/notes.txt", "site-a/nightly/vol-b001.ofi"]


def test_mirror_deletes_at_the_target(site: Site) -> None:
    site.image()
    (site.dest / "old.txt").write_text("x")
    m, n = site.target("m"), site.target("n")
    site.configure(f'''
        [[job.target]]
        name = "m"
        url = "{m.as_uri()}"
        mirror = true
        [[job.target]]
        name = "n"
        url = "{n.as_uri()}"
    ''')
    site.cli("run")
    (m / "stray.bin").write_text("not from the destination")
    (m / ".hidden").write_text("another tool's")
    (site.dest / "old.txt").unlink()
    site.cli("run")
    assert files(m) == ["stray.bin", "vol-b001.ofi"], "mirror deletes only what it placed"
    assert (m / ".hidden").exists()
    assert files(n) == ["old.txt", "vol-b001.ofi"], "only mirror mode deletes"


def test_new_images_only(site: Site) -> None:
    site.image()
    site.image()
    t = site.target("t")
    site.one_target(t, "new_images_only = true\n")
    site.cli("run")  # records the baseline: what exists now is not new
    assert files(t) == []
    site.image()
    site.cli("run")
    assert files(t) == ["vol-b001-i002.ofi"]
    site.image()
    site.cli("run")
    assert files(t) == ["vol-b001-i002.ofi", "vol-b001-i003.ofi"]


def test_new_sets_only(site: Site) -> None:
    site.image()
    site.image()
    t = site.target("t")
    site.one_target(t, "new_sets_only = true\n")
    site.cli("run")
    assert files(t) == []
    site.image(full=True)
    site.image()
    site.cli("run")
    assert files(t) == ["vol-b002-i001.ofi", "vol-b002.ofi"]


def test_corrupt_image_is_refused_before_upload(site: Site) -> None:
    for _ in range(4):
        site.image()
    with ImageReader(site.vol.images[3]) as r:
        rewritten = {e.block for e in r.entries()}
    with ImageReader(site.vol.images[2]) as r:  # a block of i002 that i001..i003 sends
        entry = next(e for e in r.entries() if e.length and e.block not in rewritten)
    flip_byte(site.vol.images[2], entry.offset + 3)
    t = site.target("t")
    site.one_target(t)
    result = site.cli("run", code=3)
    assert "vol-b001-i002.ofi" in result.stderr and "SHA-256" in result.stderr
    assert files(t) == ["vol-b001.ofi"], "nothing built from the damaged block is placed"


def test_broken_chain_is_not_replicated_past(site: Site) -> None:
    for _ in range(4):
        site.image()
    site.vol.images[2].unlink()  # incremental 2 is gone: 3 applies to nothing
    t = site.target("t")
    site.one_target(t)
    result = site.cli("run", code=3)
    assert "vol-b001-i003.ofi" in result.stderr and "chain breaks" in result.stderr
    assert files(t) == ["vol-b001-i001.ofi", "vol-b001.ofi"]


def test_interrupted_upload_resumes(site: Site) -> None:
    site.image()
    t = site.target("t")
    site.one_target(t)
    events: list[Event] = []
    engine = site.engine(events)
    seen = 0

    def crash(event: Event) -> None:
        nonlocal seen
        if type(event).__name__ == "BytesProgressed":
            seen += 1
            if seen == 1:
                engine.cancel.set()  # like Ctrl-C after the first chunk

    engine.listeners.append(crash)
    with pytest.raises(Cancelled):
        engine.run()
    assert files(t) == []
    with Journal(site.conf_dir / "journal.sqlite") as j:
        assert [f.placed.remote_path for f in j.in_flight("nightly", "t")] == ["vol-b001.ofi"]

    events2: list[Event] = []
    site.engine(events2).run()
    started = [e for e in events2 if isinstance(e, UploadStarted)]
    assert [(e.remote, e.resumed) for e in started] == [("vol-b001.ofi", True)]
    assert (t / "vol-b001.ofi").read_bytes() == site.vol.images[0].read_bytes()


def test_a_target_that_cannot_resume_says_it_restarts(site: Site,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A plugin whose capabilities say resume=False (WebDAV) starts an
    # interrupted upload again at 0: the engine reports that, not "resuming".
    monkeypatch.setattr(PluginInfo, "resumable", property(lambda self: False))
    site.image()
    t = site.target("t")
    site.one_target(t)
    engine = site.engine([])
    engine.listeners.append(lambda e: engine.cancel.set()
                            if type(e).__name__ == "BytesProgressed" else None)
    with pytest.raises(Cancelled):
        engine.run()
    events: list[Event] = []
    site.engine(events).run()
    started = [e for e in events if isinstance(e, UploadStarted)]
    assert [(e.remote, e.resumed, e.restarted) for e in started] == [
        ("vol-b001.ofi", True, True)]
    assert describe(started[0]) == ("nightly.t: vol-b001.ofi: restarted from the beginning: "
                                    "the target cannot resume an upload")
    assert (t / "vol-b001.ofi").read_bytes() == site.vol.images[0].read_bytes()


def test_an_abandoned_upload_is_cleaned_up_at_the_target(site: Site) -> None:
    # A consolidation 1..2 breaks off; before the next run incremental 2 is
    # rewritten and 3 arrives. The in-flight upload can no longer resume and
    # the new plan names the consolidation 1..3 differently: without discard
    # its partial file would stay at the target for good.
    from offsite import paths

    for _ in range(3):
        site.image()
    t = site.target("t")
    site.one_target(t)
    engine = site.engine()

    def crash(event: Event) -> None:
        if isinstance(event, UploadStarted) and event.remote == "vol-b001-i002.ofi":
            engine.cancel.set()

    engine.listeners.append(crash)
    with pytest.raises(Cancelled):
        engine.run()
    partial = t / paths.partial_path("vol-b001-i002.ofi")
    assert partial.exists()

    later = os.stat(site.vol.images[2]).st_mtime + 10
    os.utime(site.vol.images[2], (later, later))
    site.image()
    site.cli("run")
    assert not partial.exists(), "the abandoned partial file was left at the target"
    assert files(t) == ["vol-b001-i003.ofi", "vol-b001.ofi"]
    with Journal(site.conf_dir / "journal.sqlite") as j:
        assert j.in_flight("nightly", "t") == []


FLAKY = '''
from offsite import hookimpl
from offsite.errors import AuthError, Transient
from offsite_local import LocalTransport

FAILURES = {"put": %d}

class Flaky(LocalTransport):
    @hookimpl
    def put(self, conn, path, transfer):
        if FAILURES["put"] > 0:
            FAILURES["put"] -= 1
            raise Transient("connection reset by peer")
        return super().put(conn, path, transfer)

class Locked(LocalTransport):
    @hookimpl
    def connect(self, endpoint, steps):
        with steps.step("auth", endpoint.username):
            raise AuthError("user locked out")

plugin = Flaky()
locked = Locked()
'''


SHORT = '''
import os
from offsite import hookimpl
from offsite_local import LocalTransport

class Short(LocalTransport):
    """Places the file, then loses its last byte: what a store does that
    assembles a multipart upload from a part list cut short on the way."""

    @hookimpl
    def put(self, conn, path, transfer):
        placed = super().put(conn, path, transfer)
        final = conn.local(path)
        os.truncate(final, max(0, placed.size - 1))
        st = final.stat()
        return type(placed)(path, st.st_size, st.st_mtime)

plugin = Short()
'''


def test_a_put_that_places_another_size_is_not_recorded(site: Site,
                                                        make_dist: MakeDist) -> None:
    make_dist("offsite-short", SHORT, schemes={"short": "plugin"})
    site.image()
    t = site.target("t")
    site.one_target(t, "retries = 0", scheme="short")
    result = site.cli("run", code=1)
    assert "vol-b001.ofi" in result.stderr and "bytes after the upload" in result.stderr
    with Journal(site.conf_dir / "journal.sqlite") as j:
        assert j.placed("nightly", "t") == [], "a wrong size is never recorded as placed"
        assert [f.placed.remote_path for f in j.in_flight("nightly", "t")] == ["vol-b001.ofi"]


@pytest.mark.parametrize(("failures", "retries", "ok"), [(2, 3, True), (2, 1, False)])
def test_transient_errors_are_retried(site: Site, make_dist: MakeDist, failures: int,
                                      retries: int, ok: bool) -> None:
    make_dist("offsite-flaky", FLAKY % failures, schemes={"flaky": "plugin"})
    site.image()
    t = site.target("t")
    site.configure(f'''
        [[job.target]]
        name = "t"
        url = "flaky://{t}"
        retries = {retries}
    ''')
    events: list[Event] = []
    (result,) = site.engine(events).run()
    retried = [e for e in events if isinstance(e, RetryScheduled)]
    assert result.ok is ok
    assert len(retried) == min(failures, retries)
    assert all(e.delay > 0 for e in retried), "backoff waits"
    assert files(t) == (["vol-b001.ofi"] if ok else [])


def test_auth_errors_fail_fast_and_other_targets_still_run(site: Site,
                                                           make_dist: MakeDist) -> None:
    make_dist("offsite-locked", FLAKY % 0, schemes={"locked": "locked"})
    site.image()
    good = site.target("good")
    site.configure(f'''
        [[job.target]]
        name = "bad"
        url = "locked://user@localhost{site.target('bad')}"
        retries = 5
        [[job.target]]
        name = "good"
        url = "{good.as_uri()}"
        priority = 2
    ''')
    events: list[Event] = []
    results = site.engine(events).run()
    assert [(r.target, r.ok) for r in results] == [("bad", False), ("good", True)]
    assert not [e for e in events if isinstance(e, RetryScheduled)], "no retry on auth"
    assert files(good) == ["vol-b001.ofi"]
    assert "auth failed" in (results[0].error or "")


def test_bwlimit_wraps_every_put(site: Site) -> None:
    from offsite.throttle import BandwidthLimit

    site.image()
    t = site.target("t")
    site.one_target(t, 'bwlimit = "64K"')
    engine = site.engine()
    job = engine.config.jobs[0]
    transport = engine.transport(job, job.targets[0])
    (limit,) = [p for p in transport.pm.get_plugins() if isinstance(p, BandwidthLimit)]
    waited: list[float] = []
    limit.bucket._sleep = waited.append  # record the pauses instead of sleeping
    with transport.connect(engine.endpoint(job, job.targets[0])) as session:
        from offsite.transport import FileSource

        session.put("x.ofi", FileSource(site.vol.images[0]))
    size = site.vol.images[0].stat().st_size
    # The bucket starts empty: every byte waits its turn at 64 KiB/s.
    assert sum(waited) == pytest.approx(size / (64 * 1024), rel=0.1)


def test_plan_changes_nothing(site: Site) -> None:
    site.image()
    site.image()
    t = site.target("t")
    site.one_target(t)
    doc = json.loads(site.cli("plan", "--json").stdout)["plans"]
    assert [a["remote"] for a in doc[0]["actions"]] == ["vol-b001.ofi", "vol-b001-i001.ofi"]
    assert files(t) == []
    text = site.cli("plan").stdout
    assert "put    vol-b001-i001.ofi" in text


# -- bad input -----------------------------------------------------------------------


def test_malformed_config_names_file_and_key(site: Site) -> None:
    site.config.write_text('[[job]]\nname = "n"\ndestination = "/x"\n[[job.target]]\n'
                           'name = "t"\nurl = "file:///t"\nretries = "three"\n')
    result = site.cli("run", code=2)
    assert str(site.config) in result.stderr and "job[0].target[0].retries" in result.stderr


def test_missing_destination(site: Site) -> None:
    site.one_target(site.target('t'))
    site.dest.rename(site.root / "moved")
    result = site.cli("run", code=2)
    assert "destination folder" in result.stderr and "does not exist" in result.stderr


def test_check_reports_a_missing_or_unreadable_destination_first(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.image()
    site.one_target(site.target('t'))
    ok = site.cli("check")
    assert ok.stdout.splitlines()[:2] == [f"nightly  {site.dest}",
                                          f"  ok     destination   {site.dest}"]
    # An unmounted disk: every target of the job would fail, so check fails.
    site.dest.rename(site.root / "moved")
    missing = site.cli("check", code=4)
    assert f"FAILED destination   {site.dest}" in missing.stdout
    assert "does not exist" in missing.stdout and "job[0].destination" in missing.stdout
    assert "ok     probe-delete" in missing.stdout, "the targets are still checked"
    (site.root / "moved").rename(site.dest)
    # A folder the service's user cannot read (root reads anything, so the
    # answer to "may I read it?" is what is changed here).
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == site.dest
                        else real_access(path, mode, **kw))
    unreadable = site.cli("check", code=4)
    assert "cannot read the destination folder" in unreadable.stdout
    monkeypatch.undo()
    assert sorted(os.listdir(site.dest)) == [".vol-b001.ofimap", "vol-b001.ofi"], "nothing lost"


def test_target_folder_that_is_a_file(site: Site) -> None:
    site.image()
    blocker = site.root / "blocker"
    blocker.write_text("a file")
    site.configure(f'''
        [[job.target]]
        name = "t"
        url = "{blocker.as_uri()}"
    ''')
    result = site.cli("run", code=1)
    assert "is a file where a folder is needed" in result.stderr
    check = site.cli("check", code=4)
    assert "FAILED folder" in check.stdout
    assert sorted(os.listdir(site.dest)) == [".vol-b001.ofimap", "vol-b001.ofi"]


def test_loose_key_file_is_refused(site: Site) -> None:
    site.one_target(site.target('t'))
    runner = CliRunner()
    ok = runner.invoke(cli, ["--config", str(site.config), "credentials", "set", "nightly.t",
                             "--stdin"], input='{"password": "s3cret-pw"}')
    assert ok.exit_code == 0, ok.stderr
    assert "s3cret-pw" not in ok.stdout + ok.stderr
    assert site.cli("credentials", "list").stdout.split() == ["nightly.t"]
    (site.conf_dir / "key").chmod(0o644)
    result = site.cli("run", code=2)
    assert "0644" in result.stderr and "chmod 600" in result.stderr


def test_wrong_passphrase(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.one_target(site.target('t'))
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "correct horse")
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(site.config), "credentials", "set", "nightly.t",
                               "--stdin"], input='{"password": "pw"}').exit_code == 0
    monkeypatch.setenv("OFFSITE_PASSPHRASE", "wrong horse")
    result = site.cli("run", code=2)
    assert "wrong passphrase" in result.stderr


def test_data_problem_events_name_the_file(site: Site) -> None:
    site.image()
    (site.dest / "vol-b001-i001.ofi").write_bytes(b"OFIMAGE\x00" + b"\x01" * 40)
    t = site.target("t")
    site.one_target(t)
    events: list[Event] = []
    site.engine(events).run()
    problems = [e for e in events if isinstance(e, DataProblem)]
    assert [p.file for p in problems] == ["vol-b001-i001.ofi"]
    assert [e.remote for e in events if isinstance(e, UploadDone)] == ["vol-b001.ofi"]


def test_interrupted_consolidation_resumes_to_a_sound_image(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.vol = Volume(tmp_path / "big.raw", 6 << 20, seed=3)
    site.vol.image(site.dest, block_size=64 * 1024, compression="none")
    for _ in range(3):
        site.vol.scribble(4, 600_000)
        site.vol.image(site.dest, compression="none")
    t = site.target("t")
    site.one_target(t)
    engine = site.engine()

    def crash(event: Event) -> None:
        if (type(event).__name__ == "BytesProgressed" and event.remote.endswith("i003.ofi")
                and event.done > 0):
            engine.cancel.set()  # mid-file, after the first MiB of the consolidation

    engine.listeners.append(crash)
    with pytest.raises(Cancelled):
        engine.run()
    assert (t / ".vol-b001-i003.ofi.offsite-partial").stat().st_size >= 1 << 20

    events: list[Event] = []
    site.engine(events).run()
    resumed = [e for e in events if isinstance(e, UploadStarted) and e.resumed]
    assert [e.remote for e in resumed] == ["vol-b001-i003.ofi"]
    from offsite.image import verify

    assert verify([t]).clean, "the resumed consolidation is byte-for-byte sound"
    restore(t / "vol-b001-i003.ofi", tmp_path / "out.raw")
    assert (tmp_path / "out.raw").read_bytes() == site.vol.states[3]


def test_unreadable_file_at_the_destination_is_reported_and_the_rest_goes(site: Site) -> None:
    site.image()
    loop = site.dest / "vol-b001-i001.ofi"
    loop.symlink_to(loop)
    t = site.target("t")
    site.one_target(t)
    result = site.cli("run", code=3)
    assert "vol-b001-i001.ofi" in result.stderr and "cannot read it" in result.stderr
    assert files(t) == ["vol-b001.ofi"]


def test_restore_of_an_image_the_target_lacks_is_a_usage_error(site: Site,
                                                               tmp_path: Path) -> None:
    site.image()
    site.one_target(site.target("t"))
    site.cli("run")
    result = site.cli("restore", "nightly", "t", "vol-b009.ofi", str(tmp_path / "o"), code=2)
    assert "vol-b009.ofi is not at nightly.t" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_plan_on_a_broken_target_is_one_line_exit_1(site: Site) -> None:
    blocker = site.root / "blocker"
    blocker.write_text("a file")
    site.one_target(blocker)
    site.image()
    result = site.cli("plan", code=1)
    assert "is a file where a folder is needed" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_missing_destination_fails_its_job_only(site: Site) -> None:
    site.image()
    a, b = site.target("a"), site.target("b")
    site.config.write_text(f'''
[[job]]
name = "gone"
destination = "{site.root / 'nowhere'}"
[[job.target]]
name = "a"
url = "{a.as_uri()}"
[[job]]
name = "fine"
destination = "{site.dest}"
[[job.target]]
name = "b"
url = "{b.as_uri()}"
''')
    result = site.cli("run", code=2)
    assert "gone.a" in result.stderr and "does not exist" in result.stderr
    assert files(b) == ["vol-b001.ofi"]


def test_quiet_still_reports_failures(site: Site) -> None:
    for _ in range(3):
        site.image()
    site.vol.images[1].unlink()
    site.one_target(site.target("t"))
    result = site.cli("--quiet", "run", code=3)
    assert "chain breaks" in result.stderr
    assert "placed" not in result.stderr, "no progress lines when quiet"


def test_status_shows_error_text_verbatim(site: Site) -> None:
    with Journal(site.conf_dir / "journal.sqlite") as j:
        j.set_status("nightly", "t", state="failed", last_error="[nightly.t] auth failed [/]")
    site.one_target(site.target("t"))
    out = site.cli("status").stdout
    assert "[nightly.t] auth failed [/]" in out


def test_damaged_full_image_is_refused_before_a_damaged_byte_leaves(site: Site) -> None:
    site.image()
    image = site.vol.images[0]
    with ImageReader(image) as r:
        entry = [e for e in r.entries() if e.length][5]
    flip_byte(image, entry.offset + 7)
    t = site.target("t")
    site.one_target(t)
    result = site.cli("run", code=3)
    assert "vol-b001.ofi" in result.stderr and "SHA-256" in result.stderr
    assert files(t) == [], "a damaged image is never placed"
    # Payloads are checked before they are handed to the plugin: the partial
    # file holds the good bytes before the damaged payload, never that one.
    partials = [p for p in t.rglob("*") if p.is_file()]
    for partial in partials:
        assert partial.stat().st_size <= entry.offset
        assert partial.read_bytes() == image.read_bytes()[: partial.stat().st_size]


def test_a_consolidation_reads_only_the_blocks_it_sends(site: Site) -> None:
    # i001 and i002 both rewrite block 0; the consolidation i001..i002 copies
    # i002's version only. Damage in i001's block 0 is in nothing the target
    # gets: the consolidation is placed and restores point 2 exactly, without
    # reading that block (reading it would triple the reads of a daily run
    # whose incrementals rewrite the same blocks). The destination's own
    # damage is what `offsite image verify` finds.
    site.image()
    site.vol.scribble(3, 2 * BS)
    site.vol.write(0, os.urandom(BS))
    site.vol.image(site.dest, block_size=BS)
    site.vol.write(0, os.urandom(BS))
    site.vol.image(site.dest, block_size=BS)
    point2 = site.vol.states[-1]
    with ImageReader(site.vol.images[1]) as r:
        entry = next(e for e in r.entries() if e.block == 0)
    flip_byte(site.vol.images[1], entry.offset + 1)
    t = site.target("t")
    site.one_target(t)
    site.cli("run")
    assert files(t) == ["vol-b001-i002.ofi", "vol-b001.ofi"]
    out = site.root / "restored.raw"
    site.cli("restore", "nightly", "t", "vol-b001-i002.ofi", str(out))
    assert out.read_bytes() == point2
    result = site.cli("image", "verify", str(site.dest), code=3)
    assert "vol-b001-i001.ofi" in result.stderr + result.stdout


def test_journal_identifies_each_placed_file(site: Site) -> None:
    # Images by their root digest (what `offsite image info` shows, and what
    # `offsite image verify` proves a copy matches), other files by SHA-256.
    import hashlib

    for _ in range(3):
        site.image()
    (site.dest / "notes.txt").write_text("runbook")
    t = site.target("t")
    site.one_target(t, 'types = ["full", "incremental", "other"]')
    site.cli("run")
    with Journal(site.conf_dir / "journal.sqlite") as j:
        placed = {p.remote_path: p.sha256 for p in j.placed("nightly", "t")}
    assert set(placed) == {"notes.txt", "vol-b001.ofi", "vol-b001-i002.ofi"}
    assert placed["notes.txt"] == hashlib.sha256(b"runbook").hexdigest()
    for name in ("vol-b001.ofi", "vol-b001-i002.ofi"):  # a full, a consolidation
        info = json.loads(site.cli("image", "info", "--json", str(t / name)).stdout)
        assert placed[name] == info["digest"]
        with ImageReader(t / name) as r:
            assert info["digest"] == f"ofi:{r.digest.hex()}"


def test_json_reader_that_goes_away_does_not_stop_the_run(site: Site) -> None:
    # `offsite run --json | head -0`: the reader closed the pipe before the
    # first event (closed first, so the test does not race the run).
    for _ in range(3):
        site.image()
    t = site.target("t")
    site.one_target(t)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-c", "from offsite.cli import main; main()",
                               "--config", str(site.config), "run", "--json"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("closed it: no more events") == 1, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert files(t) == ["vol-b001-i002.ofi", "vol-b001.ofi"]

"""One process works a job at a time: the lock, its messages, and what
``offsite status`` makes of a run that died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offsite import lock
from offsite.errors import Locked
from offsite.journal import Journal, Placed
from offsite.lock import JobLock
from offsite.testing.site import Site, files, hold_lock


@pytest.fixture
def holder(site: Site) -> Iterator[subprocess.Popen[str]]:
    proc = hold_lock(site.conf_dir, "nightly")
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_process_is_refused_with_the_holders_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "GRACE", 0.3)
    proc = hold_lock(tmp_path, "nightly")
    try:
        with pytest.raises(Locked) as caught:
            JobLock(tmp_path, "nightly").acquire()
        assert f"process {proc.pid} on " in str(caught.value)
        assert "(offsite test, since " in str(caught.value)
        JobLock(tmp_path, "other").acquire()  # locks are per job
        state = lock.state(tmp_path, "nightly")
        assert state.held and state.holder is not None and state.holder.pid == proc.pid
    finally:
        proc.kill()
        proc.wait()
    # kill -9 (SIGKILL): the kernel released the lock; nothing stale is left.
    state = lock.state(tmp_path, "nightly")
    assert state.died and state.holder is not None and state.holder.pid == proc.pid
    with JobLock(tmp_path, "nightly"):
        assert lock.state(tmp_path, "nightly").held
    assert lock.state(tmp_path, "nightly") == lock.LockState(False), "a clean release says so"
    assert os.stat(lock.lock_path(tmp_path, "nightly")).st_mode & 0o777 == 0o600


def test_waiting_takes_the_lock_when_it_is_released(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "GRACE", 0.2)
    proc = hold_lock(tmp_path, "nightly")
    with pytest.raises(Locked):
        JobLock(tmp_path, "nightly").acquire()
    started = time.monotonic()
    killer = subprocess.Popen(["sh", "-c", f"sleep 1; kill -TERM {proc.pid}"])
    mine = JobLock(tmp_path, "nightly")
    mine.acquire(wait=True)
    assert time.monotonic() - started >= 0.9
    assert lock.state(tmp_path, "nightly").holder.pid == os.getpid()  # type: ignore[union-attr]
    mine.release()
    killer.wait()
    proc.wait()


def test_a_status_probe_never_makes_a_run_fail(tmp_path: Path) -> None:
    # status takes the lock shared for an instant; a run starting then retries.
    prober = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom offsite import lock\n"
        "end = time.monotonic() + 1\n"
        "while time.monotonic() < end: lock.state(sys.argv[1], 'nightly')\n"), str(tmp_path)])
    try:
        end = time.monotonic() + 1
        while time.monotonic() < end:
            with JobLock(tmp_path, "nightly"):
                pass
    finally:
        prober.wait()


def test_run_leaves_a_job_another_process_works(site: Site, holder: subprocess.Popen[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "GRACE", 0.3)
    site.image()
    other = site.root / "other-destination"
    other.mkdir()
    (other / "x.txt").write_text("x")
    t, u = site.target("t"), site.target("u")
    site.config.write_text(f'''
[[job]]
name = "nightly"
destination = "{site.dest}"
[[job.target]]
name = "t"
url = "{t.as_uri()}"
[[job]]
name = "weekly"
destination = "{other}"
[[job.target]]
name = "u"
url = "{u.as_uri()}"
''')
    result = site.cli("run", code=75)
    assert f"job 'nightly' is being worked by process {holder.pid}" in result.stderr
    assert "--wait" in result.stderr
    assert not t.exists() or files(t) == [], "the locked job was not touched"
    assert files(u) == ["x.txt"], "the other job ran"
    assert "--wait" in site.cli("run", "--help").stdout and "75" in site.cli(
        "run", "--help").stdout


def test_run_wait_starts_when_the_other_process_ends(site: Site,
                                                     holder: subprocess.Popen[str]) -> None:
    site.image()
    t = site.target("t")
    site.one_target(t)
    subprocess.Popen(["sh", "-c", f"sleep 1; kill -KILL {holder.pid}"])
    site.cli("run", "--wait")
    assert files(t) == ["vol-b001.ofi"]


# -- status -----------------------------------------------------------------------------


def _placed(name: str, size: int) -> Placed:
    return Placed(name, size, None, "full", "set", 0, 0, "s", None, (name,), size, 1.0, 1.0)


def test_status_tells_a_dead_run_from_a_running_one(site: Site) -> None:
    site.one_target(site.target("t"))
    with Journal(site.conf_dir / "journal.sqlite") as j:
        j.set_status("nightly", "t", state="running", current="vol-b001.ofi",
                     bytes_done=100, bytes_total=1000, rate=50.0)
        j.begin_upload("nightly", "t", _placed("vol-b001.ofi", 1000))
        j.save_token("nightly", "t", "vol-b001.ofi", {"offset": 100}, 100)

    proc = hold_lock(site.conf_dir, "nightly")
    try:
        (doc,) = json.loads(site.cli("status", "--json").stdout)["targets"]
        assert (doc["state"], doc["pid"]) == ("running", proc.pid)
        assert f"running (pid {proc.pid})" in site.cli("status").stdout
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    (doc,) = json.loads(site.cli("status", "--json").stdout)["targets"]
    assert doc["state"] == "interrupted" and doc["pid"] is None and doc["rate"] == 0
    assert f"the run (process {proc.pid} on " in doc["last_error"]
    assert "ended without finishing; the next run resumes" in doc["last_error"]
    assert doc["in_flight"] == [{"remote": "vol-b001.ofi", "bytes_done": 100, "size": 1000}]
    text = site.cli("status").stdout
    assert "interrupted" in text and "vol-b001.ofi" in text and " s " not in text, "no ETA"


def test_status_after_ctrl_c_shows_what_resumes(site: Site) -> None:
    site.one_target(site.target("t"))
    with Journal(site.conf_dir / "journal.sqlite") as j:
        j.set_status("nightly", "t", state="idle", last_error="interrupted: the next run resumes")
        j.begin_upload("nightly", "t", _placed("vol-b001.ofi", 1000))
        j.set_status("nightly", "u", state="ok")
    docs = json.loads(site.cli("status", "--json").stdout)["targets"]
    assert [(d["target"], d["state"]) for d in docs] == [("t", "interrupted"), ("u", "ok")]
    assert docs[0]["in_flight"][0]["remote"] == "vol-b001.ofi"

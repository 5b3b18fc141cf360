"""``offsite replicator``, the service, as a real process: it picks up images as
they complete, coalesces, waits for a job another process holds, stops
cleanly on SIGTERM leaving its upload resumable, reloads on SIGHUP, follows
a destination that goes away and comes back, and writes its metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offsite.testing.faults import JOB, TARGET, FaultSite, TargetSpec
from offsite.testing.faults import Replicator as Service
from offsite.testing.site import hold_lock


@pytest.fixture
def site(tmp_path: Path) -> FaultSite:
    target = tmp_path / "target"
    return FaultSite(tmp_path, TargetSpec(target.as_uri()), size=2 << 20, bwlimit="0")


@pytest.fixture
def service(site: FaultSite) -> Iterator[Callable[..., Service]]:
    running: list[Service] = []

    def start(*args: str, on: FaultSite | None = None) -> Service:
        s = Service(on or site, *args)
        running.append(s)
        return s

    yield start
    for s in running:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def _target(site: FaultSite) -> Path:
    return site.root / "target"


def test_it_replicates_at_start_and_each_new_image_as_it_completes(
        site: FaultSite, service: Callable[..., Service]) -> None:
    full = site.image()
    svc = service()
    svc.wait_for(lambda: full.name in svc.placed(), "the full image, at start")
    before = site.snapshot()
    first = site.image()
    svc.wait_for(lambda: first.name in svc.placed(), "incremental 1, once written")
    second = site.image()
    svc.wait_for(lambda: second.name in svc.placed(), "incremental 2, once written")
    assert svc.stop() == 0, "".join(svc.stderr)
    # The images it replicated are as they were (the hidden hash map is the
    # imaging tool's, which this test runs too).
    assert {k: v for k, v in site.snapshot().items() if k in before and k[0] != "."} == \
        {k: v for k, v in before.items() if k[0] != "."}
    site.assert_sound()
    assert site.restore(second.name) == site.vol.states[-1]


def test_an_image_still_being_written_goes_only_once_complete(
        site: FaultSite, service: Callable[..., Service]) -> None:
    full = site.image()
    made = site.image()
    data = made.read_bytes()
    made.unlink()  # to be written again below, slowly, while the service watches
    svc = service()
    svc.wait_for(lambda: full.name in svc.placed(), "the full image")
    # Written the way a slow backup writes it, under its final name: the
    # first half now, the rest (with the footer) later.
    with open(made, "wb") as f:
        f.write(data[: len(data) // 2])
    passes = len([e for e in svc.events if e["event"] == "run-started"])
    svc.wait_for(lambda: len([e for e in svc.events if e["event"] == "run-started"]) > passes,
                 "a pass after the change")
    time.sleep(2.5)  # and a recheck round over it
    assert made.name not in svc.placed()
    assert not (_target(site) / made.name).exists()
    with open(made, "ab") as f:
        f.write(data[len(data) // 2:])
    svc.wait_for(lambda: made.name in svc.placed(), "the image, once its footer is there")
    assert svc.stop() == 0
    assert (_target(site) / made.name).read_bytes() == data
    noted = [e["message"] for e in svc.events if e["event"] == "data-problem"]
    assert noted and all(m.startswith("waiting: ") for m in noted), noted


def test_sigterm_mid_upload_stops_within_seconds_and_the_next_start_resumes(
        tmp_path: Path, site: FaultSite, service: Callable[..., Service]) -> None:
    (tmp_path / "slow").mkdir()
    site = FaultSite(tmp_path / "slow", TargetSpec((tmp_path / "target").as_uri()),
                     size=8 << 20, bwlimit="1M")
    full = site.image()
    svc = service(on=site)

    def uploading() -> bool:
        return any(e["event"] == "bytes-progressed" and e["done"] > (1 << 20)
                   for e in svc.events)

    svc.wait_for(uploading, "the upload under way")
    asked = time.monotonic()
    assert svc.stop() == 0, "".join(svc.stderr)
    took = time.monotonic() - asked
    assert took < 20, f"SIGTERM took {took:.1f} s"
    assert not (tmp_path / "target" / full.name).exists(), "no half file under a final name"
    status = site.status()
    assert status["in_flight"], status  # what the next start resumes
    done_before = status["in_flight"][0]["bytes_done"]
    assert done_before > 0
    # Full speed now: the same process would resume at the saved token.
    site.config.write_text(site.config.read_text().replace('bwlimit = "1M"', 'bwlimit = "0"'))
    again = service(on=site)
    again.wait_for(lambda: full.name in again.placed(), "the resumed upload")
    started = [e for e in again.events if e["event"] == "upload-started"]
    assert started[0]["resumed"] is True, started
    first_progress = next(e for e in again.events if e["event"] == "bytes-progressed")
    assert first_progress["done"] >= done_before, "it went on from the token, not from 0"
    assert again.stop() == 0
    site.assert_sound()


def test_a_job_that_a_run_holds_is_taken_up_when_it_is_released(
        site: FaultSite, service: Callable[..., Service]) -> None:
    full = site.image()
    holder = hold_lock(site.conf, JOB)
    try:
        svc = service()
        time.sleep(2)
        assert svc.placed() == [] and svc.proc.poll() is None
        assert site.status().get("state") != "running"
    finally:
        holder.kill()
        holder.wait()
    svc.wait_for(lambda: full.name in svc.placed(), "the job, once the lock is free")
    assert svc.stop() == 0


def test_sighup_reads_the_configuration_again_and_keeps_it_when_broken(
        site: FaultSite, service: Callable[..., Service]) -> None:
    full = site.image()
    svc = service()
    svc.wait_for(lambda: full.name in svc.placed(), "the full image")
    good = site.config.read_text()
    site.config.write_text(good + "\nthis is = not toml [\n")
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_for(lambda: any("not reloaded" in line for line in svc.stderr),
                 "the broken configuration reported")
    second = site.root / "second"
    site.config.write_text(good + f'[[job.target]]\nname = "second"\nurl = "{second.as_uri()}"\n')
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_for(lambda: (second / full.name).is_file(), "the new target, after reload")
    inc = site.image()
    svc.wait_for(lambda: (second / inc.name).is_file() and (_target(site) / inc.name).is_file(),
                 "a new image at both targets")
    assert svc.stop() == 0


def test_a_destination_that_goes_away_and_comes_back(
        site: FaultSite, service: Callable[..., Service]) -> None:
    full = site.image()
    svc = service()
    svc.wait_for(lambda: full.name in svc.placed(), "the full image")
    away = site.root / "unmounted"
    os.rename(site.dest, away)
    svc.wait_for(lambda: any(e["event"] == "target-failed" for e in svc.events),
                 "the missing destination reported")
    assert any("does not exist" in e["error"] for e in svc.events
               if e["event"] == "target-failed")
    os.rename(away, site.dest)
    inc = site.image()
    svc.wait_for(lambda: inc.name in svc.placed(), "a new image once the folder is back")
    assert svc.stop() == 0
    assert sorted(p.name for p in _target(site).iterdir() if not p.name.startswith(".")) == \
        sorted([full.name, inc.name])


def test_polling_finds_new_images_too(site: FaultSite,
                                      service: Callable[..., Service]) -> None:
    full = site.image()
    svc = service("--poll", "0.2")
    svc.wait_for(lambda: full.name in svc.placed(), "the full image")
    inc = site.image()
    svc.wait_for(lambda: inc.name in svc.placed(), "incremental 1, found by polling")
    assert svc.stop(signal.SIGINT) == 130


def test_the_metrics_file_is_prometheus_text_written_whole(
        site: FaultSite, service: Callable[..., Service]) -> None:
    full = site.image()
    prom = site.root / "offsite.prom"
    svc = service("--metrics", str(prom))
    svc.wait_for(lambda: full.name in svc.placed(), "the full image")
    svc.wait_for(lambda: prom.is_file() and "offsite_target_last_run_timestamp_seconds{"
                 in prom.read_text(), "metrics after a pass")
    assert svc.stop() == 0
    samples: dict[str, float] = {}
    for line in prom.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    labels = f'{{job="{JOB}",target="{TARGET}"}}'
    assert samples["offsite_replicator_up"] == 1
    assert samples[f"offsite_target_failed{labels}"] == 0
    assert samples[f"offsite_target_running{labels}"] == 0
    assert abs(samples[f"offsite_target_last_run_timestamp_seconds{labels}"] - time.time()) < 600
    assert [p.name for p in prom.parent.iterdir() if p.name.startswith(".offsite.prom")] == []


def test_an_unknown_job_is_a_usage_error(site: FaultSite) -> None:
    done = site.offsite("replicator", "nosuchjob", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "nosuchjob" in done.stderr


def test_systemd_is_told_ready_and_stopping(site: FaultSite, tmp_path: Path,
                                            service: Callable[..., Service]) -> None:
    import socket

    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(Service.PATIENCE)
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = str(sock_path)
        try:
            svc = service()
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old
        assert sock.recv(4096).decode().startswith("READY=1")
        svc.proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert svc.stop() == 0



def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    import shutil

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = Path(__file__).parents[1] / "contrib" / "offsite-replicator.service"
    text = unit.read_text()
    assert "Type=notify" in text and "ExecReload=/bin/kill -HUP $MAINPID" in text
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          check=False)
    # Only the absent program may be complained of (offsite is not in /usr/local here).
    complaints = [line for line in done.stderr.splitlines()
                  if line.strip() and "/usr/local/bin/offsite" not in line]
    assert complaints == [], done.stderr


def test_status_in_another_process_shows_the_replicators_upload(
        tmp_path: Path, site: FaultSite, service: Callable[..., Service]) -> None:
    (tmp_path / "slow").mkdir()
    slow = FaultSite(tmp_path / "slow", TargetSpec((tmp_path / "slow-target").as_uri()),
                     size=8 << 20, bwlimit="1M")
    full = slow.image()
    svc = service(on=slow)
    svc.wait_for(lambda: any(e["done"] > 0 for e in svc.of("bytes-progressed")), "uploading")
    svc.wait_for(lambda: slow.status().get("bytes_done", 0) > 0, "live status")
    live = slow.status()
    assert live["state"] == "running" and live["pid"] == svc.proc.pid, live
    assert live["current"] == full.name and live["bytes_total"] == full.stat().st_size
    assert live["rate"] > 0 and live["eta"] is not None and live["eta"] > 0, live
    assert live["queued"] == 0 and live["retries"] == 0
    table = slow.offsite("status")
    assert f"running (pid {svc.proc.pid})" in table.stdout, table.stdout
    assert svc.stop() == 0


def test_a_damaged_image_is_reported_and_never_sent(
        site: FaultSite, service: Callable[..., Service]) -> None:
    from offsite.testing.images import flip_byte

    full = site.image()
    svc = service()
    svc.wait_for(lambda: full.name in svc.placed(), "the full image")
    # Made beside the destination, damaged in its payload, then published.
    scratch = site.root / "scratch"
    scratch.mkdir()
    inc = site.image()
    os.replace(inc, scratch / inc.name)
    flip_byte(scratch / inc.name, (scratch / inc.name).stat().st_size // 2)
    os.replace(scratch / inc.name, inc)
    svc.wait_for(lambda: any(e["file"] == inc.name or inc.name in e["message"]
                             for e in svc.of("data-problem")), "the damage reported")
    time.sleep(1)
    assert inc.name not in svc.placed()
    assert not (_target(site) / inc.name).exists()
    assert svc.proc.poll() is None, "the service goes on"
    assert svc.stop() == 0

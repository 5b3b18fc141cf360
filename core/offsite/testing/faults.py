"""Fault injection against a real target, for every plugin's tests.

offsite runs here as real processes: killed with SIGKILL at random moments,
or two at once on one job. After every blow the target is checked the way an
operator would: every file under a final name is whole (images verify byte
for byte, other files equal their source), nothing under the destination
changed, ``offsite status`` does not call a dead run running. In the end one
more run must leave the target holding exactly what it should, and a point
restored from it must equal the volume at that point.

A plugin's test gives a :class:`TargetSpec` for its real server::

    def test_kill_nine_anywhere(tmp_path, sshd, sftp_folder):
        spec = TargetSpec(sshd.url(sftp_folder), {"known_hosts": ...},
                          {"password": sshd.password})
        faults.kill_nine_anywhere(FaultSite(tmp_path, spec))
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from offsite import lock, paths
from offsite.config import Config
from offsite.credentials import CredentialStore
from offsite.engine import target_endpoint, target_transport
from offsite.image.verify import verify_image
from offsite.session import Session
from offsite.testing.images import Volume
from offsite.testing.proxy import TcpProxy
from offsite.transport import RemoteFile

#: The command line of offsite in a process of its own.
OFFSITE = [sys.executable, "-c", "from offsite.cli import main; main()"]
JOB, TARGET = "nightly", "t"


@attrs.frozen
class TargetSpec:
    """One target on a real server: its URL, options and credentials, and
    more ``[[job.target]]`` lines (``mirror = true``)."""

    url: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    credentials: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    extra: str = ""


class FaultSite:
    """A destination with a changing volume's images and a job with one target.

    :param bwlimit: slows the uploads down, so that a random moment falls
        inside one more often than between them.
    """

    def __init__(self, root: Path, spec: TargetSpec, *, size: int = 4 << 20,
                 block_size: int = 64 << 10, bwlimit: str = "2M", seed: int = 11) -> None:
        self.root, self.spec = root, spec
        self.dest = root / "destination"
        self.dest.mkdir()
        self.conf = root / "conf"
        self.conf.mkdir()
        self.config = self.conf / "offsite.toml"
        self.block_size = block_size
        self.vol = Volume(root / "volume.raw", size, seed=seed)
        options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in spec.options.items())
        self.config.write_text(
            f'[[job]]\nname = "{JOB}"\ndestination = "{self.dest}"\n'
            f'[[job.target]]\nname = "{TARGET}"\nurl = "{spec.url}"\n'
            f'bwlimit = "{bwlimit}"\n{spec.extra}\n'
            + (f"[job.target.options]\n{options}" if options else ""))
        if spec.credentials:
            done = self.offsite("credentials", "set", f"{JOB}.{TARGET}", "--stdin",
                                input=json.dumps(dict(spec.credentials)))
            assert done.returncode == 0, done.stderr

    # -- the volume ----------------------------------------------------------

    def image(self) -> Path:
        """The volume's next image: a full first, then incrementals of a
        few scattered changes."""
        if self.vol.images:
            self.vol.scribble(10, 3 * self.block_size)
            return self.vol.image(self.dest)
        return self.vol.image(self.dest, block_size=self.block_size, compression="none")

    # -- offsite as processes ---------------------------------------------------

    def offsite(self, *args: str, input: str | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*OFFSITE, "--config", str(self.config), *args], input=input,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        # PYTHONFAULTHANDLER: a process that hangs is sent SIGABRT and says
        # where each of its threads was (see OffsiteProcess.wait).
        return subprocess.Popen([*OFFSITE, "--config", str(self.config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"})

    # -- the target as it really is ------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        config = Config.load(self.config)
        job = config.job(JOB)
        target = job.target(TARGET)
        store = CredentialStore(self.conf)
        transport = target_transport(job, target, store)
        with transport.connect(target_endpoint(job, target, store)) as session:
            yield session

    def visible(self) -> list[RemoteFile]:
        """Every file at the target under a final name."""
        with self.session() as session:
            return session.list()

    def assert_sound(self) -> None:
        """Every file under a final name at the target is whole."""
        with self.session() as session, tempfile.TemporaryDirectory() as tmp:
            for remote in session.list():
                copy = Path(tmp) / paths.normalise(remote.path).replace("/", "_")
                with session.get(remote.path) as stream, open(copy, "wb") as out:
                    while chunk := stream.read(1 << 20):
                        out.write(chunk)
                if remote.path.endswith(".ofi"):
                    verify_image(copy)  # raises ImageError on half a file
                elif (self.dest / remote.path).is_file():  # else a foreign file
                    source = self.dest / remote.path
                    assert copy.read_bytes() == source.read_bytes(), remote.path
                copy.unlink()

    def restore(self, image: str) -> bytes:
        out = self.root / "restored.raw"
        out.unlink(missing_ok=True)
        done = self.offsite("restore", JOB, TARGET, image, str(out))
        assert done.returncode == 0, done.stderr
        return out.read_bytes()

    def snapshot(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.dest.iterdir()) if p.is_file()}

    def status(self) -> dict[str, Any]:
        done = self.offsite("status", "--json")
        assert done.returncode == 0, done.stderr
        docs = json.loads(done.stdout)["targets"]
        return next((d for d in docs if d["target"] == TARGET), {})


def _wait_for_lock(site: FaultSite, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not lock.state(site.conf, JOB).held:
        assert proc.poll() is None, f"the run ended before taking its lock: {proc.stderr}"
        assert time.monotonic() < end, "the run never took its lock"
        time.sleep(0.02)


def two_runs_at_once(site: FaultSite) -> None:
    """A second ``offsite run`` on a job that one is working leaves it (exit
    75, naming the first); the first finishes, and the target is whole.

    The site's ``bwlimit`` must make a run last longer than the second one
    retries the lock (:data:`offsite.lock.GRACE`) after starting: "1M".
    """
    for _ in range(4):
        site.image()
    first = site.start("run")
    _wait_for_lock(site, first)
    second = site.offsite("run")
    assert first.poll() is None, "the first run ended too soon: lower the site's bwlimit"
    assert second.returncode == 75, (second.returncode, second.stderr)
    assert f"is being worked by process {first.pid} on " in second.stderr
    _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    site.assert_sound()
    names = sorted(f.path for f in site.visible())
    assert names == ["vol-b001-i003.ofi", "vol-b001.ofi"], names
    assert site.restore("vol-b001-i003.ofi") == site.vol.states[3]


def kill_nine_anywhere(site: FaultSite, *, rounds: int = 6, seed: int | None = None,
                       longest: float = 3.5) -> None:
    """``offsite run`` killed with SIGKILL at random moments, ``rounds``
    times, a new incremental arriving before each but the first (so every
    round has work: resuming what the last one left, consolidating what
    piled up), then a run to the end: the target must then hold exactly the
    chain it should, whole.

    :param longest: the latest moment to kill at, in seconds after the start;
        with the site's ``bwlimit`` a round's run should take about as long.
    """
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    where = f"(seed {seed}: pass seed={seed} to repeat)"
    for _ in range(3):
        site.image()
    killed = 0
    for n in range(rounds):
        if n:
            site.image()
        before = site.snapshot()
        proc = site.start("run")
        time.sleep(rng.uniform(0.05, longest))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=300)
        assert site.snapshot() == before, f"the destination changed {where}"
        try:
            site.assert_sound()
        except Exception as exc:
            raise AssertionError(f"half a file under a final name {where}: {exc}") from exc
        state = site.status().get("state")
        assert state != "running", f"a killed run shows as running {where}"
    assert killed, f"no run was killed: make the uploads slower {where}"
    final = site.offsite("run")
    assert final.returncode == 0, f"{final.stderr} {where}"
    site.assert_sound()
    points = len(site.vol.images) - 1
    names = {f.path for f in site.visible()}
    newest = f"vol-b001-i{points:03d}.ofi"
    assert "vol-b001.ofi" in names and newest in names, f"{sorted(names)} {where}"
    assert site.restore(newest) == site.vol.states[points], f"restored bytes differ {where}"
    again = site.offsite("plan", "--json")
    plans = json.loads(again.stdout)["plans"]
    assert plans[0]["actions"] == [], f"not settled: {plans} {where}"


class OffsiteProcess:
    """A running ``offsite COMMAND --json …`` on a site, and what it printed.

    :ivar events: the JSON events so far, in order.
    :ivar stderr: its log lines so far.
    """

    #: How long :meth:`wait_for` waits: generous, nothing is a timing test.
    PATIENCE = 120.0

    def __init__(self, site: FaultSite, command: str, *args: str) -> None:
        self.proc = site.start(command, "--json", *args)
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for r in self._readers:
            r.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind (``upload-done``, ``bytes-progressed`` …)."""
        return [e for e in list(self.events) if e["event"] == kind]

    def placed(self) -> list[str]:
        return [e["remote"] for e in self.of("upload-done")]

    def wait_for(self, what: Callable[[], bool], why: str) -> None:
        end = time.monotonic() + self.PATIENCE
        while not what():
            assert self.proc.poll() is None, (why, self.proc.returncode, "".join(self.stderr))
            assert time.monotonic() < end, (
                why, [e for e in self.events if e["event"] != "bytes-progressed"],
                "".join(self.stderr))
            time.sleep(0.02)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` (unless it ended), wait, return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout=self.PATIENCE)
        for r in self._readers:
            r.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def wait(self) -> int:
        """Wait for it to end by itself; its exit code.

        :raises AssertionError: it hangs; with its threads' stacks.
        """
        try:
            code = self.proc.wait(timeout=self.PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread
            self.proc.wait()
            for r in self._readers:
                r.join(5)
            raise AssertionError("offsite hangs:\n" + "".join(self.stderr)) from None
        for r in self._readers:
            r.join(5)
        return code


class Replicator(OffsiteProcess):
    """A running ``offsite replicator --json …`` on a site."""

    def __init__(self, site: FaultSite, *args: str) -> None:
        super().__init__(site, "replicator", *args)


def replicator_killed_mid_upload(site: FaultSite, *, resumes: bool = True,
                                 at: float = 0.4) -> None:
    """``offsite replicator`` killed with SIGKILL in the middle of an upload,
    then started again: the upload goes on from its resume token (only a
    small part of the file is sent twice, counted from the engine's
    progress events), or, for a target that cannot resume (``resumes=False``),
    starts again from byte 0 and says so. No half file ever shows under a
    final name, the destination is untouched, ``offsite status`` calls the
    killed service interrupted, and the point restored from the target
    equals the volume.

    The site should make the upload last about 12 s (its ``bwlimit`` and
    size: 24 MiB at "2M"): the kill comes when ``at`` of the file has gone.
    """
    image = site.image()
    size = image.stat().st_size
    before = site.snapshot()
    first = Replicator(site)
    try:
        first.wait_for(lambda: any(e["done"] >= size * at for e in first.of("bytes-progressed")),
                       f"{at:.0%} of the upload sent")
        os.kill(first.proc.pid, signal.SIGKILL)
    finally:
        first.kill()
    sent = max(e["done"] for e in first.of("bytes-progressed"))
    assert image.name not in {f.path for f in site.visible()}, "a half file under its final name"
    assert site.snapshot() == before, "the destination changed"
    status = site.status()
    assert status.get("state") == "interrupted", status
    again = Replicator(site)
    try:
        again.wait_for(lambda: image.name in again.placed(), "the upload, after the restart")
        assert again.stop() == 0, "".join(again.stderr)
    finally:
        again.kill()
    started = next(e for e in again.of("upload-started") if e["remote"] == image.name)
    progress = [e["done"] for e in again.of("bytes-progressed") if e["remote"] == image.name]
    resumed_from = progress[0]
    if resumes:
        assert started["resumed"], started
        # (Progress may trail what the target confirmed: S3's parts go
        # in parallel. Then nothing at all is sent twice.)
        again_sent = max(0, sent - resumed_from)
        assert resumed_from > 0, progress[:3]
        # A checkpoint every second (or 64 MiB): a small part of a
        # 12 s upload, plus the plugin's chunk.
        assert again_sent <= size // 3, f"{again_sent} of {size} bytes sent twice"
    else:
        assert resumed_from == 0, progress[:3]
        assert started["restarted"], f"a restarted upload must say so: {started}"
    site.assert_sound()
    assert site.restore(image.name) == site.vol.states[-1]


def _sent(proc: OffsiteProcess, name: str) -> int:
    return max((e["done"] for e in proc.of("bytes-progressed")
                if e["remote"] == name and e["target"] == TARGET), default=0)


def server_outage(site: FaultSite, proxy: TcpProxy, *, down: float = 2.0,
                  at: float = 0.3) -> None:
    """The server goes away in the middle of an upload (every connection
    reset, new ones refused, as a crash or a cut cable gives) and is back
    ``down`` seconds later: ``offsite run`` retries with backoff and
    completes, exit 0, the file byte-identical and no half file ever under a
    final name. The site's target URL must go through ``proxy``."""
    image = site.image()
    size = image.stat().st_size
    before = site.snapshot()
    run = OffsiteProcess(site, "run")
    try:
        run.wait_for(lambda: _sent(run, image.name) >= size * at, f"{at:.0%} sent")
        proxy.cut()
        time.sleep(down)
        proxy.restore()
        code = run.wait()
    finally:
        run.kill()
    assert code == 0, (code, "".join(run.stderr))
    retries = run.of("retry-scheduled")
    assert retries, "the outage was not noticed: no retry"
    assert all(e["error"] for e in retries)
    assert site.snapshot() == before, "the destination changed"
    site.assert_sound()
    assert site.restore(image.name) == site.vol.states[-1]


def server_stays_down(site: FaultSite, proxy: TcpProxy, *, at: float = 0.3) -> None:
    """The server goes away in the middle of an upload and stays away: that
    target fails after its retries with an error naming the step, while the
    job's other target (a local folder, added here) gets everything; exit 1.
    When the server is back, the next run completes the upload."""
    other = site.root / "other-target"
    with open(site.config, "a", encoding="utf-8") as f:
        f.write(f'\n[[job.target]]\nname = "local"\nurl = "{other.as_uri()}"\n')
    image = site.image()
    size = image.stat().st_size
    before = site.snapshot()
    run = OffsiteProcess(site, "run")
    try:
        run.wait_for(lambda: _sent(run, image.name) >= size * at, f"{at:.0%} sent")
        proxy.cut()
        code = run.wait()
    finally:
        run.kill()
    assert code == 1, (code, "".join(run.stderr))
    failed = {e["target"]: e for e in run.of("target-failed")}
    assert set(failed) == {TARGET}, failed
    error, step = failed[TARGET]["error"], failed[TARGET]["step"]
    assert step and f"{step} failed" in error, failed[TARGET]
    assert len(run.of("retry-scheduled")) >= 1, f"no retry before giving up: {failed}"
    assert (other / image.name).read_bytes() == image.read_bytes(), "the other target finished"
    assert site.snapshot() == before, "the destination changed"
    status = site.status()
    assert status["state"] == "failed" and status["last_error"], status
    proxy.restore()
    again = site.offsite("run", "--json")
    assert again.returncode == 0, again.stderr
    site.assert_sound()
    assert site.restore(image.name) == site.vol.states[-1]


def _placed(site: FaultSite) -> set[str]:
    from offsite.journal import Journal

    with Journal(site.conf / "journal.sqlite") as journal:
        return {p.remote_path for p in journal.placed(JOB, TARGET)}


def _server_folder(folder: Path) -> Path:
    """``folder`` made if missing, owned as its parent is (the server's user
    must write there, not root who runs the test)."""
    if not folder.exists():
        folder.mkdir(parents=True)
        parent = folder.parent.stat()
        os.chown(folder, parent.st_uid, parent.st_gid)
    return folder


def target_fails_then_fixed(site: FaultSite, break_it: Callable[[], None],
                            fix: Callable[[], None], words: tuple[str, ...]) -> None:
    """The target is broken by ``break_it`` (full, refusing writes, … as a
    test can make its server): ``offsite run`` fails that target (exit 1)
    with a message holding one of ``words`` (lower case) and a fix, the
    destination and the journal stay as they were, no half file appears
    under a final name, and after ``fix`` the next run completes and the
    point restores byte for byte."""
    image = site.image()
    before = site.snapshot()
    break_it()
    try:
        run = site.offsite("run")
        assert run.returncode == 1, (run.returncode, run.stderr)
        said = run.stderr.lower()
        assert any(w in said for w in words), run.stderr
        assert "Fix:" in run.stderr, run.stderr
        assert site.snapshot() == before, "the destination changed"
        assert image.name not in _placed(site), "the journal records a file that is not there"
    finally:
        fix()
    assert image.name not in {f.path for f in site.visible()}, "a half file under its name"
    again = site.offsite("run")
    assert again.returncode == 0, again.stderr
    assert _placed(site) == {image.name}
    site.assert_sound()
    assert site.restore(image.name) == site.vol.states[-1]


def target_full_then_fixed(site: FaultSite, folder: Path,
                           says: tuple[str, ...] = ("full", "no space", "quota")) -> None:
    """The target's disk is full (a 1 MiB tmpfs mounted on ``folder``, the
    target folder as the server stores it on this machine; needs root):
    ``offsite run`` fails that target (exit 1) saying the storage is full
    and how to fix it, the destination and the journal stay as they were,
    and after the fix (the disk grown) the next run completes.

    :param says: words one of which the error must contain (lower case),
        for a server that reports a full disk some other way.

    :raises pytest.skip.Exception: no tmpfs can be mounted here.
    """
    import pytest

    st = _server_folder(folder).stat()

    def fill() -> None:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o",
                               f"size=1m,mode=0755,uid={st.st_uid},gid={st.st_gid}",
                               "tmpfs", str(folder)], capture_output=True, check=False)
        if done.returncode:
            pytest.skip("cannot mount a small tmpfs here (that needs root)")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=256m", str(folder)], check=False)

    try:
        target_fails_then_fixed(site, fill, grow, says)
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def target_refuses_then_fixed(
        site: FaultSite, folder: Path,
        says: tuple[str, ...] = ("permission", "denied", "not allowed", "refused")) -> None:
    """The target folder refuses writes (``chattr +i`` on ``folder``, the
    target folder as the server stores it on this machine; even root and a
    server running as root are refused): ``offsite run`` fails that target
    (exit 1) saying permission is denied and how to fix it, the destination
    and the journal stay as they were, and after the fix the next run
    completes.

    :param says: words one of which the error must contain (lower case).

    :raises pytest.skip.Exception: the file system has no immutable flag.
    """
    import pytest

    _server_folder(folder)

    def lock() -> None:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a folder immutable here (chattr +i)")

    def unlock() -> None:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)

    target_fails_then_fixed(site, lock, unlock, says)


__all__ = ["FaultSite", "OffsiteProcess", "Replicator", "TargetSpec", "kill_nine_anywhere",
           "replicator_killed_mid_upload", "server_outage", "server_stays_down",
           "target_fails_then_fixed", "target_full_then_fixed", "target_refuses_then_fixed",
           "two_runs_at_once"]

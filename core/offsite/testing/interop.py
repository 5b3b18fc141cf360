"""Interop with an independent client: what offsite places, rclone reads; what
rclone places, offsite leaves alone or adopts (issue 22).

Every plugin calls :func:`rclone_interop` in one line, with its target on
its real test server and rclone's name of the same folder::

    def test_rclone_interop(spec, sshd, sftp_folder, tmp_path):
        interop.rclone_interop(spec, f":sftp:{sshd.root}/{sftp_folder}", tmp_path,
                               env=sshd.rclone_env())

Three phases, one target folder:

1. **plain**: rclone puts foreign files (one in a folder) there; ``offsite
   run`` places a full and incrementals 1..3 (consolidated, named as 3);
   rclone lists the folder and downloads every file: the names, sizes and
   SHA-256 are the destination's full, the consolidation of 1..3 made here
   the way offsite makes it, and the foreign files, unchanged. rclone adds
   another foreign file, incremental 4 goes in a second run: the same.
2. **mirror**: the target becomes a mirror; it puts what differs (the
   original incrementals), incremental 4 is removed at the destination and
   deleted at the target, the foreign files stay, byte for byte.
3. **adoption**: rclone copies the destination's images into the sub-folder
   ``byhand``; with ``subfolder = "byhand"`` ``offsite plan`` shows nothing
   to send and says adopted, ``offsite run`` sends nothing and records them
   as adopted, and ``offsite restore`` from there gives the volume's bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from offsite.image.consolidate import Consolidation
from offsite.journal import Journal
from offsite.testing.faults import JOB, OFFSITE, TARGET, TargetSpec
from offsite.testing.images import Volume

#: Fail fast: rclone's defaults retry for about 11 s per failure.
RCLONE_FLAGS = ("--retries", "1", "--low-level-retries", "1")
#: What rclone puts at the target before the first run, and between runs.
FOREIGN = {"their-notes.txt": b"another tool's notes\n",
           "theirs/deep.bin": bytes(range(256)) * 40}
LATER = {"theirs/later.txt": b"put between two runs\n"}
BYHAND = "byhand"


class Interop:
    """A destination, a config with one job on ``spec``, offsite and rclone."""

    def __init__(self, spec: TargetSpec, remote: str, work: Path,
                 env: Mapping[str, str] | None, flags: Sequence[str]) -> None:
        self.spec, self.remote, self.work = spec, remote.rstrip("/"), work
        self.env = {**os.environ, **(env or {})}
        self.flags = [*RCLONE_FLAGS, *flags]
        self.dest = work / "destination"
        self.dest.mkdir(parents=True)
        self.conf = work / "conf"
        self.conf.mkdir()
        self.vol = Volume(work / "volume.raw", 3 << 20, seed=22)
        self.configure()
        if spec.credentials:
            self.offsite("credentials", "set", f"{JOB}.{TARGET}", "--stdin",
                         input=json.dumps(dict(spec.credentials)))

    def configure(self, extra: str = "") -> None:
        options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in self.spec.options.items())
        (self.conf / "offsite.toml").write_text(
            f'[[job]]\nname = "{JOB}"\ndestination = "{self.dest}"\n'
            f'[[job.target]]\nname = "{TARGET}"\nurl = "{self.spec.url}"\n'
            f"{self.spec.extra}\n{extra}\n"
            + (f"[job.target.options]\n{options}" if options else ""))

    def image(self) -> None:
        if self.vol.images:
            self.vol.scribble(3, 100_000)
        self.vol.image(self.dest, block_size=64 << 10)

    def offsite(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run([*OFFSITE, "--config", str(self.conf / "offsite.toml"), *args],
                              input=input, capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        for secret in self.spec.credentials.values():
            assert secret not in done.stdout + done.stderr, "a credential in offsite's output"
        return done.stdout

    def uploads(self) -> list[str]:
        out = self.offsite("run", "--json")
        return sorted(json.loads(line)["remote"] for line in out.splitlines()
                      if '"upload-done"' in line)

    def rclone(self, *args: str) -> str:
        done = subprocess.run(["rclone", *args, *self.flags], env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    def put_foreign(self, files: Mapping[str, bytes]) -> None:
        """rclone places ``files`` (relative paths) in the target folder."""
        staging = self.work / "foreign"
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        self.rclone("copy", str(staging), self.remote)

    def at_target(self) -> dict[str, str]:
        """Every file rclone lists and downloads there: path -> SHA-256.
        The sizes rclone lists are the downloaded files' sizes."""
        listed = json.loads(self.rclone("lsjson", "-R", "--files-only", self.remote))
        down = self.work / "download"
        self.rclone("sync", self.remote, str(down))
        got = {}
        for entry in listed:
            data = (down / entry["Path"]).read_bytes()
            assert len(data) == entry["Size"], entry
            got[entry["Path"]] = hashlib.sha256(data).hexdigest()
        assert len(got) == sum(1 for p in down.rglob("*") if p.is_file())
        return got

    def expect(self, placed: Mapping[str, Path | Sequence[Path]],
               foreign: Mapping[str, bytes]) -> dict[str, str]:
        """What must be there: local files (several: their consolidation,
        made here) and the foreign files."""
        want = {path: hashlib.sha256(data).hexdigest() for path, data in foreign.items()}
        for remote, source in placed.items():
            if isinstance(source, Path):
                want[remote] = sha256_file(source)
                continue
            made = self.work / "consolidated.ofi"
            made.unlink(missing_ok=True)
            with Consolidation(list(source)) as merged:
                merged.write_file(made)
            want[remote] = sha256_file(made)
        return want

    def local(self, *names: str) -> list[Path]:
        return [self.dest / n for n in names]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


FULL, I1, I2, I3, I4 = ("vol-b001.ofi", "vol-b001-i001.ofi", "vol-b001-i002.ofi",
                        "vol-b001-i003.ofi", "vol-b001-i004.ofi")


def rclone_interop(spec: TargetSpec, remote: str, work: Path, *,
                   env: Mapping[str, str] | None = None, flags: Sequence[str] = ()) -> None:
    """The three phases of the module's doc against one target folder.

    :param spec: the target on the plugin's server (an empty folder), with
        its options and credentials.
    :param remote: rclone's name of the same folder (``/abs/path``,
        ``:sftp:/path``, ``:s3:bucket/folder`` …).
    :param env: rclone's environment (its on-the-fly remote, secrets obscured).
    :param flags: more rclone flags (a CA file).
    """
    t = Interop(spec, remote, work, env, flags)
    for _ in range(4):
        t.image()
    t.put_foreign(FOREIGN)

    # 1. plain: offsite places, rclone reads it all back; foreign files stay.
    assert t.uploads() == [I3, FULL]
    first: dict[str, Path | Sequence[Path]] = {FULL: t.dest / FULL, I3: t.local(I1, I2, I3)}
    assert t.at_target() == t.expect(first, FOREIGN)
    t.put_foreign(LATER)
    t.image()
    assert t.uploads() == [I4]
    assert t.at_target() == t.expect({**first, I4: t.dest / I4}, {**FOREIGN, **LATER})

    # 2. mirror: puts what differs, deletes only what offsite placed.
    t.configure("mirror = true")
    assert t.uploads() == [I1, I2, I3], "the originals, not a consolidation"
    (t.dest / I4).unlink()
    t.offsite("run")
    mirrored = {n: t.dest / n for n in (FULL, I1, I2, I3)}
    assert t.at_target() == t.expect(mirrored, {**FOREIGN, **LATER})

    # 3. adoption: the destination's images copied there by hand.
    t.rclone("copy", str(t.dest), f"{t.remote}/{BYHAND}", "--exclude", ".*")
    t.configure(f'subfolder = "{BYHAND}"')
    [plan] = json.loads(t.offsite("plan", "--json"))["plans"]
    byhand = sorted(f"{BYHAND}/{n}" for n in mirrored)
    assert (plan["actions"], sorted(plan["adopted"])) == ([], byhand), plan
    assert "already placed (adopted: matches)" in t.offsite("plan")
    assert t.uploads() == [], "nothing sent"
    with Journal(t.conf / "journal.sqlite") as journal:
        adopted = [p.remote_path for p in journal.placed(JOB, TARGET) if p.adopted]
    assert sorted(adopted) == byhand
    restored = work / "restored.raw"
    t.offsite("restore", JOB, TARGET, f"{BYHAND}/{I3}", str(restored))
    assert restored.read_bytes() == t.vol.states[3]
    everything = {**mirrored, **{f"{BYHAND}/{n}": p for n, p in mirrored.items()}}
    assert t.at_target() == t.expect(everything, {**FOREIGN, **LATER})


__all__ = ["FOREIGN", "LATER", "rclone_interop"]

"""The offsite demo: a real replication job on local folders, no servers needed.

It runs the ``offsite`` command line exactly as an operator would, printing
each command first:

1. a 64 MiB sample volume, imaged: a full image and three incrementals;
2. a job with two local targets: "vault" (consolidating) and "mirror"
   (an exact copy), checked step by step;
3. ``offsite run``: the vault receives the full image plus ONE incremental
   named as #3 that covers 1-3; the mirror receives all four images;
4. incremental 4 is created and ``offsite run`` again sends only #4;
5. point 4 is restored straight from the vault and compared byte for byte
   with the volume, and ``offsite status`` shows both targets.

Everything lives in a temporary folder (printed at the end); the user's own
configuration is not touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

MiB = 1 << 20
OFFSITE = str(Path(sys.executable).with_name("offsite"))
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
if not sys.stderr.isatty():
    BOLD = DIM = GREEN = RED = RESET = ""


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", file=sys.stderr, flush=True)


def offsite(*args: str, env: dict[str, str], capture: bool = False) -> str:
    shown = " ".join(shlex.quote(a) for a in ("offsite", *args))
    print(f"{DIM}$ {shown}{RESET}", file=sys.stderr, flush=True)
    result = subprocess.run([OFFSITE, *args], env=env, text=True, check=False,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        sys.exit(f"{RED}'{shown}' exited with {result.returncode}{RESET}")
    return result.stdout or ""


def make_volume(path: Path, rnd: random.Random) -> None:
    words = [rnd.randbytes(4).hex().encode() for _ in range(500)]
    with open(path, "wb") as f:
        for i in range(64):
            if i % 5 == 0:
                f.write(bytes(MiB))  # empty space: zero blocks cost nothing
            else:
                f.write((b" ".join(rnd.choices(words, k=MiB // 6)))[:MiB])


def change(path: Path, rnd: random.Random) -> None:
    with open(path, "r+b") as f:
        for _ in range(12):
            f.seek(rnd.randrange(64) * MiB + rnd.randrange(MiB // 2))
            f.write(rnd.randbytes(rnd.randrange(1000, 300_000)))


def show_target(folder: Path, env: dict[str, str]) -> None:
    for path in sorted(folder.rglob("*.ofi")):
        info = json.loads(subprocess.run([OFFSITE, "image", "info", "--json", str(path)],
                                         env=env, text=True, capture_output=True,
                                         check=True).stdout)
        covers = ("full" if info["kind"] == "full"
                  else f"incremental {info['seq_first']}..{info['seq_last']}")
        print(f"   {folder.name}/{path.name:22} {path.stat().st_size / MiB:5.1f} MiB  {covers}",
              file=sys.stderr)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="offsite-demo-"))
    rnd = random.Random(2026)
    env = {**os.environ, "OFFSITE_CONFIG": str(work / "config" / "offsite.toml")}
    volume, destination = work / "volume.raw", work / "destination"
    vault, mirror = work / "targets" / "vault", work / "targets" / "mirror"
    destination.mkdir()
    (work / "config").mkdir()

    say("installed target plugins")
    offsite("targets", env=env)

    say("a 64 MiB volume, imaged four times: a full, then incrementals 1-3")
    make_volume(volume, rnd)
    offsite("image", "create", str(volume), str(destination), "--label", "vol",
            "--block-size", "256K", env=env)
    for _ in range(3):
        change(volume, rnd)
        offsite("image", "create", str(volume), str(destination), "--label", "vol", env=env)
    offsite("image", "verify", str(destination), env=env)

    say("a job with two local targets: one consolidating, one mirror")
    Path(env["OFFSITE_CONFIG"]).write_text(f'''\
[[job]]
name = "demo"
destination = "{destination}"

  [[job.target]]
  name = "vault"
  url = "{vault.as_uri()}"
  priority = 1

  [[job.target]]
  name = "mirror"
  url = "{mirror.as_uri()}"
  priority = 1
  mirror = true
''')
    print(Path(env["OFFSITE_CONFIG"]).read_text(), file=sys.stderr)
    offsite("check", env=env)

    say("replicate (the vault gets the full image and ONE incremental covering 1-3)")
    offsite("plan", env=env)
    offsite("run", env=env)
    show_target(vault, env)
    show_target(mirror, env)

    say("incremental 4 appears; the next run sends only #4")
    change(volume, rnd)
    offsite("image", "create", str(volume), str(destination), "--label", "vol", env=env)
    offsite("run", env=env)
    show_target(vault, env)

    say("restore point 4 straight from the vault and compare the bytes")
    restored = work / "restored.raw"
    offsite("restore", "demo", "vault", "vol-b001-i004.ofi", str(restored), env=env)
    want = hashlib.sha256(volume.read_bytes()).hexdigest()
    got = hashlib.sha256(restored.read_bytes()).hexdigest()
    print(f"   sha256 of the volume at point 4      {want}\n"
          f"   sha256 restored from the vault       {got}", file=sys.stderr)
    same = want == got
    print(f"   {GREEN + 'identical' if same else RED + 'DIFFERENT'}{RESET}", file=sys.stderr)
    offsite("status", env=env)
    print(f"\n(everything is in {work})", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

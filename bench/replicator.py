"""Benchmark: what an idle ``offsite replicator`` costs, and how soon it starts
on a new image.

    python bench/replicator.py [--idle 60] [--images 5] [--poll SECONDS]

A destination with a full image and a file:// target, in a temporary folder
under /work when that exists. The service is started with ``--json`` and
left to settle; then:

1. Idle CPU: the service's user + system CPU time (from /proc/PID/stat)
   over ``--idle`` seconds with nothing happening, as a share of one core.
   Goal: under 1 %.
2. Latency: ``--images`` times, the next incremental is made in a scratch
   folder and renamed into the destination (as backup software publishes a
   finished file); the time from the rename to the service's
   ``upload-started`` event for it. Median and worst. Goal: under 2 s.

With ``--poll`` the same, with the destination polled instead of watched
by inotify (as for a network mount).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from offsite.testing.images import Volume

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--poll", type=float, default=None)
    args = ap.parse_args()
    base = Path("/work") if Path("/work").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="bench-replicator-", dir=base))
    try:
        run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> None:
    dest, conf, target, scratch = (root / n for n in ("dest", "conf", "target", "scratch"))
    for d in (dest, conf, scratch):
        d.mkdir()
    vol = Volume(root / "vol.raw", 8 << 20, seed=3)
    vol.image(dest)
    config = conf / "offsite.toml"
    config.write_text(f'[[job]]\nname = "j"\ndestination = "{dest}"\n'
                      f'[[job.target]]\nname = "t"\nurl = "{target.as_uri()}"\n')
    cmd = [sys.executable, "-c", "from offsite.cli import main; main()", "--config",
           str(config), "--quiet", "replicator", "--json"]
    if args.poll:
        cmd += ["--poll", str(args.poll)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    started: dict[str, float] = {}
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            e = json.loads(line)
            if e["event"] == "upload-started":
                started[e["remote"]] = time.monotonic()
            if e["event"] == "upload-done":
                done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert done.wait(60), "the first pass did not finish"
        time.sleep(2)  # let it settle
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        idle = (c1 - c0) / (t1 - t0)
        waits = []
        for _ in range(args.images):
            vol.scribble(5, 64 << 10)
            # Made beside the destination, then published by a rename: the
            # hash map goes with it (hidden, ignored by the service).
            for p in dest.iterdir():
                shutil.copy2(p, scratch / p.name)
            made = vol.image(scratch)
            for p in scratch.iterdir():
                if p.name.startswith("."):
                    os.replace(p, dest / p.name)
            published = time.monotonic()
            os.replace(made, dest / made.name)
            end = published + 30
            while made.name not in started and time.monotonic() < end:
                time.sleep(0.005)
            waits.append(started.get(made.name, float("inf")) - published)
            for p in scratch.iterdir():
                p.unlink()
            time.sleep(1)
        how = f"polling every {args.poll} s" if args.poll else "inotify"
        print(f"replicator ({how}), {args.idle:.0f} s idle, {args.images} new images")
        print(f"  idle CPU: {c1 - c0:.3f} s in {t1 - t0:.1f} s = {idle:.2%} of a core "
              f"(goal < 1 %)")
        print(f"  new image -> upload started: median {statistics.median(waits):.2f} s, "
              f"worst {max(waits):.2f} s (goal < 2 s)")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()

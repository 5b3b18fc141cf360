"""Benchmark: planning and an idle run over a large destination.

    python bench/plan.py [--sets 1000] [--per-set 10] [--runs 5] [--workdir DIR]

Builds a destination of ``sets × per-set`` real OFI images (a full and
incrementals per generation set, tiny volumes so that the count, not the
bytes, is what is measured), a job with three local targets (consolidating,
mirror, subfolder + new-sets policy), and runs it once so the targets and
the journal are full. Then it measures, side by side:

* the pure planner for the three targets (scan and listings done once, the
  journal read once): the work ``plan`` itself does;
* the parts around it: scanning the destination (reading every header),
  reading the journal, listing a target;
* ``offsite run`` with nothing to do, as a command (the whole process).

Goals (issue 5): planning under 1 s, an idle run under 2 s. Prints medians.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from offsite.config import Config
from offsite.engine import scan_destination
from offsite.image.format import Metadata
from offsite.image.writer import ImageWriter
from offsite.journal import Journal
from offsite.plan import Options, plan
from offsite.session import Transport

OFFSITE = str(Path(sys.executable).with_name("offsite"))


def build(dest: Path, sets: int, per_set: int) -> None:
    for s in range(sets):
        set_id, label = str(uuid.uuid4()), f"srv{s:04d}"
        states = [str(uuid.uuid4()) for _ in range(per_set)]
        for seq in range(per_set):
            meta = Metadata(
                kind="full" if seq == 0 else "incremental", set_id=set_id, label=label,
                generation=1, seq_first=seq, seq_last=seq, state=states[seq],
                parent_state=None if seq == 0 else states[seq - 1], block_size=512,
                volume_size=2048, compression="none")
            with ImageWriter(dest / meta.name, meta) as w:
                blocks = range(4) if seq == 0 else [seq % 4]
                for b in blocks:
                    if seq == 0 and b % 2:
                        w.add_zero(b)
                    else:
                        data = os.urandom(512)
                        w.add(b, data, 0, hashlib.sha256(data).digest())
                w.finish()


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(name: str, times: list[float], goal: float | None = None) -> None:
    med = statistics.median(times)
    verdict = "" if goal is None else f"  goal < {goal:.0f} s: {'met' if med < goal else 'MISSED'}"
    print(f"  {name:44} median {med:7.3f} s  (min {min(times):.3f}, max {max(times):.3f})"
          f"{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--per-set", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-plan-", dir=args.workdir))
    try:
        dest = work / "destination"
        dest.mkdir()
        t0 = time.perf_counter()
        build(dest, args.sets, args.per_set)
        print(f"{args.sets * args.per_set} images in {args.sets} sets built in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        config = work / "offsite.toml"
        config.write_text(f'''
[[job]]
name = "bench"
destination = "{dest}"
[[job.target]]
name = "vault"
url = "{(work / 'vault').as_uri()}"
[[job.target]]
name = "mirror"
url = "{(work / 'mirror').as_uri()}"
mirror = true
[[job.target]]
name = "branch"
url = "{(work / 'branch').as_uri()}"
subfolder = "site-a"
new_sets_only = false
''')
        env = {**os.environ, "OFFSITE_CONFIG": str(config)}
        t0 = time.perf_counter()
        subprocess.run([OFFSITE, "--quiet", "run"], env=env, check=True)
        print(f"first run (fills the three targets) took {time.perf_counter() - t0:.1f} s",
              flush=True)

        cfg = Config.load(config)
        job = cfg.jobs[0]
        with Journal(work / "journal.sqlite") as journal:
            local = scan_destination(dest)
            placed = {t.name: journal.placed(job.name, t.name) for t in job.targets}
            listings = {}
            for t in job.targets:
                transport = Transport.for_endpoint(t.endpoint)
                with transport.connect(t.endpoint) as session:
                    listings[t.name] = session.list("" if t.mirror else t.subfolder)
            options = {t.name: Options(mirror=t.mirror, types=frozenset(t.types),
                                       subfolder="" if t.mirror else t.subfolder)
                       for t in job.targets}

            def plan_all() -> None:
                for t in job.targets:
                    p = plan(local, placed[t.name], listings[t.name], options[t.name])
                    assert not p.actions, f"{t.name}: {p.actions[:3]}"

            print(f"\n{len(local)} images, {sum(len(v) for v in placed.values())} journal "
                  f"entries over 3 targets ({args.runs} runs each)")
            line("plan, 3 targets (pure planner)", timed(plan_all, args.runs), goal=1)
            line("scan the destination (every header)",
                 timed(lambda: scan_destination(dest), args.runs))
            line("read the journal, 3 targets", timed(
                lambda: [journal.placed(job.name, t.name) for t in job.targets], args.runs))
            vault = job.targets[0]
            transport = Transport.for_endpoint(vault.endpoint)
            with transport.connect(vault.endpoint) as session:
                line("list one target (local plugin)", timed(session.list, args.runs))
        line("offsite run, nothing to do (whole command)",
             timed(lambda: subprocess.run([OFFSITE, "--quiet", "run"], env=env, check=True),
                   args.runs), goal=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

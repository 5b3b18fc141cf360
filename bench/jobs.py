"""The job parts of the protocol benchmarks: the destination they replicate
(a full image and three incrementals), an offsite job with one target, and
the two scenarios that compare ``offsite run`` with ``rclone copy``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from measure import (
    OFFSITE,
    MiB,
    Outcome,
    Row,
    Step,
    alternate,
    human,
    median,
    run,
    stats_line,
    tree_bytes,
    write_random,
)

#: The share of a volume's blocks each of the job's three incrementals
#: rewrites. offsite sends the full and one consolidation, (1 + h) volumes,
#: where rclone sends (1 + 3h): the bytes ratio is fixed by h alone.
HOT_FRACTION = 0.25


def build_destination(work: Path, vol_size: int, hot_fraction: float = HOT_FRACTION) -> Path:
    """A full image and three incrementals rewriting the same hot blocks."""
    vol, dest = work / "volume.raw", work / "dest"
    dest.mkdir()
    log = work / "cmd.log"
    blocks = vol_size // MiB
    print(f"\n[job] building a {human(vol_size)} volume (1 MiB blocks) and its images …",
          flush=True)
    write_random(vol, blocks * MiB, seed=2)
    create = [OFFSITE, "image", "create", str(vol), str(dest), "--label", "vol",
              "--block-size", "1M"]
    run(create, log=log)
    rnd = random.Random(3)
    hot = sorted(rnd.sample(range(blocks), int(blocks * hot_fraction)))
    for _ in range(3):
        with open(vol, "r+b") as f:
            for b in hot:
                f.seek(b * MiB)
                f.write(rnd.randbytes(MiB))
        run(create, log=log)
    vol.unlink()
    listing = ", ".join(f"{p.name} {p.stat().st_size / MiB:.1f} MiB"
                        for p in sorted(dest.iterdir()) if p.is_file())
    print(f"  {len(hot)} hot blocks of {blocks}; destination: {listing}")
    return dest


#: The job scenarios: what the target holds before the timed run.
SCENARIOS = {
    "empty": "an empty target (first replication: the full and the incrementals)",
    "pending": "a target holding the full from an earlier run (three incrementals pending)",
}


@contextlib.contextmanager
def incrementals_held(dest: Path) -> Iterator[None]:
    """The destination as it was before its incrementals were written."""
    held = dest.parent / "held"
    held.mkdir(exist_ok=True)
    moved = [p for p in dest.iterdir() if re.search(r"-i\d+\.ofi$", p.name)]
    for p in moved:
        p.rename(held / p.name)  # a rename keeps the mtime rclone compares
    try:
        yield
    finally:
        for p in moved:
            (held / p.name).rename(p)


def job_rounds(steps: list[Step], runs: int, *, clear: Callable[[], None],
               at_target: Callable[[], tuple[int, list[str]]],
               prepare: Mapping[str, Callable[[], object]] | None = None,
               ) -> tuple[dict[str, list[Row]], dict[str, tuple[int, list[str]]]]:
    """Run each tool's job ``runs`` times, alternating order: clear the target,
    ``prepare[tool]()`` it and write the page cache back (untimed), then the
    timed step.

    The write-back matters: a run leaves hundreds of MiB of dirty pages (the
    server's files), which the kernel writes back about 30 s later, in the
    middle of whichever run is timed then (measured: the same 1 GiB job took
    6.0 s or 9.5 s).

    :returns: the rows per tool, and what each tool's timed step added at the
        target (bytes, files), which must be the same every round.
    """
    results: dict[str, list[Row]] = {name: [] for name, _ in steps}
    sent: dict[str, tuple[int, list[str]]] = {}
    for r in range(runs):
        for name, step in alternate(r, steps):
            clear()
            if prepare and name in prepare:
                prepare[name]()
            os.sync()
            before_bytes, before_files = at_target()
            results[name].append(step())
            after_bytes, after_files = at_target()
            there = (after_bytes - before_bytes, sorted(set(after_files) - set(before_files)))
            if name in sent and sent[name] != there:
                sys.exit(f"{name}: the target differs between runs: {there} vs {sent[name]}")
            sent[name] = there
        order = " → ".join(k for k, _ in alternate(r, steps))
        print(f"  round {r + 1}/{runs} done ({order})", flush=True)
    clear()
    return results, sent


def job_report(results: dict[str, list[Row]], sent: dict[str, tuple[int, list[str]]],
               expected: tuple[int, list[str]], *, part: str, runs: int, where: str,
               rclone: str, time_goal: float, bytes_goal: float, waits: list[float],
               notes: Mapping[str, str],
               ) -> Outcome:
    """Print the job comparison and return it.

    rclone copies every file the target lacks, so what it added must be
    ``expected`` (the destination, less what the target held); anything
    else means the comparison is not fair. ``waits``: per timed offsite run,
    the seconds it waited for the target to finish its uploads
    (:meth:`OffsiteJob.run`). ``notes``: per tool, printed after its line
    (the server's CPU seconds).
    """
    dest_bytes, dest_files = expected
    if sent["rclone"] != expected:
        sys.exit(f"rclone's copy {sent['rclone']} differs from what it lacked {expected}")
    print(f"\n[{part}] replicate the destination to {where} ({runs} runs)")
    print(stats_line("offsite run", results["offsite"]) + notes.get("offsite", ""))
    print(stats_line(rclone, results["rclone"]) + notes.get("rclone", ""))
    outcome = Outcome.of(part, "rclone", results["offsite"], results["rclone"],
                         goal=time_goal, offsite_bytes=sent["offsite"][0],
                         reference_bytes=dest_bytes, bytes_goal=bytes_goal)
    print(f"  time ratio offsite/rclone:  {outcome.ratio:.2f}  (goal <= {time_goal})")
    wait = median([(w, 0) for w in waits])
    print(f"    offsite waited {wait:.2f} s (median) for the target to finish its uploads"
          f" (last byte sent → upload done);"
          f" without that wait: {(outcome.offsite_s - wait) / outcome.reference_s:.2f}")
    print(f"  bytes sent offsite: {sent['offsite'][0] / MiB:8.1f} MiB"
          f"  ({', '.join(sent['offsite'][1])})")
    print(f"  bytes sent rclone:  {dest_bytes / MiB:8.1f} MiB  ({', '.join(dest_files)})")
    print(f"  bytes ratio offsite/rclone: {outcome.bytes_ratio:.2f}  (goal <= {bytes_goal})")
    print(f"  offsite run peak RSS: {outcome.offsite_rss} MiB")
    return outcome


def compare_jobs(job: OffsiteJob, rclone_step: Callable[[], Row], runs: int, *,
                 clear: Callable[[], None], at_target: Callable[[], tuple[int, list[str]]],
                 rclone: str, time_goal: float, bytes_goal: float, label: str = "job",
                 watch: Callable[[str, Callable[[], Row]], Callable[[], Row]] | None = None,
                 notes: Callable[[], Mapping[str, str]] | None = None,
                 ) -> list[Outcome]:
    """Both job scenarios (:data:`SCENARIOS`): ``job.run`` against ``rclone_step``.

    ``clear`` empties the target and offsite's journal. For "pending", each
    tool first replicates the destination as it was before its incrementals
    (untimed), so the timed run sends what piled up since. ``watch(tool,
    step)`` wraps each timed step (to read the server's CPU around it);
    ``notes()`` then says, per tool, what to print beside its line.

    :returns: one outcome per scenario, parts named ``{label} {scenario}``.
    """
    dest = job.dest
    wrap = watch or (lambda _tool, step: step)
    steps: list[Step] = [("offsite", wrap("offsite", job.run)),
                         ("rclone", wrap("rclone", rclone_step))]

    def earlier(step: Callable[[], object]) -> Callable[[], None]:
        def seed() -> None:
            with incrementals_held(dest):
                step()
        return seed

    outcomes = []
    for scenario, where in SCENARIOS.items():
        prepare = None
        expected = tree_bytes(dest)
        job.waits.clear()
        if scenario == "pending":
            prepare = {"offsite": earlier(job.seed), "rclone": earlier(rclone_step)}
            with incrementals_held(dest):
                held = tree_bytes(dest)
            expected = (expected[0] - held[0], sorted(set(expected[1]) - set(held[1])))
        results, sent = job_rounds(steps, runs, clear=clear, at_target=at_target,
                                   prepare=prepare)
        outcomes.append(job_report(results, sent, expected, part=f"{label} {scenario}",
                                   runs=runs, where=where, rclone=rclone,
                                   time_goal=time_goal, bytes_goal=bytes_goal,
                                   waits=job.waits, notes=notes() if notes else {}))
    return outcomes


class OffsiteJob:
    """A job with one target, in its own folder: the destination, a config
    folder and stored credentials, as a benchmark's ``offsite run`` uses them.

    :param url: the target URL; ``options`` its ``[job.target.options]``;
        ``credentials`` what ``offsite credentials set --stdin`` stores.
    """

    NAME = "bench"

    def __init__(self, work: Path, volume: int, target: str, url: str,
                 options: Mapping[str, str], credentials: Mapping[str, str]) -> None:
        self.volume = volume
        self.work = work / f"job-{volume // MiB}M"
        self.work.mkdir()
        self.dest = build_destination(self.work, volume)
        self.cfgdir = self.work / "config"
        self.cfgdir.mkdir(mode=0o700)
        self.cfg = self.cfgdir / "offsite.toml"
        self.log = self.work / "cmd.log"
        self.waits: list[float] = []  # see run()
        # json.dumps gives valid TOML basic strings for these values.
        opts = "".join(f"  {key} = {json.dumps(value)}\n" for key, value in options.items())
        self.cfg.write_text(
            f"[[job]]\nname = {json.dumps(self.NAME)}\n"
            f"destination = {json.dumps(str(self.dest))}\n\n"
            f"  [[job.target]]\n  name = {json.dumps(target)}\n"
            f"  url = {json.dumps(url)}\n  retries = 0\n"
            f"  [job.target.options]\n{opts}")
        if credentials:
            run([OFFSITE, "--config", str(self.cfg), "credentials", "set",
                 f"{self.NAME}.{target}", "--stdin"], stdin=json.dumps(dict(credentials)),
                log=self.log)
            print(f"  {self.log.read_text().strip()}")

    def run(self) -> Row:
        """One ``offsite run``, timed; adds to :attr:`waits` what it waited for
        the target to finish its uploads: per upload, from its last byte's
        progress event to its done event (``run --json``), which is the
        server's part (an S3 store assembling a multipart object, an SFTP
        server's fsync and rename) and the plugin's final look at the file."""
        row = self.seed()
        last: dict[str, float] = {}
        wait = 0.0
        for line in self.log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["event"] == "bytes-progressed" and event["done"] == event["size"]:
                last[event["remote"]] = event["time"]
            elif event["event"] == "upload-done":
                wait += event["time"] - last.pop(event["remote"])
        self.waits.append(wait)
        return row

    def seed(self) -> Row:
        """One ``offsite run`` (with ``--json`` events, in :attr:`log`), untimed."""
        return run([OFFSITE, "--config", str(self.cfg), "run", "--json"], log=self.log)

    def forget(self) -> None:
        """Delete the journal: the next run knows nothing of earlier ones."""
        for suffix in ("", "-wal", "-shm"):
            (self.cfgdir / f"journal.sqlite{suffix}").unlink(missing_ok=True)

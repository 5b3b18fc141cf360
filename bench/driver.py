"""The one benchmark driver every protocol script runs (issue 21): offsite
against rclone, side by side in one run, on the protocol's own test server.

Each part alternates the tools' order every round, writes the page cache
back between runs (untimed), and reports medians, each command's own peak
RSS (through :data:`measure.LAUNCHER`), and the server's CPU seconds where
the adapter can read them. Parts (``--parts``, all by default):

put
    one file of --size random bytes: offsite (a fresh ``bench/transfer.py
    put`` process: ``session.put(NAME, FileSource(FILE))``, the endpoint and
    its secrets in the environment) vs ``rclone copyto`` [vs the adapter's
    extras: ``cp`` into the server's folder, the local limit; smbclient;
    boto3]. Each upload's size is checked at the target. Goals: time at most
    the reference's (rclone, or the fastest rival), peak RSS below the
    adapter's ``rss_goal``.
get
    the same file back (placed once by offsite, untimed): ``bench/transfer.py
    get`` (``session.get(NAME)`` streamed to a file) vs ``rclone copyto
    REMOTE/NAME FILE`` [vs the extras]. Each copy's size is checked every
    run, its SHA-256 in the first. Goals: as put.
job
    per --volumes, ``offsite run`` vs ``rclone copy`` in the two scenarios of
    :func:`jobs.compare_jobs` (an empty target; three incrementals pending).
    Goals: time <= 0.8, bytes <= 0.7.
restore
    per --volumes, with the chain offsite placed (full + one consolidated
    incremental): ``offsite restore bench TARGET vol-b001-i003.ofi OUT`` vs
    ``rclone copy`` of that target folder to a local folder. OUT is checked
    against ``offsite image restore`` of the destination (SHA-256, untimed,
    first run); nothing may be left beside OUT nor in the restore's TMPDIR;
    rclone's copy must be exactly the target's files. Goal: time <= 1.2.
idle
    per --volumes, ``offsite run`` when everything is placed vs ``rclone
    copy DEST REMOTE`` when everything is copied, each on its own up-to-date
    target; neither may send anything. Goal: time <= 2.0.

Ratios are times, offsite/reference: below 1 offsite is faster. The summary
lists every goal, met or NOT met; ``--json FILE`` writes the outcomes that
``bench/run_all`` puts in one table across protocols.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jobs import OffsiteJob, compare_jobs
from measure import (
    OFFSITE,
    MiB,
    Outcome,
    Row,
    Step,
    alternate,
    empty,
    human,
    median,
    prefault,
    rss_floor,
    run,
    sha256,
    size,
    sizes,
    stats_line,
    tree_bytes,
    verdict,
    workdir,
    write_random,
)
from protocol import PYTHON, Protocol, script

PARTS = ("put", "get", "job", "restore", "idle")
SINGLE_GOAL = 1.0  # put and get: time offsite/reference
JOB_GOAL, BYTES_GOAL = 0.8, 0.7
RESTORE_GOAL, IDLE_GOAL = 1.2, 2.0
IMAGE = "vol-b001-i003.ofi"  # the third incremental: what restore brings back
TRANSFER = script("transfer.py")


def arguments(doc: str, *, tls: bool = False, modes: Sequence[str] = (),
              volumes: str = "256M,1G", runs: int = 5, tools: Iterable[str] = ("rclone",),
              extend: Callable[[argparse.ArgumentParser], None] | None = None,
              ) -> argparse.Namespace:
    """The options every protocol benchmark takes, ``--tls`` and ``--modes``
    if asked, and ``extend``'s own; exits if a tool is missing.

    ``args.parts`` is the list of parts to run (``--skip-put`` drops put and
    get, ``--skip-job`` job, restore and idle).
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    if tls:
        parser.add_argument("--tls", action="store_true",
                            help="everything over HTTPS, with a throw-away CA")
    if modes:
        parser.add_argument("--modes", default=",".join(modes),
                            help=f"comma-separated, of {', '.join(modes)} (all)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {','.join(PARTS)} (all)")
    parser.add_argument("--size", default="1G", type=size, help="put/get file size (1G)")
    parser.add_argument("--volumes", default=volumes, type=sizes,
                        help=f"job/restore/idle volume sizes, comma-separated ({volumes})")
    parser.add_argument("--runs", default=runs, type=int, help=f"rounds per part ({runs})")
    parser.add_argument("--skip-put", action="store_true", help="without put and get")
    parser.add_argument("--skip-job", action="store_true", help="without job, restore, idle")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the outcomes (medians, ratios, bytes, RSS) to this file")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the files and the server's folders go (default: a folder"
                             " under /work, else the system's temporary folder); a tmpfs such"
                             " as /dev/shm takes the disk's write-back out of the timings")
    parser.add_argument("--prefault", default="2G", type=size,
                        help="fresh memory touched and freed before every timed step, so"
                             " that no tool pays for pages a VM's balloon handed back to the"
                             " host (2G; 0: none; see measure.prefault)")
    if extend:
        extend(parser)
    args = parser.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    dropped = (["put", "get"] if args.skip_put else []) + (
        ["job", "restore", "idle"] if args.skip_job else [])
    args.parts = [p for p in PARTS if p in args.parts and p not in dropped]
    if modes:
        args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        if set(args.modes) - set(modes):
            parser.error(f"--modes: one of {', '.join(modes)}")
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"this benchmark needs {tool}: apt-get install {tool}")
    return args


def main(args: argparse.Namespace, protocols: Sequence[Protocol], name: str) -> None:
    """Run ``args.parts`` for each protocol (each with its own server), then
    print the summary and write ``--json``."""
    work = workdir(args, f"offsite-bench-{name}-")
    outcomes: dict[str, list[Outcome]] = {}
    try:
        work.chmod(0o755)  # servers' folders are inside: their users must traverse
        version = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()[0]
        print(f"{version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs;"
              f" parts: {', '.join(args.parts)}; {human(args.prefault)} prefaulted before"
              " each timed step", flush=True)
        rss_floor(work / "cmd.log")
        payload = work / "payload.bin"
        if {"put", "get"} & set(args.parts):
            print(f"\n[put] writing {human(args.size)} of random bytes to {payload} …",
                  flush=True)
            write_random(payload, args.size, seed=1)
            os.sync()
        for protocol in protocols:
            home = work / protocol.label
            home.mkdir(mode=0o755)
            with protocol.serve(home):
                print(f"\n===== {protocol.label}: {protocol.describe()}", flush=True)
                for note in protocol.notes:
                    print(f"  note: {note}")
                bench = Bench(protocol, home, payload, args)
                outcomes[protocol.label] = bench.run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary(outcomes)
    if args.json:
        args.json.write_text(json.dumps(records(outcomes), indent=1) + "\n")


class Bench:
    """The parts against one protocol's running server."""

    def __init__(self, protocol: Protocol, work: Path, payload: Path,
                 args: argparse.Namespace) -> None:
        self.p, self.work, self.payload, self.args = protocol, work, payload, args
        self.log = work / "cmd.log"
        self.cpu: dict[str, list[float]] = {}

    def run(self) -> list[Outcome]:
        parts, found = self.args.parts, []
        if "put" in parts:
            found.append(self.put())
        if "get" in parts:
            found.append(self.get())
        if {"job", "restore", "idle"} & set(parts):
            self.p.warm_up(self.work, self.log)
            for volume in self.args.volumes:
                found += self.volume(volume)
        return found

    # -- helpers ------------------------------------------------------------

    def watch(self, key: str, step: Callable[[], Row]) -> Callable[[], Row]:
        """``step``, noting the server's CPU seconds around it (if readable)."""
        def watched() -> Row:
            before = self.p.server_cpu()
            row = step()
            after = self.p.server_cpu()
            if before is not None and after is not None:
                self.cpu.setdefault(key, []).append(after - before)
            return row
        return watched

    def cpu_notes(self) -> dict[str, str]:
        """Per tool, the server's median CPU seconds, then forget them."""
        notes = {k: f"  server CPU {statistics.median(v):5.2f} s" for k, v in self.cpu.items()}
        self.cpu.clear()
        return notes

    def rounds(self, steps: list[Step], *, before: Callable[[str], None],
               after: Callable[[str, int], None]) -> dict[str, list[Row]]:
        """``--runs`` rounds, alternating the order: ``before(tool)`` and the
        page cache written back and fresh memory touched (untimed, see
        :func:`measure.prefault`), the timed step, ``after(tool, round)``."""
        steps = [(key, self.watch(key, step)) for key, step in steps]
        results: dict[str, list[Row]] = {key: [] for key, _ in steps}
        for r in range(self.args.runs):
            for key, step in alternate(r, steps):
                before(key)
                os.sync()
                prefault(self.args.prefault)
                results[key].append(step())
                after(key, r)
            order = " → ".join(k for k, _ in alternate(r, steps))
            print(f"  round {r + 1}/{self.args.runs} done ({order})", flush=True)
        return results

    def report(self, title: str, results: dict[str, list[Row]], labels: Mapping[str, str],
               nbytes: int | None = None) -> None:
        print(f"\n{title} ({self.args.runs} runs)")
        notes = self.cpu_notes()
        for key, rows in results.items():
            print(stats_line(labels[key], rows, nbytes) + notes.get(key, ""))

    def single(self, part: str, results: dict[str, list[Row]], rivals: list[str]) -> Outcome:
        """The put or get outcome: offsite against the fastest of ``rivals``."""
        med = {k: median(v) for k, v in results.items()}
        ref = min(rivals, key=med.__getitem__)
        total = self.args.size
        outcome = Outcome.of(part, ref, results["offsite"], results[ref], goal=SINGLE_GOAL,
                             offsite_bytes=total, reference_bytes=total,
                             rss_goal=self.p.rss_goal)
        others = "".join(f"   offsite/{k}: {med['offsite'] / med[k]:.2f}"
                         for k in med if k not in ("offsite", ref))
        print(f"  time ratio offsite/{ref}: {outcome.ratio:.2f}  (goal <= {SINGLE_GOAL}){others}")
        if "cp" in med:
            print(f"  offsite at {med['cp'] / med['offsite']:.0%} of the cp limit, " + ", ".join(
                f"{k} at {med['cp'] / med[k]:.0%}" for k in rivals))
        print(f"  offsite peak RSS: {outcome.offsite_rss} MiB  (goal < {self.p.rss_goal} MiB)")
        return outcome

    # -- put and get --------------------------------------------------------

    def put(self) -> Outcome:
        p, payload, total, log = self.p, self.payload, self.args.size, self.log
        name = payload.name
        extras = p.extras(log)
        steps: list[Step] = [
            ("offsite", lambda: run([PYTHON, TRANSFER, "put", str(payload), name],
                                    env=p.endpoint_env("put-offsite"), log=log)),
            ("rclone", lambda: p.rclone("copyto", str(payload),
                                        p.rclone_remote(f"put-rclone/{name}"), log=log)),
            *((e.key, lambda e=e: e.put(payload, f"put-{e.key}", name)) for e in extras)]

        def check(key: str, _r: int) -> None:
            there = p.at_target(f"put-{key}")
            if there != (total, [name]):
                sys.exit(f"put, {key}: the target holds {there}, not {total} bytes in {name}")

        results = self.rounds(steps, before=lambda key: p.clear(f"put-{key}"), after=check)
        for key in results:
            p.clear(f"put-{key}")
        labels = {"offsite": "offsite session.put (subprocess)", "rclone": "rclone copyto",
                  **{e.key: e.label for e in extras}}
        self.report(f"[put, {p.label}] upload one {human(total)} file", results, labels, total)
        return self.single("put", results, ["rclone", *(e.key for e in extras if e.rival)])

    def get(self) -> Outcome:
        p, payload, total, log = self.p, self.payload, self.args.size, self.log
        name, folder = payload.name, "get"
        p.clear(folder)
        run([PYTHON, TRANSFER, "put", str(payload), name], env=p.endpoint_env(folder), log=log)
        expected = sha256(payload)
        got = self.work / "got"
        got.mkdir()
        out = {key: got / f"{key}.bin" for key in ("offsite", "rclone")}
        extras = p.extras(log)
        out.update((e.key, got / f"{e.key}.bin") for e in extras)
        steps: list[Step] = [
            ("offsite", lambda: run([PYTHON, TRANSFER, "get", name, str(out["offsite"])],
                                    env=p.endpoint_env(folder), log=log)),
            ("rclone", lambda: p.rclone("copyto", p.rclone_remote(f"{folder}/{name}"),
                                        str(out["rclone"]), log=log)),
            *((e.key, lambda e=e: e.get(folder, name, out[e.key])) for e in extras)]

        def check(key: str, r: int) -> None:
            n = out[key].stat().st_size
            if n != total:
                sys.exit(f"get, {key}: {n} bytes of {total}")
            if r == 0 and sha256(out[key]) != expected:
                sys.exit(f"get, {key}: the bytes differ from the file's")

        results = self.rounds(steps, before=lambda key: out[key].unlink(missing_ok=True),
                              after=check)
        empty(got)
        p.clear(folder)
        labels = {"offsite": "offsite session.get (subprocess)",
                  "rclone": "rclone copyto (download)", **{e.key: e.label for e in extras}}
        self.report(f"[get, {p.label}] download one {human(total)} file (sizes checked, "
                    f"SHA-256 in round 1)", results, labels, total)
        return self.single("get", results, ["rclone", *(e.key for e in extras if e.rival)])

    # -- per volume: job, restore, idle -------------------------------------

    def volume(self, volume: int) -> list[Outcome]:
        p, parts = self.p, self.args.parts
        tag = f"{volume // MiB}M"
        folder = f"job-{tag}"
        job = OffsiteJob(self.work, volume, p.target, p.url(folder), p.options(),
                         p.credentials())
        found: list[Outcome] = []

        def clear() -> None:
            p.clear(folder)
            job.forget()

        try:
            if "job" in parts:
                found += compare_jobs(
                    job, lambda: p.rclone("copy", str(job.dest), p.rclone_remote(folder),
                                          log=job.log),
                    self.args.runs, clear=clear, at_target=lambda: p.at_target(folder),
                    rclone="rclone copy", time_goal=JOB_GOAL, bytes_goal=BYTES_GOAL,
                    label=f"job {tag}", watch=self.watch, notes=self.cpu_notes)
            if "restore" in parts or "idle" in parts:
                clear()
                job.seed()  # the chain at the target: the full and one consolidation
                chain = p.at_target(folder)
                print(f"\n  offsite placed at the target: {', '.join(chain[1])}"
                      f" ({human(chain[0])})")
                if "restore" in parts:
                    found.append(self.restore(job, folder, tag, chain))
                if "idle" in parts:
                    found.append(self.idle(job, folder, tag, chain))
        finally:
            clear()
            p.clear(f"idle-rclone-{tag}")
            shutil.rmtree(job.work, ignore_errors=True)
        return found

    def restore(self, job: OffsiteJob, folder: str, tag: str,
                chain: tuple[int, list[str]]) -> Outcome:
        p, log = self.p, job.log
        reference = job.work / "reference.raw"
        run([OFFSITE, "image", "restore", str(job.dest / IMAGE), str(reference)], log=log)
        expected, restored = sha256(reference), reference.stat().st_size
        reference.unlink()
        out_dir, tmp, copy = (job.work / n for n in ("restore-out", "restore-tmp",
                                                     "restore-rclone"))
        out = out_dir / "volume.raw"
        steps: list[Step] = [
            ("offsite", lambda: run([OFFSITE, "--config", str(job.cfg), "restore", job.NAME,
                                     p.target, IMAGE, str(out)],
                                    env={"TMPDIR": str(tmp)}, log=log)),
            ("rclone", lambda: p.rclone("copy", p.rclone_remote(folder), str(copy), log=log))]

        def before(key: str) -> None:
            for d in ((out_dir, tmp) if key == "offsite" else (copy,)):
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir()

        def check(key: str, r: int) -> None:
            if key == "rclone":
                if tree_bytes(copy) != chain:
                    sys.exit(f"restore, rclone copied {tree_bytes(copy)}, not the chain {chain}")
                return
            beside = [q.name for q in out_dir.iterdir() if q != out]
            left = [str(q.relative_to(tmp)) for q in tmp.rglob("*")]
            if beside or left:
                sys.exit(f"restore: extra disk used: beside OUT {beside}, in TMPDIR {left}")
            if r == 0 and sha256(out) != expected:
                sys.exit("restore: the restored volume differs from `offsite image restore`'s")

        results = self.rounds(steps, before=before, after=check)
        for d in (out_dir, tmp, copy):
            shutil.rmtree(d, ignore_errors=True)
        os.sync()
        labels = {"offsite": f"offsite restore {IMAGE}", "rclone": "rclone copy (the chain)"}
        self.report(f"[restore {tag}, {p.label}] point 3 of a {human(job.volume)} volume,"
                    f" {human(restored)} restored from {human(chain[0])} at the target",
                    results, labels)
        outcome = Outcome.of(f"restore {tag}", "rclone", results["offsite"], results["rclone"],
                             goal=RESTORE_GOAL, reference_bytes=chain[0])
        print(f"  time ratio offsite/rclone: {outcome.ratio:.2f}  (goal <= {RESTORE_GOAL})")
        print("  extra disk used beside OUT and in TMPDIR: none (checked every run);"
              f" OUT's SHA-256 matched in round 1; offsite peak RSS {outcome.offsite_rss} MiB")
        return outcome

    def idle(self, job: OffsiteJob, folder: str, tag: str,
             chain: tuple[int, list[str]]) -> Outcome:
        p, log = self.p, job.log
        theirs = f"idle-rclone-{tag}"
        p.clear(theirs)
        p.rclone("copy", str(job.dest), p.rclone_remote(theirs), log=log)
        copied = p.at_target(theirs)
        if copied != tree_bytes(job.dest):
            sys.exit(f"idle: rclone's first copy {copied} is not the destination")
        steps: list[Step] = [
            ("offsite", job.seed),
            ("rclone", lambda: p.rclone("copy", "-v", str(job.dest), p.rclone_remote(theirs),
                                        log=log))]

        def check(key: str, _r: int) -> None:
            text = log.read_text(errors="replace")
            sent = ("Copied (" in text if key == "rclone" else any(
                json.loads(line).get("event") == "upload-done"
                for line in text.splitlines() if line.startswith("{")))
            there = p.at_target(folder if key == "offsite" else theirs)
            if sent or there != (chain if key == "offsite" else copied):
                sys.exit(f"idle, {key}: it sent something (target now {there}):\n{text}")

        results = self.rounds(steps, before=lambda _key: None, after=check)
        labels = {"offsite": "offsite run (all placed)", "rclone": "rclone copy (all copied)"}
        self.report(f"[idle {tag}, {p.label}] nothing to send", results, labels)
        outcome = Outcome.of(f"idle {tag}", "rclone", results["offsite"], results["rclone"],
                             goal=IDLE_GOAL, offsite_bytes=0, reference_bytes=0)
        print(f"  time ratio offsite/rclone: {outcome.ratio:.2f}  (goal <= {IDLE_GOAL});"
              f" offsite peak RSS {outcome.offsite_rss} MiB")
        return outcome


# --------------------------------------------------------------------------- reports


def records(outcomes: Mapping[str, list[Outcome]]) -> list[dict[str, Any]]:
    """The --json file's rows: one per protocol and part."""
    return [{"protocol": label, **o.to_json()} for label, found in outcomes.items()
            for o in found]


def summary(outcomes: Mapping[str, list[Outcome]]) -> None:
    print("\nsummary")
    for label, found in outcomes.items():
        for o in found:
            goals = "; ".join(f"{text}: {verdict(ok)}" for text, ok in o.goals())
            print(f"  {label:13} {o.part:17} {goals}")
    print()
    print(table(records(outcomes)))


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MiB:.0f}"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per protocol and part: times, ratio, bytes, peak RSS, met."""
    head = (f"{'protocol':13} {'part':17} {'offsite s':>9} {'reference':>10} {'ref s':>7}"
            f" {'ratio':>5} {'goal':>4}  {'MiB sent off/ref':>16}  {'RSS off/ref':>11}  met")
    lines = [head, "-" * len(head)]
    for r in rows:
        sent = f"{_mib(r['offsite_bytes'])}/{_mib(r['reference_bytes'])}"
        rss = f"{r['offsite_rss']}/{r['reference_rss']}"
        lines.append(f"{r['protocol']:13} {r['part']:17} {r['offsite_s']:9.2f}"
                     f" {r['reference']:>10} {r['reference_s']:7.2f} {r['ratio']:5.2f}"
                     f" {r['goal']:4}  {sent:>16}  {rss:>11}  {'yes' if r['met'] else 'NO'}")
    return "\n".join(lines)

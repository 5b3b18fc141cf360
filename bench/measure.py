"""What the benchmarks share: running a command and reading its own peak RSS,
sizes, hashes, statistics lines, and :class:`Outcome`, one part's comparison
of offsite with its reference.

Imported by the scripts beside it (``python bench/X.py`` puts this folder on
``sys.path``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

MiB = 1 << 20
OFFSITE = str(Path(sys.executable).with_name("offsite"))

Row = tuple[float, int]  # (seconds, peak RSS in MiB)
Step = tuple[str, Callable[[], Row]]


def size(text: str) -> int:
    """``"1G"`` → bytes (K/M/G in powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.upper().rstrip("B").rstrip("I")
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def sizes(text: str) -> list[int]:
    """A comma-separated list of sizes, e.g. ``256M,1G``."""
    return [size(part) for part in text.split(",") if part.strip()]


def human(n: float) -> str:
    return f"{n / MiB:.1f} MiB" if n < 1 << 30 else f"{n / (1 << 30):.2f} GiB"


# Peak RSS through a lean launcher: a child started straight from a benchmark
# reports at least the benchmark's own peak in ru_maxrss (Linux records the
# spawning process's memory high-water mark at exec, and vfork/fork share or
# copy it), which would inflate every number by the heavy parent's. The
# launcher, a bare `python -S`, is what spawns and os.wait4s the command; its
# own small footprint is the floor that `true` shows.
LAUNCHER = """\
import os, sys, time
result, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(result, "w") as f:
    f.write(f"{seconds!r} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(cmd: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None,
        log: Path) -> Row:
    """Run a command; return (seconds, peak RSS in MiB of the command's own process).

    Timed and waited for by the launcher; its output goes to ``log``, shown if it fails.
    """
    result = log.with_suffix(".rusage")
    with open(log, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(result), *cmd],
            env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
            input=stdin.encode() if stdin is not None else None,
            stdin=subprocess.DEVNULL if stdin is None else None, check=False)
    if proc.returncode != 0:
        sys.exit(f"failed (rc={proc.returncode}): {cmd[:4]} …\n{log.read_text(errors='replace')}")
    seconds, maxrss_kib = result.read_text().split()
    return float(seconds), int(maxrss_kib) // 1024


def shell(command: str, *, log: Path) -> Row:
    """:func:`run` for a shell command line (``cat a b > c``)."""
    return run(["/bin/sh", "-c", command], log=log)


def empty(folder: Path) -> None:
    """Remove ``folder``, then write the page cache back, untimed."""
    shutil.rmtree(folder, ignore_errors=True)
    os.sync()


def tree_bytes(folder: Path) -> tuple[int, list[str]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in files), [str(p.relative_to(folder)) for p in files]


def write_random(path: Path, total: int, seed: int) -> None:
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = total
        while left:
            n = min(left, 4 * MiB)
            f.write(rnd.randbytes(n))
            left -= n


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def median(rows: list[Row]) -> float:
    return statistics.median(t for t, _ in rows)


def peak(rows: list[Row]) -> int:
    return max(r for _, r in rows)


def stats_line(name: str, rows: list[Row], nbytes: int | None = None) -> str:
    times = [t for t, _ in rows]
    med = statistics.median(times)
    rate = f"  {nbytes / MiB / med:7.1f} MiB/s" if nbytes is not None else ""
    return (f"  {name:42} median {med:7.2f} s  (min {min(times):6.2f}, max {max(times):6.2f})"
            f"{rate}  peak RSS {max(r for _, r in rows):4d} MiB")


def alternate(r: int, steps: list[Step]) -> list[Step]:
    """Every other round in reverse order, so no tool always goes first."""
    return steps if r % 2 == 0 else steps[::-1]


def workdir(args: argparse.Namespace, prefix: str) -> Path:
    """A fresh folder for one benchmark run: under ``--workdir`` if given,
    else under /work when that exists (a disk, not a small tmpfs /tmp)."""
    base = getattr(args, "workdir", None) or (Path("/work") if Path("/work").is_dir() else None)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def prefault(nbytes: int) -> None:
    """Touch ``nbytes`` of fresh memory and free it again, untimed, just
    before a timed step.

    On a VM whose balloon driver reports free pages to the host (as the
    machines these figures come from do), memory freed more than a couple
    of seconds ago is handed back, and touching it again costs 2-2.5 s per
    GiB: a 1 GiB file written to tmpfs took 2.6 s new and 0.38 s over the
    pages just freed. Without this, whichever tool happened to run after a
    delete was the fast one; with it, each timed step writes its files and
    buffers into pages the guest already holds, as on a physical machine.
    A tmpfs file's pages are plain memory: written, then unlinked.
    """
    if nbytes <= 0:
        return
    folder = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    zeros = bytes(16 * MiB)
    with tempfile.TemporaryFile(dir=folder, prefix="offsite-bench-prefault-") as f:
        for _ in range(0, nbytes, len(zeros)):
            f.write(zeros)


def rss_floor(log: Path) -> None:
    """Say what the launcher's own peak RSS is, so readers can subtract it."""
    _t, floor = run(["true"], log=log)
    print(f"peak RSS below is each command's own, through a launcher whose floor"
          f" (`true`) is {floor} MiB", flush=True)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"




@dataclasses.dataclass(frozen=True)
class Outcome:
    """One part's comparison: offsite's median against its reference's.

    :ivar part: ``put``, ``get``, ``job 256M empty``, ``restore 256M``, …
    :ivar reference: the tool the goal compares with (``rclone``, ``smbclient``).
    :ivar goal: the time ratio offsite/reference must not exceed.
    :ivar offsite_bytes: what offsite sent (None: not measured).
    :ivar bytes_goal: the bytes ratio offsite/reference must not exceed, if any.
    :ivar rss_goal: offsite's peak RSS (MiB) must stay below it, if any.
    """

    part: str
    reference: str
    offsite_s: float
    reference_s: float
    goal: float
    offsite_rss: int
    reference_rss: int
    offsite_bytes: int | None = None
    reference_bytes: int | None = None
    bytes_goal: float | None = None
    rss_goal: int | None = None

    @classmethod
    def of(cls, part: str, reference: str, offsite: list[Row], other: list[Row], *,
           goal: float, **more: Any) -> Outcome:
        """From each tool's rows: medians and peak RSS."""
        return cls(part, reference, median(offsite), median(other), goal, peak(offsite),
                   peak(other), **more)

    @property
    def ratio(self) -> float:
        return self.offsite_s / self.reference_s

    @property
    def bytes_ratio(self) -> float | None:
        if self.offsite_bytes is None or not self.reference_bytes:
            return None
        return self.offsite_bytes / self.reference_bytes

    def goals(self) -> list[tuple[str, bool]]:
        """Each goal in words, and whether it is met."""
        found = [(f"time offsite/{self.reference} {self.ratio:.2f} <= {self.goal}",
                  self.ratio <= self.goal)]
        if self.bytes_goal is not None and self.bytes_ratio is not None:
            found.append((f"bytes {self.bytes_ratio:.2f} <= {self.bytes_goal}",
                          self.bytes_ratio <= self.bytes_goal))
        if self.rss_goal is not None:
            found.append((f"peak RSS {self.offsite_rss} MiB < {self.rss_goal}",
                          self.offsite_rss < self.rss_goal))
        return found

    @property
    def met(self) -> bool:
        return all(ok for _, ok in self.goals())

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio,
                "bytes_ratio": self.bytes_ratio, "met": self.met}

"""Benchmark: offsite's SFTP plugin against rclone, on a real sshd on loopback.

    python bench/sftp.py [--size 1G] [--runs 5]

Needs root, Debian's openssh-server and rclone: the server comes from
``offsite_sftp.testserver.run_sshd()`` (a throw-away sshd with a Unix test
user, stopped and removed at exit). Everything is written to a temporary
folder under /work when that exists (else tempfile's default), never to a
tmpfs /tmp, and removed at exit. Two parts, each run side by side in one
process, alternating the order every round, reporting medians:

1. Throughput: one file of --size random bytes, uploaded by
   * offsite: a fresh ``python bench/sftp.py _put …`` process that connects
     with ``Transport.for_endpoint`` and calls ``session.put(NAME,
     FileSource(FILE))`` (the password travels in an environment variable,
     never in argv);
   * rclone: ``rclone copyto FILE :sftp:PATH/NAME`` (on-the-fly remote from
     environment variables, password obscured);
   * and ``cp FILE`` into the server's folder (same disk) as the local limit.
   The uploaded files are deleted (as root) and the page cache written back
   (untimed) between runs. Peak RSS is read with os.wait4.

2. A job: a destination holding a full image of a max(256 MiB, --size/4)
   volume of random data (1 MiB blocks) and three incrementals that each
   rewrite the same 25% "hot" blocks with new random data. ``offsite run``
   of a job with one sftp target (it sends the full image and the three
   incrementals consolidated into one) against ``rclone copy DEST
   :sftp:TARGET`` (every file). The target folder (and, for offsite, the
   journal) is emptied before every run. Goals: time offsite/rclone <= 0.8,
   bytes sent offsite/rclone <= 0.7.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs: quote medians.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offsite_sftp.testserver import SshdInfo

MiB = 1 << 20
OFFSITE = str(Path(sys.executable).with_name("offsite"))
PASSWORD_ENV = "OFFSITE_BENCH_SFTP_PASSWORD"
JOB, TARGET = "bench", "sftp"
RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1"]
TIME_GOAL, BYTES_GOAL = 0.8, 0.7

Row = tuple[float, int]  # (seconds, peak RSS in MiB)
Step = tuple[str, Callable[[], Row]]


def size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.upper().rstrip("B").rstrip("I")
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def human(n: float) -> str:
    return f"{n / MiB:.1f} MiB" if n < 1 << 30 else f"{n / (1 << 30):.2f} GiB"


# --------------------------------------------------------------------------- the offsite put


def put_main(argv: list[str]) -> None:
    """``_put URL KNOWN_HOSTS FILE NAME``: one session.put, password from $PASSWORD_ENV."""
    from offsite.session import Transport
    from offsite.transport import Endpoint, FileSource

    url, known_hosts, file, name = argv
    password = os.environ.pop(PASSWORD_ENV)
    endpoint = Endpoint.from_url(url, options={"known_hosts": known_hosts},
                                 credentials={"password": password})
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put(name, FileSource(file))
    if placed.size != os.stat(file).st_size:
        sys.exit(f"placed {placed.size} bytes of {os.stat(file).st_size}")


# --------------------------------------------------------------------------- helpers


# Peak RSS through a lean launcher: a child started straight from this process
# reports at least this process's own peak in ru_maxrss (Linux records the
# spawning process's memory high-water mark at exec, and vfork/fork share or
# copy it), which would inflate every number by this heavy parent's. The
# launcher, a bare `python -S`, is what spawns and os.wait4s the command; its
# own small footprint is the floor that `true` shows (printed once).
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


def empty(folder: Path) -> None:
    """Remove ``folder`` (as root), then write the page cache back, untimed."""
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


def stats_line(name: str, rows: list[Row], nbytes: int | None = None) -> str:
    times = [t for t, _ in rows]
    med = statistics.median(times)
    rate = f"  {nbytes / MiB / med:7.1f} MiB/s" if nbytes is not None else ""
    return (f"  {name:42} median {med:7.2f} s  (min {min(times):6.2f}, max {max(times):6.2f})"
            f"{rate}  peak RSS {max(r for _, r in rows):4d} MiB")


def alternate(r: int, steps: list[Step]) -> list[Step]:
    return steps if r % 2 == 0 else steps[::-1]


# --------------------------------------------------------------------------- part 1


def throughput(sshd: SshdInfo, work: Path, total: int, runs: int,
               rclone_env: dict[str, str]) -> float:
    """Upload one file with each tool; return the throughput ratio offsite/rclone."""
    payload = work / "payload.bin"
    print(f"\n[throughput] writing {human(total)} of random bytes to {payload} …", flush=True)
    write_random(payload, total, seed=1)
    os.sync()
    log = work / "cmd.log"
    put_env = {PASSWORD_ENV: sshd.password}
    folders = {"offsite": sshd.root / "put-offsite", "rclone": sshd.root / "put-rclone",
               "cp": sshd.root / "put-cp"}
    name = payload.name

    def offsite_put() -> Row:
        return run([sys.executable, str(Path(__file__).resolve()), "_put",
                    sshd.url("put-offsite"), str(sshd.known_hosts), str(payload), name],
                   env=put_env, log=log)

    def rclone_put() -> Row:
        return run(["rclone", "copyto", str(payload), f":sftp:{folders['rclone']}/{name}",
                    *RCLONE_FLAGS], env=rclone_env, log=log)

    def cp_put() -> Row:
        folders["cp"].mkdir(exist_ok=True)
        return run(["cp", str(payload), str(folders["cp"] / name)], log=log)

    results: dict[str, list[Row]] = {"offsite": [], "rclone": [], "cp": []}
    labels = {"offsite": "offsite session.put (subprocess)", "rclone": "rclone copyto",
              "cp": "cp into the server's folder"}
    steps: list[Step] = [("offsite", offsite_put), ("rclone", rclone_put), ("cp", cp_put)]
    for r in range(runs):
        for key, step in alternate(r, steps):
            empty(folders[key])
            results[key].append(step())
            got = (folders[key] / name).stat().st_size
            if got != total:
                sys.exit(f"{key}: uploaded {got} bytes of {total}")
        order = " → ".join(k for k, _ in alternate(r, steps))
        print(f"  round {r + 1}/{runs} done ({order})", flush=True)
    for folder in folders.values():
        empty(folder)
    payload.unlink()

    print(f"\n[throughput] upload one {human(total)} file ({runs} runs)")
    for key in ("offsite", "rclone"):
        print(stats_line(labels[key], results[key], total))
    print(stats_line(labels["cp"] + " (local limit)", results["cp"], total))
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    ratio = med["rclone"] / med["offsite"]
    print(f"  throughput ratio offsite/rclone: {ratio:.2f}"
          f"   (offsite at {med['cp'] / med['offsite']:.0%} of the cp limit,"
          f" rclone at {med['cp'] / med['rclone']:.0%})")
    return ratio


# --------------------------------------------------------------------------- part 2


def build_destination(work: Path, vol_size: int) -> Path:
    """A full image and three incrementals rewriting the same 25% hot blocks."""
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
    hot = sorted(rnd.sample(range(blocks), blocks // 4))
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


def job(sshd: SshdInfo, work: Path, total: int, runs: int,
        rclone_env: dict[str, str]) -> tuple[float, float]:
    """``offsite run`` against ``rclone copy``; return the (time, bytes) ratios."""
    dest = build_destination(work, max(256 * MiB, total // 4 // MiB * MiB))
    cfgdir = work / "config"
    cfgdir.mkdir(mode=0o700)
    cfg = cfgdir / "offsite.toml"
    target = sshd.root / "job-target"
    # json.dumps gives valid TOML basic strings for these paths.
    cfg.write_text(
        f"[[job]]\nname = {json.dumps(JOB)}\ndestination = {json.dumps(str(dest))}\n\n"
        f"  [[job.target]]\n  name = {json.dumps(TARGET)}\n"
        f"  url = {json.dumps(sshd.url(target.name))}\n  retries = 0\n"
        f"  [job.target.options]\n  known_hosts = {json.dumps(str(sshd.known_hosts))}\n"
    )
    log = work / "cmd.log"
    run([OFFSITE, "--config", str(cfg), "credentials", "set", f"{JOB}.{TARGET}", "--stdin"],
        stdin=json.dumps({"password": sshd.password}), log=log)
    print(f"  {log.read_text().strip()}")

    def offsite_run() -> Row:
        for suffix in ("", "-wal", "-shm"):
            (cfgdir / f"journal.sqlite{suffix}").unlink(missing_ok=True)
        return run([OFFSITE, "--config", str(cfg), "run"], log=log)

    def rclone_copy() -> Row:
        return run(["rclone", "copy", str(dest), f":sftp:{target}", *RCLONE_FLAGS],
                   env=rclone_env, log=log)

    dest_bytes, dest_files = tree_bytes(dest)
    results: dict[str, list[Row]] = {"offsite": [], "rclone": []}
    sent: dict[str, tuple[int, list[str]]] = {}
    steps: list[Step] = [("offsite", offsite_run), ("rclone", rclone_copy)]
    for r in range(runs):
        for key, step in alternate(r, steps):
            empty(target)
            results[key].append(step())
            at_target = tree_bytes(target)
            if key in sent and sent[key] != at_target:
                sys.exit(f"{key}: the target differs between runs: {at_target} vs {sent[key]}")
            sent[key] = at_target
        order = " → ".join(k for k, _ in alternate(r, steps))
        print(f"  round {r + 1}/{runs} done ({order})", flush=True)
    empty(target)
    if sent["rclone"] != (dest_bytes, dest_files):
        sys.exit(f"rclone's copy {sent['rclone']} differs from the destination "
                 f"{(dest_bytes, dest_files)}")

    print(f"\n[job] replicate the destination to an empty target ({runs} runs)")
    print(stats_line("offsite run", results["offsite"]))
    print(stats_line("rclone copy", results["rclone"]))
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    time_ratio = med["offsite"] / med["rclone"]
    bytes_ratio = sent["offsite"][0] / dest_bytes
    print(f"  time ratio offsite/rclone:  {time_ratio:.2f}  (goal <= {TIME_GOAL})")
    print(f"  bytes sent offsite: {sent['offsite'][0] / MiB:8.1f} MiB"
          f"  ({', '.join(sent['offsite'][1])})")
    print(f"  bytes sent rclone:  {dest_bytes / MiB:8.1f} MiB  ({', '.join(dest_files)})")
    print(f"  bytes ratio offsite/rclone: {bytes_ratio:.2f}  (goal <= {BYTES_GOAL})")
    print(f"  offsite run peak RSS: {max(r for _, r in results['offsite'])} MiB")
    return time_ratio, bytes_ratio


# --------------------------------------------------------------------------- main


def main() -> None:
    if sys.argv[1:2] == ["_put"]:
        put_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1G", type=size, help="throughput file size (1G)")
    parser.add_argument("--runs", default=5, type=int, help="rounds per part (5)")
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        sys.exit("this benchmark needs rclone: apt-get install rclone")

    from offsite_sftp.testserver import run_sshd

    base = Path("/work") if Path("/work").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-sftp-", dir=base))
    try:
        work.chmod(0o755)  # the server's folder is inside: its user must traverse
        with run_sshd(base=work) as sshd:
            rclone_env = sshd.rclone_env()
            assert rclone_env is not None
            version = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                                     check=True).stdout.splitlines()[0]
            paramiko = importlib.metadata.version("paramiko")
            print(f"sshd on {sshd.host}:{sshd.port}, folder {sshd.root}; {version}, "
                  f"paramiko {paramiko}, Python {sys.version.split()[0]}, "
                  f"{os.cpu_count()} CPUs", flush=True)
            _t, floor = run(["true"], log=work / "cmd.log")
            print(f"peak RSS below is each command's own, through a launcher whose floor"
                  f" (`true`) is {floor} MiB", flush=True)
            tput = throughput(sshd, work, args.size, args.runs, rclone_env)
            time_ratio, bytes_ratio = job(sshd, work, args.size, args.runs, rclone_env)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("\nsummary")
    print(f"  throughput offsite/rclone (one {human(args.size)} file): {tput:.2f}  (no goal)")
    print(f"  job time   offsite/rclone: {time_ratio:.2f}  goal <= {TIME_GOAL}:"
          f" {verdict(time_ratio <= TIME_GOAL)}")
    print(f"  job bytes  offsite/rclone: {bytes_ratio:.2f}  goal <= {BYTES_GOAL}:"
          f" {verdict(bytes_ratio <= BYTES_GOAL)}")


if __name__ == "__main__":
    main()

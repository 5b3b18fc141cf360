"""Benchmark: offsite's SFTP plugin against rclone, on a real sshd on loopback.

    python bench/sftp.py [--size 1G] [--volumes 256M,1G] [--runs 5] [--skip-put]

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
   (untimed) between runs. Peak RSS is read with os.wait4. Goals:
   throughput offsite/rclone >= 1.0, peak RSS < 100 MiB.

2. A job, for each of --volumes: a destination holding a full image of a
   volume of random data (1 MiB blocks) and three incrementals that each
   rewrite the same 25% "hot" blocks with new random data. ``offsite run``
   of a job with one sftp target (it sends the full image and the three
   incrementals consolidated into one) against ``rclone copy DEST
   :sftp:TARGET`` (every file). The target folder (and, for offsite, the
   journal) is emptied before every run. Goals: time offsite/rclone <= 0.8,
   bytes sent offsite/rclone <= 0.7. Two volume sizes by default, because
   the time ratio depends on scale: an idle offsite run takes about 0.16 s
   (Python start-up, imports, SSH login), rclone about 0.12 s; per byte
   offsite sends less and about as fast.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs: quote medians.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offsite_sftp.testserver import SshdInfo

from measure import (
    MiB,
    OffsiteJob,
    Row,
    Step,
    alternate,
    arguments,
    compare_jobs,
    empty,
    human,
    job_summary,
    rss_floor,
    run,
    stats_line,
    tree_bytes,
    verdict,
    workdir,
    write_random,
)

PASSWORD_ENV = "OFFSITE_BENCH_SFTP_PASSWORD"
TARGET = "sftp"
RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1"]
TIME_GOAL, BYTES_GOAL = 0.8, 0.7



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


def job(sshd: SshdInfo, work: Path, volume: int, runs: int,
        rclone_env: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """``offsite run`` against ``rclone copy``: per scenario the (time, bytes)
    ratios and offsite's peak RSS."""
    target = sshd.root / f"job-target-{volume // MiB}M"
    job = OffsiteJob(work, volume, TARGET, sshd.url(target.name),
                     {"known_hosts": str(sshd.known_hosts)}, {"password": sshd.password})

    def rclone_copy() -> Row:
        return run(["rclone", "copy", str(job.dest), f":sftp:{target}", *RCLONE_FLAGS],
                   env=rclone_env, log=job.log)

    def clear() -> None:
        empty(target)
        job.forget()

    return compare_jobs(job, rclone_copy, runs,
                        clear=clear, at_target=lambda: tree_bytes(target),
                        rclone="rclone copy", time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


# --------------------------------------------------------------------------- main


def main() -> None:
    if sys.argv[1:2] == ["_put"]:
        put_main(sys.argv[2:])
        return
    args = arguments(__doc__)

    from offsite_sftp.testserver import run_sshd

    work = workdir(args, "offsite-bench-sftp-")
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
            rss_floor(work / "cmd.log")
            tput = None if args.skip_put else throughput(sshd, work, args.size, args.runs,
                                                         rclone_env)
            jobs = {v: job(sshd, work, v, args.runs, rclone_env) for v in args.volumes}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nsummary")
    if tput is not None:
        print(f"  throughput offsite/rclone (one {human(args.size)} file): {tput:.2f}"
              f"  goal >= 1.0: {verdict(tput >= 1.0)}")
    job_summary(jobs, time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


if __name__ == "__main__":
    main()

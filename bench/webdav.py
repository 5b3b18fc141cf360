"""Benchmark: offsite's WebDAV plugin against rclone, on wsgidav on loopback.

    python bench/webdav.py [--size 1G] [--volumes 256M,1G] [--runs 5] [--skip-put] [--tls]

Needs wsgidav, cheroot (offsite-webdav's ``test`` extra) and rclone: the
server comes from ``offsite_webdav.testserver.run_wsgidav()`` (wsgidav on
cheroot, threads of this process, on a free 127.0.0.1 port; the offsite
and rclone uploads run as processes of their own). With ``--tls`` it serves
HTTPS with a certificate of a throw-away CA, which offsite gets as its
``ca_file`` option and rclone as ``--ca-cert``. Everything is written to a
temporary folder under /work when that exists (else tempfile's default),
never to a tmpfs /tmp, and removed at exit. Two parts, each run side by
side, alternating the order every round, reporting medians:

1. Throughput: one file of --size random bytes, uploaded by
   * offsite: a fresh ``python bench/webdav.py _put …`` process that
     imports the webdav plugin only (as ``offsite run`` does), connects
     with ``Transport.for_endpoint`` and calls ``session.put(NAME,
     FileSource(FILE))`` (PUT to a partial name, PROPFIND, MOVE; the
     password travels in an environment variable, never in argv);
   * rclone: ``rclone copyto FILE :webdav:PATH/NAME`` (on-the-fly remote
     from environment variables, password obscured);
   * and ``cp FILE`` into the server's folder (same disk) as the local limit.
   Peak RSS is read with os.wait4. Goals: throughput offsite/rclone >= 1.0,
   peak RSS < 100 MiB.

2. A job, for each of --volumes: a destination holding a full image of a
   volume of random data and three incrementals that each rewrite the same
   25% "hot" blocks. ``offsite run`` of a job with one webdav target (it
   sends the full image and the three incrementals consolidated into one)
   against ``rclone copy DEST :webdav:TARGET`` (every file). The target
   folder (and, for offsite, the journal) is emptied before every run.
   Goals: time offsite/rclone <= 0.8, bytes sent offsite/rclone <= 0.7.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs (wsgidav, pure Python, is the slowest part):
quote medians.
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
    from offsite_webdav.testserver import DavInfo

from measure import (
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

PASSWORD_ENV = "OFFSITE_BENCH_WEBDAV_PASSWORD"
TARGET = "dav"
RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1"]
TIME_GOAL, BYTES_GOAL = 0.8, 0.7


def put_main(argv: list[str]) -> None:
    """``_put URL CA FILE NAME``: one session.put, password from $PASSWORD_ENV.

    Only the webdav plugin is imported, as ``offsite run`` imports only its
    targets' plugins (all of them cost 0.2 s of start-up: boto3, paramiko…).
    """
    from offsite.plugins import discover
    from offsite.session import Transport
    from offsite.transport import Endpoint, FileSource

    url, ca_file, file, name = argv
    password = os.environ.pop(PASSWORD_ENV)
    endpoint = Endpoint.from_url(url, options={"ca_file": ca_file} if ca_file else {},
                                 credentials={"password": password})
    registry = discover({endpoint.scheme})
    with Transport.for_endpoint(endpoint, registry).connect(endpoint) as session:
        placed = session.put(name, FileSource(file))
    if placed.size != os.stat(file).st_size:
        sys.exit(f"placed {placed.size} bytes of {os.stat(file).st_size}")


def throughput(dav: DavInfo, work: Path, total: int, runs: int,
               rclone_env: dict[str, str]) -> float:
    """Upload one file with each tool; return the throughput ratio offsite/rclone."""
    payload = work / "payload.bin"
    print(f"\n[throughput] writing {human(total)} of random bytes to {payload} …", flush=True)
    write_random(payload, total, seed=1)
    os.sync()
    log = work / "cmd.log"
    folders = {"offsite": dav.root / "put-offsite", "rclone": dav.root / "put-rclone",
               "cp": dav.root / "put-cp"}
    name = payload.name
    ca = str(dav.ca_file or "")

    def offsite_put() -> Row:
        return run([sys.executable, str(Path(__file__).resolve()), "_put",
                    dav.url("put-offsite"), ca, str(payload), name],
                   env={PASSWORD_ENV: dav.password}, log=log)

    def rclone_put() -> Row:
        return run(["rclone", "copyto", str(payload), f":webdav:put-rclone/{name}",
                    *RCLONE_FLAGS, *dav.rclone_flags()], env=rclone_env, log=log)

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


def job(dav: DavInfo, work: Path, volume: int, runs: int,
        rclone_env: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """``offsite run`` against ``rclone copy``: per scenario the (time, bytes)
    ratios and offsite's peak RSS."""
    from measure import MiB, OffsiteJob

    name = f"job-target-{volume // MiB}M"
    target = dav.root / name
    options = {"ca_file": str(dav.ca_file)} if dav.ca_file else {}
    job = OffsiteJob(work, volume, TARGET, dav.url(name), options, {"password": dav.password})

    def rclone_copy() -> Row:
        return run(["rclone", "copy", str(job.dest), f":webdav:{name}", *RCLONE_FLAGS,
                    *dav.rclone_flags()], env=rclone_env, log=job.log)

    def clear() -> None:
        empty(target)
        job.forget()

    return compare_jobs(job, rclone_copy, runs,
                        clear=clear, at_target=lambda: tree_bytes(target),
                        rclone="rclone copy", time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


def main() -> None:
    if sys.argv[1:2] == ["_put"]:
        put_main(sys.argv[2:])
        return
    args = arguments(__doc__, tls=True)

    from offsite.testing.certs import make_certs
    from offsite_webdav.testserver import run_wsgidav

    work = workdir(args, "offsite-bench-webdav-")
    try:
        certs = make_certs(work / "tls") if args.tls else None
        with run_wsgidav(work / "server", certs=certs) as dav:
            rclone_env = dav.rclone_env()
            assert rclone_env is not None
            version = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                                     check=True).stdout.splitlines()[0]
            libs = ", ".join(f"{p} {importlib.metadata.version(p)}"
                             for p in ("wsgidav", "cheroot", "webdavclient3", "requests"))
            print(f"wsgidav at {dav.base_url}, folder {dav.root}; {version}, {libs}, "
                  f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
            rss_floor(work / "cmd.log")
            tput = None if args.skip_put else throughput(dav, work, args.size, args.runs,
                                                         rclone_env)
            jobs = {v: job(dav, work, v, args.runs, rclone_env)
                    for v in args.volumes}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nsummary ({'HTTPS' if args.tls else 'HTTP'})")
    if tput is not None:
        print(f"  throughput offsite/rclone (one {human(args.size)} file): {tput:.2f}"
              f"  goal >= 1.0: {verdict(tput >= 1.0)}")
    job_summary(jobs, time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


if __name__ == "__main__":
    main()

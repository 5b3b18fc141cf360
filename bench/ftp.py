"""Benchmark: offsite's FTP plugin against rclone, on a pyftpdlib server on loopback.

    python bench/ftp.py [--size 1G] [--volumes 256M,1G] [--runs 3] [--skip-put]
                        [--modes ftp,ftps]

Needs rclone and the FTP plugin's test extra (pyftpdlib, pyOpenSSL). The
server is ``python -m offsite_ftp.testserver`` in a process of its own, one
per mode: plain FTP, then explicit FTPS (TLS required on control and data
connections, a throw-away CA that both clients are told to trust: offsite
through ``ca_file``, rclone through ``SSL_CERT_FILE``; rclone needs
``disable_tls13`` or its uploads arrive cut short). pyftpdlib is one Python
process serving everything: it is often the bottleneck, so the CPU seconds it
spent are printed beside each tool's time. Everything is written to a
temporary folder under /work when that exists, and removed at exit.

1. Throughput: one file of --size random bytes, uploaded by offsite (a fresh
   ``python bench/ftp.py _put …`` process: ``session.put(NAME,
   FileSource(FILE))``, the password in an environment variable), by
   ``rclone copyto``, and by ``cp`` into the server's folder (the local
   limit). Goal: offsite's time at most rclone's; peak RSS < 100 MiB.
2. A job, for each of --volumes: the full image of a volume and three
   incrementals (see bench/measure.py); ``offsite run`` (full + one
   consolidation) against ``rclone copy`` (every file). Goal: time
   offsite/rclone <= 0.8.

Timings are wall-clock with client and server on the same CPUs, on a machine
shared with other work: quote medians.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

PASSWORD_ENV = "OFFSITE_BENCH_FTP_PASSWORD"
RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1"]
TIME_GOAL, BYTES_GOAL = 0.8, 0.7
TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the offsite put


def put_main(argv: list[str]) -> None:
    """``_put URL OPTIONS_JSON FILE NAME``: one session.put, password from $PASSWORD_ENV."""
    from offsite.session import Transport
    from offsite.transport import Endpoint, FileSource

    url, options, file, name = argv
    password = os.environ.pop(PASSWORD_ENV)
    endpoint = Endpoint.from_url(url, options=json.loads(options),
                                 credentials={"password": password})
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put(name, FileSource(file))
    if placed.size != os.stat(file).st_size:
        sys.exit(f"placed {placed.size} bytes of {os.stat(file).st_size}")


# --------------------------------------------------------------------------- the server


class Server:
    """The test server in its own process, and what it needs from clients."""

    def __init__(self, info: dict[str, Any], pid: int) -> None:
        self.info, self.pid = info, pid
        self.root = Path(info["root"])
        self.tls = info["tls"] == "required"
        self.scheme = "ftps" if self.tls else "ftp"
        self.options = {"ca_file": info["ca_file"]} if self.tls else {}

    def url(self, folder: str) -> str:
        i = self.info
        return f"{self.scheme}://{i['user']}@{i['host']}:{i['port']}/{folder}"

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rclone_remote(self, path: str) -> str:
        from offsite_ftp.testserver import FtpdInfo

        i = self.info
        obscured = subprocess.run(["rclone", "obscure", i["password"]], capture_output=True,
                                  text=True, check=True).stdout.strip()
        ftpd = FtpdInfo(i["host"], i["port"], self.root, i["user"], i["password"], i["tls"],
                        i["ca_file"])
        return ftpd.rclone_remote(path, obscured)

    def rclone_env(self) -> dict[str, str]:
        env = {"RCLONE_CONFIG": os.devnull}
        if self.tls:
            env["SSL_CERT_FILE"] = self.info["ca_file"]
        return env


@contextmanager
def serve(home: Path, tls: bool) -> Iterator[Server]:
    home.mkdir()
    cmd = [sys.executable, "-m", "offsite_ftp.testserver", str(home), "--buffer", str(MiB)]
    proc = subprocess.Popen(cmd + (["--tls"] if tls else []), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            sys.exit("the test server did not start")
        yield Server(json.loads(line), proc.pid)
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(30)


def with_cpu(server: Server, step: Callable[[], Row], cpu: list[float]) -> Callable[[], Row]:
    def timed() -> Row:
        before = server.cpu()
        row = step()
        cpu.append(server.cpu() - before)
        return row
    return timed


# --------------------------------------------------------------------------- part 1


def throughput(server: Server, work: Path, payload: Path, total: int, runs: int) -> float:
    """Upload one file with each tool; return the time ratio offsite/rclone."""
    log = work / "cmd.log"
    folders = {k: server.root / f"put-{k}" for k in ("offsite", "rclone", "cp")}
    name = payload.name
    cpu: dict[str, list[float]] = {k: [] for k in folders}

    def offsite_put() -> Row:
        return run([sys.executable, str(Path(__file__).resolve()), "_put",
                    server.url("put-offsite"), json.dumps(server.options), str(payload), name],
                   env={PASSWORD_ENV: server.info["password"]}, log=log)

    def rclone_put() -> Row:
        return run(["rclone", "copyto", str(payload),
                    server.rclone_remote(f"put-rclone/{name}"), *RCLONE_FLAGS],
                   env=server.rclone_env(), log=log)

    def cp_put() -> Row:
        folders["cp"].mkdir(exist_ok=True)
        return run(["cp", str(payload), str(folders["cp"] / name)], log=log)

    results: dict[str, list[Row]] = {k: [] for k in folders}
    steps: list[Step] = [("offsite", with_cpu(server, offsite_put, cpu["offsite"])),
                         ("rclone", with_cpu(server, rclone_put, cpu["rclone"])),
                         ("cp", cp_put)]
    for r in range(runs):
        for key, step in alternate(r, steps):
            empty(folders[key])
            results[key].append(step())
            got = (folders[key] / name).stat().st_size
            if got != total:
                sys.exit(f"{key}: uploaded {got} bytes of {total}")
        print(f"  round {r + 1}/{runs} done", flush=True)
    for folder in folders.values():
        empty(folder)

    print(f"\n[throughput, {server.scheme}] upload one {human(total)} file ({runs} runs)")
    labels = {"offsite": "offsite session.put (subprocess)", "rclone": "rclone copyto"}
    for key, label in labels.items():
        print(stats_line(label, results[key], total)
              + f"  server CPU {statistics.median(cpu[key]):.2f} s")
    print(stats_line("cp into the server's folder (local limit)", results["cp"], total))
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    ratio = med["offsite"] / med["rclone"]
    print(f"  time ratio offsite/rclone: {ratio:.2f}  (goal <= 1.0)")
    return ratio


# --------------------------------------------------------------------------- part 2


def job(server: Server, work: Path, volume: int, runs: int
        ) -> dict[str, tuple[float, float, int]]:
    target = server.root / f"job-{volume // MiB}M"
    job = OffsiteJob(work / server.scheme, volume, "ftp", server.url(target.name),
                     server.options, {"password": server.info["password"]})

    def rclone_copy() -> Row:
        return run(["rclone", "copy", str(job.dest), server.rclone_remote(target.name),
                    *RCLONE_FLAGS], env=server.rclone_env(), log=job.log)

    def clear() -> None:
        empty(target)
        job.forget()

    return compare_jobs(job, rclone_copy, runs, clear=clear,
                        at_target=lambda: tree_bytes(target), rclone="rclone copy",
                        time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


# --------------------------------------------------------------------------- main


def main() -> None:
    if sys.argv[1:2] == ["_put"]:
        put_main(sys.argv[2:])
        return
    modes = ["ftp", "ftps"]
    if "--modes" in sys.argv:
        i = sys.argv.index("--modes")
        modes = sys.argv[i + 1].split(",")
        del sys.argv[i:i + 2]
    args = arguments(__doc__)
    work = workdir(args, "offsite-bench-ftp-")
    summary: list[tuple[str, float | None, dict[int, Any]]] = []
    try:
        version = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()[0]
        print(f"{version}, pyftpdlib {importlib.metadata.version('pyftpdlib')}, "
              f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
        rss_floor(work / "cmd.log")
        payload = work / "payload.bin"
        if not args.skip_put:
            print(f"\n[throughput] writing {human(args.size)} of random bytes …", flush=True)
            write_random(payload, args.size, seed=1)
            os.sync()
        for mode in modes:
            (work / mode).mkdir()
            with serve(work / f"{mode}-home", tls=mode == "ftps") as server:
                print(f"\n=== {mode}: pyftpdlib on {server.info['host']}:"
                      f"{server.info['port']} (pid {server.pid})", flush=True)
                tput = None if args.skip_put else throughput(server, work, payload,
                                                             args.size, args.runs)
                jobs = {v: job(server, work, v, args.runs) for v in args.volumes}
                summary.append((mode, tput, jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nsummary")
    for mode, tput, jobs in summary:
        print(f" {mode}:")
        if tput is not None:
            print(f"  one {human(args.size)} file: time offsite/rclone {tput:.2f}"
                  f"  (goal <= 1.0: {verdict(tput <= 1.0)})")
        job_summary(jobs, time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


if __name__ == "__main__":
    main()

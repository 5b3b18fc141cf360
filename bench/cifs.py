"""Benchmark: offsite's SMB plugin against Samba's smbclient and rclone, on a real smbd on loopback.

    python bench/cifs.py [--size 1G] [--volumes 1G] [--runs 3] [--skip-put]
                         [--modes signed,encrypted]

Needs root, Debian's samba, smbclient and rclone: the server comes from
``offsite_cifs.testserver.run_smbd()`` (a throw-away smbd with a Unix test
user, stopped and removed at exit). Everything is written to a temporary
folder under /work when that exists (else tempfile's default), never to a
tmpfs /tmp, and removed at exit. Each part runs once per mode: "signed"
(share ``backup``: offsite always signs, smbclient is told to with
``--client-protection=sign``; rclone 1.60 does NOT sign: it fails its writes
with "signing required" against a server that mandates signing, so this
server (``server signing = default``) lets it go unsigned, which favours
rclone) and "encrypted" (share ``sealed``, ``smb encrypt = required``: the
server makes every client encrypt, so all three tools pay for the same
thing). Side by side, alternating the order every round, medians reported:

1. Throughput: one file of --size random bytes, uploaded by
   * offsite: a fresh ``python bench/cifs.py _put …`` process that connects
     with ``Transport.for_endpoint`` and calls ``session.put(NAME,
     FileSource(FILE))`` (the password travels in an environment variable,
     never in argv);
   * smbclient (Samba's C client): ``smbclient //HOST/SHARE -c 'put FILE
     NAME'`` (password in $PASSWD);
   * rclone: ``rclone copyto FILE :smb:SHARE/NAME`` (on-the-fly remote from
     environment variables, password obscured);
   * and ``cp FILE`` into the share's folder (same disk) as the local limit.
   Goal: offsite's time at most the faster reference's; peak RSS < 100 MiB.

2. A job, for each of --volumes: a destination holding a full image of a
   volume of random data (1 MiB blocks) and three incrementals that each
   rewrite the same 25% "hot" blocks. ``offsite run`` of a job with one smb
   target (the full image and the three incrementals consolidated into one)
   against ``rclone copy DEST :smb:SHARE/TARGET`` (every file). Goals: time
   offsite/rclone <= 0.8, bytes offsite/rclone <= 0.7.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs: quote medians.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offsite_cifs.testserver import SmbdInfo

from measure import (
    OffsiteJob,
    Row,
    Step,
    alternate,
    compare_jobs,
    empty,
    human,
    job_summary,
    rss_floor,
    run,
    size,
    sizes,
    stats_line,
    tree_bytes,
    verdict,
    workdir,
    write_random,
)

PASSWORD_ENV = "OFFSITE_BENCH_SMB_PASSWORD"
TARGET = "smb"
RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1"]
TIME_GOAL, BYTES_GOAL = 0.8, 0.7
#: mode → the share it writes to, and smbclient's --client-protection (see the module doc).
MODES = {"signed": ("backup", "sign"), "encrypted": ("sealed", "encrypt")}


# --------------------------------------------------------------------------- the offsite put


def put_main(argv: list[str]) -> None:
    """``_put URL FILE NAME``: one session.put, password from $PASSWORD_ENV."""
    from offsite.session import Transport
    from offsite.transport import Endpoint, FileSource

    url, file, name = argv
    password = os.environ.pop(PASSWORD_ENV)
    endpoint = Endpoint.from_url(url, credentials={"password": password})
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put(name, FileSource(file))
    if placed.size != os.stat(file).st_size:
        sys.exit(f"placed {placed.size} bytes of {os.stat(file).st_size}")


# --------------------------------------------------------------------------- part 1


def throughput(smbd: SmbdInfo, share: str, protection: str, work: Path, payload: Path,
               total: int, runs: int,
               rclone_env: dict[str, str]) -> dict[str, float]:
    """Upload one file with each tool; return the median seconds per tool."""
    log = work / "cmd.log"
    folders = {k: smbd.root / f"put-{k}" for k in ("offsite", "smbclient", "rclone", "cp")}
    name = payload.name

    def offsite_put() -> Row:
        return run([sys.executable, str(Path(__file__).resolve()), "_put",
                    smbd.url("put-offsite", share=share), str(payload), name],
                   env={PASSWORD_ENV: smbd.password}, log=log)

    def smbclient_put() -> Row:
        # smbclient cannot make the folder and put in one go without noise:
        # the folder is made (untimed) beforehand, as root, for the user.
        return run(["smbclient", f"//{smbd.host}/{share}", "-p", str(smbd.port),
                    "-U", smbd.user, "-s", "/dev/null", "-m", "SMB3",
                    f"--client-protection={protection}",
                    "-c", f"put {payload} put-smbclient/{name}"],
                   env={"PASSWD": smbd.password}, log=log)

    def rclone_put() -> Row:
        return run(["rclone", "copyto", str(payload), f":smb:{share}/put-rclone/{name}",
                    *RCLONE_FLAGS], env=rclone_env, log=log)

    def cp_put() -> Row:
        return run(["cp", str(payload), str(folders["cp"] / name)], log=log)

    steps: list[Step] = [("offsite", offsite_put), ("smbclient", smbclient_put),
                         ("rclone", rclone_put), ("cp", cp_put)]
    results: dict[str, list[Row]] = {k: [] for k, _ in steps}
    for r in range(runs):
        for key, step in alternate(r, steps):
            empty(folders[key])
            if key in ("smbclient", "cp"):
                folders[key].mkdir()
                shutil.chown(folders[key], smbd.user)
            results[key].append(step())
            got = (folders[key] / name).stat().st_size
            if got != total:
                sys.exit(f"{key}: uploaded {got} bytes of {total}")
        order = " → ".join(k for k, _ in alternate(r, steps))
        print(f"  round {r + 1}/{runs} done ({order})", flush=True)
    for folder in folders.values():
        empty(folder)

    labels = {"offsite": "offsite session.put (subprocess)",
              "smbclient": "smbclient -c put (Samba's C client)",
              "rclone": "rclone copyto", "cp": "cp into the share's folder (local limit)"}
    print(f"\n[throughput] upload one {human(total)} file over SMB ({share}, {runs} runs)")
    for key, _ in steps:
        print(stats_line(labels[key], results[key], total))
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    faster = min(med["smbclient"], med["rclone"])
    print(f"  time offsite / smbclient: {med['offsite'] / med['smbclient']:.2f}"
          f"   offsite / rclone: {med['offsite'] / med['rclone']:.2f}"
          f"   offsite / the faster: {med['offsite'] / faster:.2f} (goal <= 1.0)")
    print(f"  offsite at {med['cp'] / med['offsite']:.0%} of the cp limit, smbclient at "
          f"{med['cp'] / med['smbclient']:.0%}, rclone at {med['cp'] / med['rclone']:.0%}")
    med["offsite_rss"] = max(r for _, r in results["offsite"])
    return med


# --------------------------------------------------------------------------- part 2


def job(smbd: SmbdInfo, share: str, work: Path, volume: int, runs: int,
        rclone_env: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """``offsite run`` against ``rclone copy``: per scenario the (time, bytes)
    ratios and offsite's peak RSS."""
    name = f"job-{share}-{volume >> 20}M"
    target = smbd.root / name
    job = OffsiteJob(work / share, volume, TARGET, smbd.url(name, share=share), {},
                     {"password": smbd.password})

    def rclone_copy() -> Row:
        return run(["rclone", "copy", str(job.dest), f":smb:{share}/{name}", *RCLONE_FLAGS],
                   env=rclone_env, log=job.log)

    def clear() -> None:
        empty(target)
        job.forget()

    return compare_jobs(job, rclone_copy, runs,
                        clear=clear, at_target=lambda: tree_bytes(target),
                        rclone="rclone copy", time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


# --------------------------------------------------------------------------- main


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1G", type=size, help="throughput file size (1G)")
    parser.add_argument("--volumes", default="1G", type=sizes,
                        help="job volume sizes, comma-separated (1G)")
    parser.add_argument("--runs", default=3, type=int, help="rounds per part (3)")
    parser.add_argument("--skip-put", action="store_true", help="only the job part")
    parser.add_argument("--skip-job", action="store_true", help="only the throughput part")
    parser.add_argument("--modes", default="signed,encrypted",
                        help="signed, encrypted or both (signed,encrypted)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the files and the share go (default: under /work)")
    args = parser.parse_args()
    for tool in ("rclone", "smbclient"):
        if shutil.which(tool) is None:
            sys.exit(f"this benchmark needs {tool}: apt-get install {tool}")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    return args


def main() -> None:
    if sys.argv[1:2] == ["_put"]:
        put_main(sys.argv[2:])
        return
    args = arguments()

    from offsite_cifs.testserver import run_smbd

    work = workdir(args, "offsite-bench-cifs-")
    puts: dict[str, dict[str, float]] = {}
    jobs: dict[str, dict[int, dict[str, tuple[float, float, int]]]] = {}
    try:
        work.chmod(0o755)  # the share's folder is inside: its user must traverse
        # Signing as the client asks: rclone's SMB client (go-smb2) fails its
        # writes with "signing required" where the server mandates it.
        with run_smbd(base=work, signing="default") as smbd:
            rclone_env = smbd.rclone_env()
            assert rclone_env is not None
            versions = [subprocess.run([tool, "--version"], capture_output=True, text=True,
                                       check=True).stdout.splitlines()[0]
                        for tool in ("rclone", "smbclient")]
            print(f"smbd on {smbd.host}:{smbd.port}, folder {smbd.root}; "
                  f"{'; '.join(versions)}; smbprotocol "
                  f"{importlib.metadata.version('smbprotocol')}, Python "
                  f"{sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
            rss_floor(work / "cmd.log")
            payload = work / "payload.bin"
            if not args.skip_put:
                print(f"\n[throughput] writing {human(args.size)} of random bytes to "
                      f"{payload} …", flush=True)
                write_random(payload, args.size, seed=1)
                os.sync()
            for mode in args.modes:
                share, protection = MODES[mode]
                print(f"\n===== {mode} (share {share}) =====", flush=True)
                if not args.skip_put:
                    puts[mode] = throughput(smbd, share, protection, work, payload, args.size,
                                            args.runs,
                                            rclone_env)
                if not args.skip_job:
                    (work / share).mkdir()
                    jobs[mode] = {v: job(smbd, share, work, v, args.runs, rclone_env)
                                  for v in args.volumes}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nsummary")
    for mode, med in puts.items():
        faster = min(med["smbclient"], med["rclone"])
        ratio = med["offsite"] / faster
        print(f"  {mode}: one {human(args.size)} file: offsite {med['offsite']:.2f} s, "
              f"smbclient {med['smbclient']:.2f} s, rclone {med['rclone']:.2f} s, "
              f"cp {med['cp']:.2f} s; offsite/faster {ratio:.2f} "
              f"(goal <= 1.0: {verdict(ratio <= 1.0)}); offsite peak RSS "
              f"{med['offsite_rss']:.0f} MiB (goal < 100: {verdict(med['offsite_rss'] < 100)})")
    for mode, per in jobs.items():
        print(f"  {mode}:")
        job_summary(per, time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


if __name__ == "__main__":
    main()

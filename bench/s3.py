"""Benchmark: offsite's S3 plugin against rclone (and boto3), on moto's S3 server on loopback.

    python bench/s3.py [--size 1G] [--volumes 256M,1G] [--runs 5] [--skip-put] [--tls]

Needs moto[server], boto3 and rclone: the server comes from
``offsite_s3.testserver.run_moto()`` (moto in a child process on a free
127.0.0.1 port, any credentials accepted, stopped at exit); one bucket holds
everything and is deleted at exit. Everything is written to a temporary
folder under /work when that exists (else tempfile's default), never to a
tmpfs /tmp, and removed at exit; moto spools its objects there too. Two
parts, each run side by side in one process, alternating the order every
round, reporting medians:

1. Throughput: one file of --size random bytes, uploaded to
   ``BUCKET/bench/NAME`` by
   * offsite: a fresh ``python bench/s3.py _put …`` process that connects
     with ``Transport.for_endpoint`` and calls ``session.put(NAME,
     FileSource(FILE))`` (the keys travel in an environment variable, never
     in argv);
   * rclone: ``rclone copyto FILE :s3:BUCKET/bench/NAME`` (on-the-fly remote
     from environment variables) with ``--s3-upload-cutoff 5G``, i.e. one
     single PUT: rclone 1.60's multipart uploads are rejected by moto 5
     (``BadRequest (400)``);
   * and, for reference, boto3's own managed ``upload_file`` (default
     TransferConfig: 8 MiB parts, 10 threads) in a ``_boto3`` process.
   The objects (and any pending multipart upload) are deleted and the page
   cache written back (untimed) between runs. Peak RSS is read with
   os.wait4. Goals: offsite's peak RSS < 150 MiB, throughput offsite/rclone
   >= 1.0.

2. A job, for each of --volumes: a destination holding a full image of a
   volume of random data (1 MiB blocks) and three incrementals that each
   rewrite the same 25% "hot" blocks with new random data. ``offsite run``
   of a job with one s3 target (options endpoint_url and region, keys stored
   with ``offsite credentials set --stdin``; it sends the full image and the
   three incrementals consolidated into one) against ``rclone copy DEST
   :s3:BUCKET/job`` (every file, single PUTs as above). Every object under
   the prefix (and, for offsite, the journal) is deleted, and the page cache
   written back, before every run. Goals: time offsite/rclone <= 0.8, bytes
   sent offsite/rclone <= 0.7. Two volume sizes by default: the time ratio
   depends on scale (an idle offsite run takes about 0.2 s longer than
   rclone's, and moto spends about 1.6x the CPU per byte on a multipart
   upload that it does on a single PUT). The report says how much of
   offsite's time was spent waiting for moto to finish the uploads (its
   CompleteMultipartUpload, which reads, hashes and copies every part
   again), and the ratio without that wait.

   Before the jobs, moto takes one untimed 1 GiB single PUT, whether or not
   part 1 ran: a moto that has held a body that large serves later large
   single PUTs with a third less CPU (its heap has grown: rclone's 256 MiB
   first replication took 2.3 s on a fresh moto, 1.85 s after), so without
   it the job figures would depend on --skip-put.

With ``--tls`` moto serves HTTPS with a certificate of a throw-away CA
(``offsite.testing.certs.make_certs``), which every client is given:
offsite's ``ca_file`` option, rclone's ``--ca-cert`` (RCLONE_CA_CERT),
boto3's ``verify``. That is how a real S3 is reached, and it moves S3's
checksum into a trailer, after the body.

Timings are wall-clock on whatever else the machine is doing, with client
and server on the same CPUs (and moto, a Python server, is slow and busy
itself): quote medians.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offsite_s3.testserver import S3Info

from measure import (
    OffsiteJob,
    Row,
    Step,
    alternate,
    arguments,
    compare_jobs,
    human,
    job_summary,
    rss_floor,
    run,
    stats_line,
    verdict,
    workdir,
    write_random,
)

CREDENTIALS_ENV = "OFFSITE_BENCH_S3_CREDENTIALS"
CA_ENV = "OFFSITE_BENCH_S3_CA"  # with --tls: the CA file the uploaders trust
TARGET = "s3"
PUT_PREFIX, JOB_PREFIX = "bench", "job"
# Single PUTs: rclone 1.60's multipart uploads get BadRequest (400) from moto 5.
RCLONE_FLAGS = ["--retries", "1", "--low-level-retries", "1", "--s3-upload-cutoff", "5G"]
RSS_GOAL, TPUT_GOAL, TIME_GOAL, BYTES_GOAL = 150, 1.0, 0.8, 0.7



# --------------------------------------------------------------------------- the uploaders


def _credentials() -> dict[str, str]:
    keys: dict[str, str] = json.loads(os.environ.pop(CREDENTIALS_ENV))
    return keys


def put_main(argv: list[str]) -> None:
    """``_put ENDPOINT_URL REGION BUCKET FILE NAME``: one session.put into BUCKET/bench.

    The keys come from $CREDENTIALS_ENV (JSON).
    """
    from offsite.session import Transport
    from offsite.transport import Endpoint, FileSource

    endpoint_url, region, bucket, file, name = argv
    options = {"endpoint_url": endpoint_url, "region": region}
    if os.environ.get(CA_ENV):
        options["ca_file"] = os.environ[CA_ENV]
    endpoint = Endpoint.from_url(f"s3://{bucket}/{PUT_PREFIX}", options=options,
                                 credentials=_credentials())
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        placed = session.put(name, FileSource(file))
    if placed.size != os.stat(file).st_size:
        sys.exit(f"placed {placed.size} bytes of {os.stat(file).st_size}")


def boto3_main(argv: list[str]) -> None:
    """``_boto3 ENDPOINT_URL REGION BUCKET FILE KEY``: boto3's managed upload_file.

    Default TransferConfig; path addressing (``bucket.127.0.0.1`` cannot
    resolve). The keys come from $CREDENTIALS_ENV (JSON).
    """
    import boto3
    from botocore.config import Config

    endpoint_url, region, bucket, file, key = argv
    keys = _credentials()
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                          aws_access_key_id=keys["access_key_id"],
                          aws_secret_access_key=keys["secret_access_key"],
                          config=Config(s3={"addressing_style": "path"}),
                          verify=os.environ.get(CA_ENV) or None)
    client.upload_file(file, bucket, key)


# --------------------------------------------------------------------------- helpers




def empty_prefix(s3: S3Info, bucket: str, prefix: str) -> None:
    """Delete everything under ``prefix`` (objects and pending uploads), untimed."""
    from offsite_s3.testserver import empty_bucket

    empty_bucket(s3.client(), bucket, prefix)


def prefix_bytes(s3: S3Info, bucket: str, prefix: str) -> tuple[int, list[str]]:
    """Total size and relative keys of the objects under ``prefix/``."""
    client, found = s3.client(), {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                 Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            found[str(obj["Key"])[len(prefix) + 1:]] = int(obj["Size"])
    return sum(found.values()), sorted(found)


# --------------------------------------------------------------------------- part 1


def throughput(s3: S3Info, bucket: str, work: Path, total: int, runs: int,
               rclone_env: dict[str, str]) -> tuple[float, int]:
    """Upload one file with each tool; return (throughput ratio offsite/rclone, offsite RSS)."""
    payload = work / "payload.bin"
    print(f"\n[throughput] writing {human(total)} of random bytes to {payload} …", flush=True)
    write_random(payload, total, seed=1)
    os.sync()
    log = work / "cmd.log"
    keys_env = {CREDENTIALS_ENV: json.dumps({"access_key_id": s3.access_key_id,
                                             "secret_access_key": s3.secret_access_key}),
                CA_ENV: s3.ca_file or ""}
    name = payload.name
    key = f"{PUT_PREFIX}/{name}"
    script = str(Path(__file__).resolve())

    def offsite_put() -> Row:
        return run([sys.executable, script, "_put", s3.endpoint_url, s3.region, bucket,
                    str(payload), name], env=keys_env, log=log)

    def rclone_put() -> Row:
        return run(["rclone", "copyto", str(payload), f":s3:{bucket}/{key}", *RCLONE_FLAGS],
                   env=rclone_env, log=log)

    def boto3_put() -> Row:
        return run([sys.executable, script, "_boto3", s3.endpoint_url, s3.region, bucket,
                    str(payload), key], env=keys_env, log=log)

    results: dict[str, list[Row]] = {"offsite": [], "rclone": [], "boto3": []}
    labels = {"offsite": "offsite session.put (subprocess)",
              "rclone": "rclone copyto (single PUT)",
              "boto3": "boto3 upload_file, default (reference)"}
    steps: list[Step] = [("offsite", offsite_put), ("rclone", rclone_put), ("boto3", boto3_put)]
    client = s3.client()
    for r in range(runs):
        for tool, step in alternate(r, steps):
            empty_prefix(s3, bucket, PUT_PREFIX)
            results[tool].append(step())
            got = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
            if got != total:
                sys.exit(f"{tool}: uploaded {got} bytes of {total}")
        order = " → ".join(k for k, _ in alternate(r, steps))
        print(f"  round {r + 1}/{runs} done ({order})", flush=True)
    empty_prefix(s3, bucket, PUT_PREFIX)
    payload.unlink()

    print(f"\n[throughput] upload one {human(total)} file ({runs} runs)")
    print("  rclone uses a single PUT (--s3-upload-cutoff 5G): its multipart uploads are"
          " rejected by moto 5")
    print("  boto3 upload_file uses its default TransferConfig (8 MiB parts, 10 threads)")
    for tool in ("offsite", "rclone"):
        print(stats_line(labels[tool], results[tool], total))
    print(stats_line(labels["boto3"], results["boto3"], total))
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    ratio = med["rclone"] / med["offsite"]
    rss = max(r for _, r in results["offsite"])
    print(f"  throughput ratio offsite/rclone: {ratio:.2f}  (goal >= {TPUT_GOAL})"
          f"   offsite/boto3: {med['boto3'] / med['offsite']:.2f}")
    print(f"  offsite put peak RSS: {rss} MiB  (goal < {RSS_GOAL} MiB)")
    return ratio, rss


# --------------------------------------------------------------------------- part 2


def warm_up(s3: S3Info, bucket: str, work: Path, rclone_env: dict[str, str]) -> None:
    """One untimed 1 GiB single PUT, so that moto's heap is as part 1 leaves it."""
    payload = work / "warm-up.bin"
    write_random(payload, 1 << 30, seed=7)
    run(["rclone", "copyto", str(payload), f":s3:{bucket}/warm-up/{payload.name}",
         *RCLONE_FLAGS], env=rclone_env, log=work / "cmd.log")
    empty_prefix(s3, bucket, "warm-up")
    payload.unlink()
    os.sync()


def job(s3: S3Info, bucket: str, work: Path, volume: int, runs: int,
        rclone_env: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """``offsite run`` against ``rclone copy``: per scenario the (time, bytes)
    ratios and offsite's peak RSS."""
    job = OffsiteJob(work, volume, TARGET, f"s3://{bucket}/{JOB_PREFIX}",
                     {"endpoint_url": s3.endpoint_url, "region": s3.region,
                      **({"ca_file": s3.ca_file} if s3.ca_file else {})},
                     {"access_key_id": s3.access_key_id,
                      "secret_access_key": s3.secret_access_key})

    def rclone_copy() -> Row:
        return run(["rclone", "copy", str(job.dest), f":s3:{bucket}/{JOB_PREFIX}",
                    *RCLONE_FLAGS], env=rclone_env, log=job.log)

    def clear() -> None:
        empty_prefix(s3, bucket, JOB_PREFIX)
        job.forget()

    return compare_jobs(job, rclone_copy, runs,
                        clear=clear, at_target=lambda: prefix_bytes(s3, bucket, JOB_PREFIX),
                        rclone="rclone copy (single PUTs)", time_goal=TIME_GOAL,
                        bytes_goal=BYTES_GOAL)



# --------------------------------------------------------------------------- main


def main() -> None:
    if sys.argv[1:2] == ["_put"]:
        put_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["_boto3"]:
        boto3_main(sys.argv[2:])
        return
    args = arguments(__doc__, tls=True)

    from offsite.testing.certs import make_certs
    from offsite_s3.testserver import empty_bucket, run_moto

    work = workdir(args, "offsite-bench-s3-")
    try:
        spool = work / "moto-spool"
        spool.mkdir()
        certs = make_certs(work / "tls") if args.tls else None
        with run_moto(tmpdir=spool, certs=certs) as s3:
            rclone_env = s3.rclone_env()
            assert rclone_env is not None
            bucket = f"offsite-bench-{uuid.uuid4().hex[:12]}"
            client: Any = s3.client()
            client.create_bucket(Bucket=bucket)
            try:
                version = subprocess.run(["rclone", "version"], capture_output=True, text=True,
                                         check=True).stdout.splitlines()[0]
                ver = importlib.metadata.version
                print(f"moto {ver('moto')} on {s3.endpoint_url}, bucket {bucket}; {version}, "
                      f"boto3 {ver('boto3')}, Python {sys.version.split()[0]}, "
                      f"{os.cpu_count()} CPUs", flush=True)
                rss_floor(work / "cmd.log")
                tput, put_rss = (None, 0) if args.skip_put else throughput(
                    s3, bucket, work, args.size, args.runs, rclone_env)
                warm_up(s3, bucket, work, rclone_env)
                jobs = {v: job(s3, bucket, work, v, args.runs, rclone_env)
                        for v in args.volumes}
            finally:
                empty_bucket(client, bucket)
                client.delete_bucket(Bucket=bucket)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nsummary")
    if tput is not None:
        print(f"  put throughput offsite/rclone (one {human(args.size)} file): {tput:.2f}"
              f"  goal >= {TPUT_GOAL}: {verdict(tput >= TPUT_GOAL)}")
        print(f"  put peak RSS offsite: {put_rss} MiB  goal < {RSS_GOAL} MiB:"
              f" {verdict(put_rss < RSS_GOAL)}")
    job_summary(jobs, time_goal=TIME_GOAL, bytes_goal=BYTES_GOAL)


if __name__ == "__main__":
    main()

"""Benchmark: offsite's S3 plugin against rclone (and boto3), on moto's S3 server on loopback.

    python bench/s3.py [--parts put,get,job,restore,idle] [--size 1G]
                       [--volumes 256M,1G] [--runs 5] [--skip-put] [--tls]
                       [--warm-up 1G] [--json FILE]

Needs moto[server], boto3 and rclone: the server comes from
``offsite_s3.testserver.run_moto()`` (moto in a child process on a free
127.0.0.1 port, any credentials accepted, stopped at exit); one bucket holds
everything (a prefix per folder) and is deleted at exit; moto spools its
objects under the benchmark's folder. The parts and their goals are
bench/driver.py's, with these particulars:

* rclone is forced to single PUTs (``--s3-upload-cutoff 5G``): rclone 1.60's
  multipart uploads are rejected by moto 5 (``BadRequest (400)``).
* moto keeps no files to ``cp``: the put and get parts' further reference is
  boto3's own managed ``upload_file`` / ``download_file`` (default
  TransferConfig: 8 MiB parts, 10 threads) in a ``_boto3`` process.
  offsite's peak RSS goal there is < 150 MiB (boto3's share).
* Before the job parts, moto takes one untimed --warm-up (1 GiB) single
  PUT, whether or not put ran: a moto that has held a body that large
  serves later large single PUTs with a third less CPU (its heap has grown:
  rclone's 256 MiB first replication took 2.3 s on a fresh moto, 1.85 s
  after), so without it the job figures would depend on --parts.
* moto spends about 1.6x the CPU per byte on a multipart upload that it
  does on a single PUT (its CompleteMultipartUpload reads, hashes and
  copies every part again); each job report says how long offsite waited
  for it, and moto's CPU seconds are printed beside each tool.

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

import argparse
import importlib.metadata
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import driver
from measure import Row, run, size, write_random
from protocol import PYTHON, Extra, Protocol, process_cpu, script

if TYPE_CHECKING:
    from offsite_s3.testserver import S3Info

KEYS_ENV = "OFFSITE_BENCH_S3_KEYS"  # the _boto3 process's keys and CA (JSON)


def boto3_main(verb: str, bucket: str, key: str, file: str) -> None:
    """``_boto3 put|get BUCKET KEY FILE``: boto3's managed upload_file or download_file.

    Default TransferConfig; path addressing (``bucket.127.0.0.1`` cannot
    resolve). Endpoint, region, keys and CA come from $KEYS_ENV (JSON).
    """
    import boto3
    from botocore.config import Config

    spec = json.loads(os.environ.pop(KEYS_ENV))
    client = boto3.client("s3", endpoint_url=spec["endpoint_url"], region_name=spec["region"],
                          aws_access_key_id=spec["access_key_id"],
                          aws_secret_access_key=spec["secret_access_key"],
                          config=Config(s3={"addressing_style": "path"}),
                          verify=spec["ca_file"] or None)
    if verb == "put":
        client.upload_file(file, bucket, key)
    else:
        client.download_file(bucket, key, file)


class S3(Protocol):
    target = "s3"
    rss_goal = 150
    notes = ("rclone uses single PUTs (--s3-upload-cutoff 5G): its multipart uploads are"
             " rejected by moto 5",
             "boto3 upload_file/download_file: default TransferConfig (8 MiB parts,"
             " 10 threads), a reference only; server CPU is moto's")
    s3: S3Info
    bucket: str

    def __init__(self, tls: bool, warm_up: int) -> None:
        self.tls, self.warm_up_size = tls, warm_up
        self.label = "s3-tls" if tls else "s3"

    @contextmanager
    def serve(self, work: Path) -> Iterator[object]:
        from offsite.testing.certs import make_certs
        from offsite_s3.testserver import empty_bucket, run_moto

        spool = work / "moto-spool"
        spool.mkdir()
        certs = make_certs(work / "tls") if self.tls else None
        with run_moto(tmpdir=spool, certs=certs) as self.s3:
            self.bucket = f"offsite-bench-{uuid.uuid4().hex[:12]}"
            client: Any = self.s3.client()
            client.create_bucket(Bucket=self.bucket)
            try:
                yield self.s3
            finally:
                empty_bucket(client, self.bucket)
                client.delete_bucket(Bucket=self.bucket)

    def describe(self) -> str:
        ver = importlib.metadata.version
        return (f"moto {ver('moto')} on {self.s3.endpoint_url}, bucket {self.bucket};"
                f" boto3 {ver('boto3')}")

    def url(self, folder: str) -> str:
        return f"s3://{self.bucket}/{folder}"

    def options(self) -> dict[str, str]:
        return {"endpoint_url": self.s3.endpoint_url, "region": self.s3.region,
                **({"ca_file": self.s3.ca_file} if self.s3.ca_file else {})}

    def credentials(self) -> dict[str, str]:
        return {"access_key_id": self.s3.access_key_id,
                "secret_access_key": self.s3.secret_access_key}

    def clear(self, folder: str) -> None:
        """Delete everything under ``folder/`` (objects and pending uploads)."""
        from offsite_s3.testserver import empty_bucket

        empty_bucket(self.s3.client(), self.bucket, f"{folder}/")

    def at_target(self, folder: str) -> tuple[int, list[str]]:
        client, found = self.s3.client(), {}
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                 Prefix=f"{folder}/")
        for page in pages:
            for obj in page.get("Contents", []):
                found[str(obj["Key"])[len(folder) + 1:]] = int(obj["Size"])
        return sum(found.values()), sorted(found)

    def server_cpu(self) -> float:
        return process_cpu(self.s3.process.pid)

    def warm_up(self, work: Path, log: Path) -> None:
        """One untimed single PUT of --warm-up bytes, so that moto's heap is
        as a put part leaves it."""
        if not self.warm_up_size:
            return
        payload = work / "warm-up.bin"
        write_random(payload, self.warm_up_size, seed=7)
        self.rclone("copyto", str(payload), self.rclone_remote(f"warm-up/{payload.name}"),
                    log=log)
        self.clear("warm-up")
        payload.unlink()
        os.sync()

    def rclone_remote(self, path: str) -> str:
        return f":s3:{self.bucket}/{path}"

    def rclone_env(self) -> dict[str, str]:
        env = self.s3.rclone_env()
        assert env is not None
        return env

    def rclone_flags(self) -> list[str]:
        # Single PUTs: rclone 1.60's multipart uploads get BadRequest (400) from moto 5.
        return [*super().rclone_flags(), "--s3-upload-cutoff", "5G"]

    def extras(self, log: Path) -> list[Extra]:
        spec = {KEYS_ENV: json.dumps({"endpoint_url": self.s3.endpoint_url,
                                      "region": self.s3.region,
                                      "access_key_id": self.s3.access_key_id,
                                      "secret_access_key": self.s3.secret_access_key,
                                      "ca_file": self.s3.ca_file or ""})}

        def boto3(verb: str, folder: str, name: str, file: Path) -> Row:
            return run([PYTHON, script("s3.py"), "_boto3", verb, self.bucket, f"{folder}/{name}",
                        str(file)], env=spec, log=log)

        return [Extra("boto3", "boto3, default TransferConfig (reference)",
                      lambda file, folder, name: boto3("put", folder, name, file),
                      lambda folder, name, file: boto3("get", folder, name, file))]


def main() -> None:
    if sys.argv[1:2] == ["_boto3"]:
        boto3_main(*sys.argv[2:])
        return

    def extend(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--warm-up", default="1G", type=size,
                            help="moto's untimed single PUT before the job parts (1G; 0: none)")

    args = driver.arguments(__doc__, tls=True, extend=extend)
    driver.main(args, [S3(args.tls, args.warm_up)], "s3")


if __name__ == "__main__":
    main()

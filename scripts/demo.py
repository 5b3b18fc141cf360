"""The offsite demo: what works today, on a local-folder target.

It lists the installed target plugins, checks a fresh ``file://`` target
step by step, uploads a 64 MiB sample file through the local plugin with a
progress bar, lists the target, reads the file back and compares the bytes.
Later issues grow this into the full replication demo (images, chains,
consolidation, restore).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from offsite.plugins import discover
from offsite.session import Transport
from offsite.transport import Endpoint, FileSource

MiB = 1 << 20
console = Console(stderr=True)


def sha256(stream) -> str:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256()
    while chunk := stream.read(MiB):
        digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    registry = discover()
    console.rule("installed target plugins")
    for p in registry.plugins:
        console.print(f"  {p.scheme:8} {p.distribution} {p.version}  {p.status} {p.reason}")

    work = Path(tempfile.mkdtemp(prefix="offsite-demo-"))
    sample = work / "destination" / "vol-b001.ofi"
    sample.parent.mkdir()
    with open(sample, "wb") as f:
        for i in range(64):
            f.write(hashlib.sha256(str(i).encode()).digest() * (MiB // 32))
    endpoint = Endpoint.from_url((work / "offsite target").as_uri(), name="demo")
    transport = Transport.for_endpoint(endpoint, registry)

    console.rule(f"check {endpoint.url}")
    report = transport.check(endpoint)
    for step in report.steps:
        mark = "[green]ok[/]" if step.ok else f"[red]failed[/]: {step.error}"
        console.print(f"  {step.name:13} {mark}  [dim]{step.detail}[/]")
    if not report.ok:
        return 4

    console.rule("put, list, get")
    with transport.connect(endpoint) as session, Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), console=console,
    ) as bar:
        source = FileSource(sample)
        task = bar.add_task("put vol-b001.ofi", total=source.size)
        placed = session.put("nightly/vol-b001.ofi", source,
                             on_progress=lambda done: bar.update(task, completed=done))
        bar.stop()
        console.print(f"  placed {placed.path} ({placed.size:,} bytes)")
        for f in session.list():
            console.print(f"  listed {f.path}  {f.size:,} bytes")
        with session.get("nightly/vol-b001.ofi") as stream:
            remote = sha256(stream)
    with open(sample, "rb") as f:
        local = sha256(f)
    same = remote == local
    console.print(f"  sha256 local  {local}\n  sha256 remote {remote}\n  "
                  + ("[green]identical[/]" if same else "[red]DIFFERENT[/]"))
    console.print(f"  (files left in {work})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

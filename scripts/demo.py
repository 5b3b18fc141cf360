"""The offsite demo: what works today, with no servers.

1. Lists the installed target plugins.
2. Makes a 64 MiB sample volume and images it: a full image, then three
   incrementals after changing it (``offsite image create``), and verifies
   the set (``offsite image verify``).
3. Checks a fresh ``file://`` target step by step.
4. Replicates the set the way the engine will: the full image as it is, and
   incrementals 1-3 consolidated into one image named like #3, streamed
   straight from the three inputs into the target's ``put`` (no temporary
   file), with a progress bar.
5. Restores point 3 from the target and compares it byte for byte with the
   volume as it was at point 3.

Later issues grow this into the full replication demo (jobs, planner,
engine, journal, ``offsite run``).
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from offsite.image import Consolidation, create, restore, verify
from offsite.plugins import discover
from offsite.session import Transport
from offsite.transport import Endpoint, FileSource

MiB = 1 << 20
console = Console(stderr=True, soft_wrap=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_volume(path: Path, rnd: random.Random) -> None:
    words = [rnd.randbytes(4).hex().encode() for _ in range(500)]
    with open(path, "wb") as f:
        for i in range(64):
            if i % 5 == 0:
                f.write(bytes(MiB))  # empty space: zero blocks cost nothing
            else:
                f.write((b" ".join(rnd.choices(words, k=MiB // 6)))[:MiB])


def change(path: Path, rnd: random.Random, blocks: int) -> None:
    with open(path, "r+b") as f:
        for _ in range(blocks):
            f.seek(rnd.randrange(64) * MiB + rnd.randrange(MiB // 2))
            f.write(rnd.randbytes(rnd.randrange(1000, 300_000)))


def main() -> int:
    registry = discover()
    console.rule("installed target plugins  (offsite targets)")
    for p in registry.plugins:
        console.print(f"  {p.scheme:8} {p.distribution} {p.version}  {p.status} {p.reason}")

    work = Path(tempfile.mkdtemp(prefix="offsite-demo-"))
    rnd = random.Random(2026)
    volume, destination = work / "volume.raw", work / "destination"
    destination.mkdir()
    console.rule("a volume and its image set  (offsite image create, verify)")
    make_volume(volume, rnd)
    images = [create(volume, destination, label="demo", block_size=256 * 1024)]
    for _ in range(3):
        change(volume, rnd, 12)
        images.append(create(volume, destination, label="demo"))
    at_point_3 = hashlib.sha256(volume.read_bytes()).hexdigest()
    for image in images:
        console.print(f"  {image.name:22} {image.stat().st_size / MiB:6.1f} MiB")
    report = verify([destination])
    console.print(f"  verify: {len(report.ok)} images sound, {len(report.problems)} problems")
    if not report.clean:
        return 3

    endpoint = Endpoint.from_url((work / "offsite target").as_uri(), name="demo")
    transport = Transport.for_endpoint(endpoint, registry)
    console.rule(f"check {endpoint.url}")
    check = transport.check(endpoint)
    for step in check.steps:
        mark = "[green]ok[/]" if step.ok else f"[red]failed[/]: {step.error}"
        console.print(f"  {step.name:13} {mark}  [dim]{step.detail}[/]")
    if not check.ok:
        return 4

    console.rule("replicate: the full, and 1..3 consolidated into one, streamed")
    with transport.connect(endpoint) as session, Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), console=console,
    ) as bar, Consolidation(images[1:]) as merged:
        uploads = [(images[0].name, FileSource(images[0])), (images[3].name, merged)]
        for name, source in uploads:
            task = bar.add_task(f"put {name}", total=source.size)
            session.put(f"demo/{name}", source,
                        on_progress=lambda done, t=task: bar.update(t, completed=done))
        bar.stop()
        for f in session.list():
            console.print(f"  target holds {f.path:28} {f.size / MiB:6.1f} MiB")
    console.print(f"  (three incrementals, {sum(i.stat().st_size for i in images[1:]) / MiB:.1f}"
                  f" MiB, became one of {merged.size / MiB:.1f} MiB)")

    console.rule("restore point 3 from the target  (offsite image restore)")
    restored = work / "restored.raw"
    restore(work / "offsite target" / "demo" / images[3].name, restored)
    same = digest(restored) == at_point_3
    verdict = "[green]identical[/]" if same else "[red]DIFFERENT[/]"
    console.print(f"  sha256 at point 3   {at_point_3}\n"
                  f"  sha256 restored     {digest(restored)}\n  {verdict}")
    console.print(f"  (files left in {work})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

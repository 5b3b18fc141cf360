"""Prometheus metrics of every target, as a textfile for node_exporter.

node_exporter's textfile collector reads ``*.prom`` files from one folder;
a file it reads half-written would be a scrape error, so the file is written
beside its final name and renamed over it. The figures are those of
``offsite status`` (:mod:`offsite.status`), one series per job and target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from offsite.status import LiveStatus

#: name -> (type, help). Every series carries the labels job and target.
METRICS = {
    "offsite_target_running": ("gauge", "1 while a pass works the target"),
    "offsite_target_failed": ("gauge", "1 if the target's last pass failed"),
    "offsite_target_interrupted": ("gauge",
                                   "1 if a pass stopped before its end (it resumes)"),
    "offsite_upload_bytes_done": ("gauge", "Bytes of the current upload at the target"),
    "offsite_upload_bytes_total": ("gauge", "Size of the current upload"),
    "offsite_upload_rate_bytes_per_second": ("gauge", "Rate of the current upload"),
    "offsite_upload_eta_seconds": ("gauge", "Seconds the current upload still needs"),
    "offsite_target_queue_uploads": ("gauge", "Uploads this pass has still to start"),
    "offsite_target_in_flight_uploads": ("gauge", "Uploads started and not finished"),
    "offsite_target_retries": ("gauge", "Retries in the current or last pass"),
    "offsite_target_last_run_timestamp_seconds": ("gauge",
                                                  "When the target's last pass ended"),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(statuses: Sequence[LiveStatus], *, up: bool = True) -> str:
    """The text exposition format (version 0.0.4) of ``statuses``."""
    lines = ["# HELP offsite_replicator_up 1 while the replicator runs",
             "# TYPE offsite_replicator_up gauge", f"offsite_replicator_up {int(up)}",
             "# HELP offsite_metrics_timestamp_seconds When this file was written",
             "# TYPE offsite_metrics_timestamp_seconds gauge",
             f"offsite_metrics_timestamp_seconds {time.time():.3f}"]
    for name, (kind, text) in METRICS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for s in statuses:
            value = _value(name, s)
            if value is not None:
                labels = f'job="{_label(s.job)}",target="{_label(s.target)}"'
                lines.append(f"{name}{{{labels}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    # Whole numbers in full (bytes: "%g" would round 1073741824 to 1.07374e+09).
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _value(name: str, s: LiveStatus) -> float | None:
    current = s.running and s.current is not None
    match name:
        case "offsite_target_running":
            return float(s.running)
        case "offsite_target_failed":
            return float(s.state == "failed")
        case "offsite_target_interrupted":
            return float(s.state == "interrupted")
        case "offsite_upload_bytes_done":
            return s.bytes_done if current else 0
        case "offsite_upload_bytes_total":
            return s.bytes_total if current else 0
        case "offsite_upload_rate_bytes_per_second":
            return s.rate if current else 0
        case "offsite_upload_eta_seconds":
            return s.eta if current and s.eta is not None else None
        case "offsite_target_queue_uploads":
            return s.queued if s.running else 0
        case "offsite_target_in_flight_uploads":
            return len(s.in_flight)
        case "offsite_target_retries":
            return s.retries
        case "offsite_target_last_run_timestamp_seconds":
            return s.last_run
    return None


def write_textfile(path: Path, statuses: Iterable[LiveStatus], *, up: bool = True) -> None:
    """Write ``path`` atomically: a reader sees the old file or the new one."""
    text = render(list(statuses), up=up)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # node_exporter runs as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


__all__ = ["METRICS", "render", "write_textfile"]

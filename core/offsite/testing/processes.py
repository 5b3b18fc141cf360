"""What the test servers that run as processes (sshd, smbd) share: a tool
run that must succeed, a free loopback port, waiting until the server
answers, stopping it, and the tail of its log for an error message.

A plugin's ``testserver`` module keeps only what is its server's own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HOST = "127.0.0.1"


def run_checked(cmd: Sequence[str], *,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a set-up tool (useradd, ssh-keygen, smbpasswd …); its output, or
    RuntimeError naming it with what it printed."""
    res = subprocess.run(
        list(cmd), input=input, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{list(cmd)!r} failed rc={res.returncode}: {res.stdout}{res.stderr}")
    return res


def free_port(host: str = HOST) -> int:
    """A port free a moment ago: another process may take it before the
    server binds it, so start-up loops retry on an early exit."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_answering(proc: subprocess.Popen[bytes], port: int, *, timeout: float,
                         name: str, host: str = HOST,
                         greeting: Callable[[socket.socket], bool] | None = None) -> bool:
    """Poll until the server accepts a connection on ``port`` (and, with
    ``greeting``, until that says yes to what it sent); False if the process
    exited first (its port was taken: retry), TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                s.settimeout(2.0)
                if greeting is None or greeting(s):
                    return True
        except OSError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{name} pid {proc.pid} not ready on {host}:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after 10 s; with ``group``, SIGKILL whatever is
    left of the process group the server leads (children of a parent that
    had to be killed)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def log_tail(path: Path, n: int = 3000) -> str:
    """The last ``n`` characters of a server's log, or "" when there is none."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


__all__ = ["HOST", "free_port", "log_tail", "run_checked", "stop", "wait_until_answering"]

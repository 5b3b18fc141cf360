"""Looking for secrets where they must not be: the search the secret-leak test uses.

A secret can leave a process in more shapes than its own: percent-encoded
in a URL, base64-encoded in an HTTP ``Authorization`` header or a JSON blob,
as UTF-16 on the SMB wire. :func:`forms` lists the shapes searched for,
:func:`find` reports every one found in named texts, :func:`files_under`
reads every file of a folder tree as such texts, and :class:`ArgvWatch`
samples the command line and environment of a process and its children
while it runs::

    with ArgvWatch(proc.pid) as watch:
        proc.wait()
    leaks = find({**watch.texts(), **files_under(home)}, [password])
    assert not leaks, leaks

The base64 forms are the secret's run of characters at each of the three
byte alignments, so a secret inside a longer encoded text (``user:secret``
in basic authentication) is found too.
"""

from __future__ import annotations

import base64
import math
import os
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

#: Shortest run of base64 characters searched for: shorter ones match by chance.
MIN_BASE64 = 8


def _base64_runs(raw: bytes) -> set[bytes]:
    """The characters that encode ``raw`` at each alignment, in both alphabets."""
    runs: set[bytes] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        # Characters that hold bits of the prefix or of what follows differ
        # with the context: keep only those made of the secret's bits alone.
        run = encoded[math.ceil(8 * offset / 6): (8 * (offset + len(raw))) // 6]
        if len(run) >= MIN_BASE64:
            runs.add(run)
            runs.add(run.translate(bytes.maketrans(b"+/", b"-_")))
    return runs


def forms(secret: str) -> dict[str, bytes]:
    """Every shape of ``secret`` searched for, by a name for the shape."""
    raw = secret.encode()
    shapes = {
        "literal": raw,
        "url-encoded": urllib.parse.quote(secret, safe="").encode(),
        "form-encoded": urllib.parse.quote_plus(secret, safe="").encode(),
        "utf-16": secret.encode("utf-16-le"),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
    }
    for i, run in enumerate(sorted(_base64_runs(raw))):
        shapes[f"base64#{i}"] = run
    return shapes


def find(texts: Mapping[str, bytes | str], secrets: Iterable[str]) -> list[str]:
    """``'WHERE: FORM of SECRET-NAME'`` for every shape of a secret found in a text.

    :param texts: where each text came from (a file, "stdout of run") → its bytes.
    :param secrets: the values; reported by position and first characters only,
        so that the report does not spread what it found.
    """
    found = []
    for index, secret in enumerate(secrets):
        shapes = forms(secret)
        for where, text in texts.items():
            data = text.encode() if isinstance(text, str) else text
            for shape, value in shapes.items():
                if value in data:
                    found.append(f"{where}: {shape} of secret #{index} ({secret[:4]}…)")
    return found


def files_under(*roots: Path, skip: Iterable[Path] = ()) -> dict[str, bytes]:
    """Every regular file under ``roots`` (following no links), path → bytes."""
    skipped = {p.resolve() for p in skip}
    texts: dict[str, bytes] = {}
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                if path.is_symlink() or not path.is_file() or path.resolve() in skipped:
                    continue
                try:
                    texts[str(path)] = path.read_bytes()
                except OSError:  # gone meanwhile (a -wal file, a temporary name)
                    continue
    return texts


def _tree(pid: int) -> list[int]:
    """``pid`` and every process descending from it, as /proc shows them now."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


class ArgvWatch:
    """Samples ``/proc/PID/cmdline`` and ``environ`` of a process tree while it runs.

    Every distinct command line and environment seen is kept, by process;
    sampling stops when the block ends. A process that exits between two
    samples is not seen: what it would have shown is what its parent passed,
    which the parent's own sample does not show either, so keep processes
    alive long enough (offsite's commands run for a good part of a second).
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.seen: dict[str, bytes] = {}
        self.samples = 0
        self._known: set[tuple[str, int, bytes]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"argv-{pid}", daemon=True)

    def __enter__(self) -> ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        """Read the tree's command lines and environments once."""
        for pid in _tree(self.pid):
            for what in ("cmdline", "environ"):
                try:
                    data = Path(f"/proc/{pid}/{what}").read_bytes()
                except OSError:
                    continue
                if data and (what, pid, data) not in self._known:
                    self._known.add((what, pid, data))
                    self.seen[f"{what} of pid {pid} #{len(self._known)}"] = data
        self.samples += 1

    def texts(self, what: str) -> dict[str, bytes]:
        """The samples of ``cmdline`` or ``environ``."""
        return {k: v for k, v in self.seen.items() if k.startswith(what)}


__all__ = ["ArgvWatch", "files_under", "find", "forms"]

"""send_file: a local file straight to a plain socket, with progress between slices."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from offsite import transport
from offsite.errors import SourceError
from offsite.testing.sources import MiB, random_bytes
from offsite.throttle import ThrottledSource, TokenBucket
from offsite.transport import BytesSource, FileSource, Transfer, send_file


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, list[bytes]]]:
    """A connected socket, and what arrives at its other end (once it is closed)."""
    ours, theirs = socket.socketpair()
    ours.settimeout(10)  # as ftplib's sockets: send_file must cope with a timeout
    received: list[bytes] = []

    def drain() -> None:
        while chunk := theirs.recv(MiB):
            received.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        yield ours, received
    finally:
        ours.close()
        reader.join(10)
        theirs.close()


def test_sends_the_range_and_reports_progress_per_slice(
        pair: tuple[socket.socket, list[bytes]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "SENDFILE_SLICE", MiB)
    data = random_bytes(3 * MiB + 17, seed=1)
    (tmp_path / "f").write_bytes(data)
    seen: list[int] = []
    reach: list[int] = []
    transfer = Transfer(FileSource(tmp_path / "f"), on_progress=seen.append)
    sock, received = pair
    assert send_file(transfer, sock, 100, 3 * MiB + 10, on_slice=reach.append)
    sock.shutdown(socket.SHUT_WR)
    sock.close()
    for _ in range(100):
        if sum(map(len, received)) >= 3 * MiB + 10 - 100:
            break
        threading.Event().wait(0.05)
    assert b"".join(received) == data[100:3 * MiB + 10]
    assert seen == [100, MiB + 100, 2 * MiB + 100, 3 * MiB + 10]
    assert reach == seen[1:], "before each slice: how far its bytes may reach"


@pytest.mark.parametrize("kind", ["bytes", "throttled"])
def test_other_sources_pass_through_python(pair: tuple[socket.socket, list[bytes]],
                                           tmp_path: Path, kind: str) -> None:
    # A bandwidth limit wraps the source: its bytes must go through the
    # limiter's reads, so send_file leaves them to pump.
    (tmp_path / "f").write_bytes(b"x" * 1000)
    source = (BytesSource(b"x" * 1000) if kind == "bytes"
              else ThrottledSource(FileSource(tmp_path / "f"), TokenBucket(10)))
    seen: list[int] = []
    transfer = Transfer(source, on_progress=seen.append)
    assert not send_file(transfer, pair[0], 0, 1000)
    assert seen == []


def test_a_file_shorter_than_announced_is_a_source_error(
        pair: tuple[socket.socket, list[bytes]], tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(random_bytes(2 * MiB))
    transfer = Transfer(FileSource(path))
    with open(path, "r+b") as f:
        f.truncate(MiB + 5)  # shrank after its size was taken
    with pytest.raises(SourceError, match=f"ended at byte {MiB + 5} of {2 * MiB}"):
        send_file(transfer, pair[0], 0, 2 * MiB)


def test_a_file_that_cannot_be_opened_is_a_source_error(
        pair: tuple[socket.socket, list[bytes]], tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    transfer = Transfer(FileSource(path))
    path.unlink()
    with pytest.raises(SourceError, match="cannot open"):
        send_file(transfer, pair[0], 0, 3)

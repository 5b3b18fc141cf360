"""SourceReader: the read-ahead stream every plugin's put reads."""

from __future__ import annotations

import io
import threading

import pytest

from offsite.errors import SourceError
from offsite.testing.sources import FailingSource, random_bytes
from offsite.transport import CHUNK_SIZE, BytesSource, SourceReader


class _StuckStream(io.RawIOBase):
    """Hands out one chunk, then blocks in read until released (a bandwidth
    limit's long pause, a stalled disk)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release, self.reads = release, 0
        self.closed_by: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.reads += 1
        if self.reads > 1:
            self.release.wait()
        buffer[: len(buffer)] = bytes(len(buffer))
        return len(buffer)

    def close(self) -> None:
        self.closed_by = threading.current_thread().name
        super().close()


class _StuckSource:
    size = 8 * CHUNK_SIZE

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stream = _StuckStream(self.release)

    def open(self, offset: int = 0) -> io.RawIOBase:
        return self.stream


def test_reads_fill_the_buffer_and_stop_at_the_size() -> None:
    data = random_bytes(3 * CHUNK_SIZE + 5)
    with SourceReader(BytesSource(data), 7) as reader:
        buffer = bytearray(2 * CHUNK_SIZE)
        assert reader.readinto(buffer) == len(buffer)  # across read-ahead chunks
        assert bytes(buffer) == data[7 : 7 + len(buffer)]
        assert reader.read() == data[7 + len(buffer) :]
        assert reader.read() == b"" and reader.position == len(data)


def test_reads_of_any_size_hand_out_every_byte_once_in_order() -> None:
    # Whole read-ahead chunks come out as they are (no copy); reads smaller,
    # larger or out of step with the chunks still fill what they ask for.
    data = random_bytes(5 * CHUNK_SIZE + 5)
    with SourceReader(BytesSource(data), 3) as reader:
        got = [reader.read(CHUNK_SIZE), reader.read(CHUNK_SIZE + 1), reader.read(CHUNK_SIZE),
               reader.read(10), reader.read(CHUNK_SIZE)]
        assert [len(g) for g in got] == [CHUNK_SIZE, CHUNK_SIZE + 1, CHUNK_SIZE, 10, CHUNK_SIZE]
        assert reader.position == 3 + sum(len(g) for g in got)
        got.append(reader.read(2 * CHUNK_SIZE))  # more than is left: the rest
        assert reader.read(CHUNK_SIZE) == b""
    assert b"".join(got) == data[3:]


@pytest.mark.parametrize("offset", [0, 7])
def test_reads_of_mixed_sizes_from_any_offset(offset: int) -> None:
    # Whole chunks come straight from the read-ahead; other sizes, and the
    # rest of a chunk a smaller read began, go through readinto.
    data = random_bytes(5 * CHUNK_SIZE + 3, seed=4)
    sizes = [CHUNK_SIZE, 10, CHUNK_SIZE, CHUNK_SIZE - 10, CHUNK_SIZE, 2 * CHUNK_SIZE, CHUNK_SIZE]
    got: list[bytes] = []
    with SourceReader(BytesSource(data), offset) as reader:
        for size in sizes:
            chunk = reader.read(size)
            assert len(chunk) == min(size, len(data) - offset - sum(map(len, got)))
            got.append(chunk)
        assert reader.read(CHUNK_SIZE) == b"" and reader.position == len(data)
    assert b"".join(got) == data[offset:]


def test_bytes_before_a_failure_come_first_then_the_error_every_time() -> None:
    data = random_bytes(3 * CHUNK_SIZE)
    with SourceReader(FailingSource(data, CHUNK_SIZE + 10), 0) as reader:
        assert reader.read(4 * CHUNK_SIZE) == data[: CHUNK_SIZE + 10]
        for _ in range(2):
            with pytest.raises(SourceError, match="simulated read failure"):
                reader.read(1)


def test_close_does_not_wait_for_a_read_that_is_stuck() -> None:
    # Ctrl-C or a failed upload closes the reader while its thread sleeps in
    # a throttled read: close must return, and the stream still gets closed
    # (by the thread, once its read returns).
    source = _StuckSource()
    reader = SourceReader(source, 0)
    assert len(reader.read(CHUNK_SIZE)) == CHUNK_SIZE
    closer = threading.Thread(target=reader.close)
    closer.start()
    closer.join(timeout=5)
    try:
        assert not closer.is_alive(), "close() waited for the stuck read"
        assert source.stream.closed_by is None, "closed under the thread's feet"
    finally:
        source.release.set()
    for _ in range(100):
        if source.stream.closed_by is not None:
            break
        threading.Event().wait(0.05)
    assert source.stream.closed_by == "offsite-read-ahead"


def test_pump_can_stop_at_an_offset_and_go_on_from_there() -> None:
    # A protocol that confirms bytes per request (an FTP data connection)
    # sends one source as several pumps on one reader.
    from offsite.transport import Transfer, pump

    data = random_bytes(3 * CHUNK_SIZE + 5, seed=9)
    transfer = Transfer(BytesSource(data))
    seen: list[int] = []
    transfer._on_progress = seen.append
    parts: list[bytes] = []
    with transfer.open(100) as reader:
        assert pump(reader, parts.append, transfer, stop=CHUNK_SIZE + 7) == CHUNK_SIZE + 7
        assert sum(map(len, parts)) == CHUNK_SIZE + 7 - 100
        assert pump(reader, parts.append, transfer, stop=CHUNK_SIZE + 7) == CHUNK_SIZE + 7
        assert pump(reader, parts.append, transfer) == len(data)
    assert b"".join(parts) == data[100:]
    assert seen == sorted(seen) and seen[0] == 100 and seen[-1] == len(data)


def test_reads_of_any_size_in_any_order_give_the_bytes_in_order() -> None:
    # Whole read-ahead chunks are handed out as they are; any other size
    # (or a read after one that cut a chunk) goes through a copy: both
    # must give the same stream, every read full unless the source ends.
    data = random_bytes(5 * CHUNK_SIZE + 3, seed=2)
    sizes = [CHUNK_SIZE, 10, CHUNK_SIZE, CHUNK_SIZE - 10, CHUNK_SIZE, 2 * CHUNK_SIZE]
    with SourceReader(BytesSource(data), 0) as reader:
        got = [reader.read(n) for n in sizes]
        assert [len(g) for g in got] == [min(n, len(data) - sum(sizes[:i]))
                                         for i, n in enumerate(sizes)]
        assert b"".join(got) == data
        assert reader.read(CHUNK_SIZE) == b"" and reader.position == len(data)


def test_a_failure_at_a_chunk_boundary_is_raised_by_a_whole_chunk_read() -> None:
    data = random_bytes(3 * CHUNK_SIZE)
    with SourceReader(FailingSource(data, 2 * CHUNK_SIZE), 0) as reader:
        assert reader.read(CHUNK_SIZE) + reader.read(CHUNK_SIZE) == data[: 2 * CHUNK_SIZE]
        for _ in range(2):
            with pytest.raises(SourceError, match="simulated read failure"):
                reader.read(CHUNK_SIZE)

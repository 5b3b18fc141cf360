"""The bandwidth limiter: one hook wrapper that caps ``put`` for every protocol.

A target's ``bwlimit`` (bytes per second) becomes a :class:`BandwidthLimit`
registered in that target's plugin manager around the transport. It wraps
the upload's source so each read waits for tokens from a token bucket; the
plugin, reading in chunks and sending what it read, is paced without knowing
it. Written once here, it works for every transport, as pluggy wrappers are
meant to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from offsite import hookimpl
from offsite.transport import Readable, RemoteFile, Source, Transfer


class TokenBucket:
    """``rate`` bytes per second, starting empty, with a small burst.

    The burst is capped at 256 KiB (or the rate, if lower), so even a short
    upload averages the configured rate, not the rate plus a second's worth.
    """

    BURST = 256 * 1024

    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self.capacity = float(min(rate, self.BURST))
        self._tokens = 0.0
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        """Wait until ``n`` bytes may pass."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        if debt > 0:
            self._sleep(debt / self.rate)


class _ThrottledReader:
    def __init__(self, inner: Readable, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._bucket.take(len(data))
        return data

    def close(self) -> None:
        self._inner.close()


class ThrottledSource:
    """A source whose streams are paced by a token bucket."""

    def __init__(self, inner: Source, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    @property
    def size(self) -> int:
        return self._inner.size

    def open(self, offset: int = 0) -> Readable:
        return _ThrottledReader(self._inner.open(offset), self._bucket)


class BandwidthLimit:
    """Core hook wrapper: cap a target's uploads at ``rate`` bytes per second."""

    def __init__(self, rate: int) -> None:
        self.bucket = TokenBucket(rate)

    def __repr__(self) -> str:
        return f"<BandwidthLimit {self.bucket.rate} B/s>"

    @hookimpl(wrapper=True)
    def put(self, conn: Any, path: str, transfer: Transfer
            ) -> Generator[None, RemoteFile | None, RemoteFile | None]:
        transfer.source = ThrottledSource(transfer.source, self.bucket)
        return (yield)

"""The token bucket, on a fake clock: rates are computed, never timed."""

from __future__ import annotations

import pytest

from offsite.throttle import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("rate", [1024, 64 * 1024, 20 << 20])
@pytest.mark.parametrize("chunk", [1000, 1 << 20])
def test_average_rate_is_the_limit(rate: int, chunk: int) -> None:
    t = FakeTime()
    bucket = TokenBucket(rate, clock=t.clock, sleep=t.sleep)
    total = 50 * chunk
    for _ in range(50):
        bucket.take(chunk)
    assert total / t.now == pytest.approx(rate, rel=0.01)


def test_idle_time_buys_only_a_small_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(1 << 20, clock=t.clock, sleep=t.sleep)
    t.now += 3600  # an hour idle between two files
    start = t.now
    bucket.take(10 << 20)
    assert t.now - start == pytest.approx((10 << 20) / (1 << 20) - 0.25, rel=0.01)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)

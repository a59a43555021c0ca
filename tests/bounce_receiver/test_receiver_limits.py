"""Per-IP session and rate limits, with a hand-driven clock (no sleeps)."""

from bounceflow_bounce_receiver.limits import ConnectionLimiter, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_connection_limit_is_per_ip_and_slots_come_back():
    limiter = ConnectionLimiter(per_ip=2)
    assert limiter.acquire("192.0.2.1") and limiter.acquire("192.0.2.1")
    assert not limiter.acquire("192.0.2.1")
    assert limiter.acquire("192.0.2.2")
    limiter.release("192.0.2.1")
    assert limiter.open_sessions("192.0.2.1") == 1
    assert limiter.acquire("192.0.2.1")
    for _ in range(3):
        limiter.release("192.0.2.1")
    assert limiter.open_sessions("192.0.2.1") == 0  # never negative


def test_rate_limit_allows_a_burst_then_the_refill_rate():
    clock = FakeClock()
    rate = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [rate.allow("192.0.2.1") for _ in range(4)] == [True, True, True, False]
    assert rate.allow("192.0.2.9")  # another IP has its own bucket
    clock.now += 1.0  # one token per second at 60/min
    assert rate.allow("192.0.2.1") and not rate.allow("192.0.2.1")
    clock.now += 3600
    assert [rate.allow("192.0.2.1") for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_idle_buckets_are_pruned_when_the_table_grows():
    clock = FakeClock()
    rate = RateLimiter(per_minute=60, burst=1, clock=clock)
    for n in range(10_002):
        rate.allow(f"10.0.{n // 256}.{n % 256}")
    clock.now += 120
    rate.allow("198.51.100.1")
    assert len(rate._buckets) == 1

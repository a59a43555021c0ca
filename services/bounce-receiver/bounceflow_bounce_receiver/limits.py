"""Per-IP limits of the MX: concurrent sessions and a mail rate (token bucket).

An MX is open to the whole internet; without these one noisy or hostile peer
could hold every connection or flood Kafka. Pure bookkeeping with an
injectable clock, so it is tested without sockets or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

# Forget idle peers once the table grows past this many entries.
_PRUNE_ABOVE = 10_000


class ConnectionLimiter:
    """Counts open sessions per IP; `acquire` fails beyond the limit."""

    def __init__(self, per_ip: int) -> None:
        self.per_ip = per_ip
        self._open: dict[str, int] = {}

    def acquire(self, ip: str) -> bool:
        """Take a slot for `ip`; False when it already has `per_ip` sessions."""
        count = self._open.get(ip, 0)
        if count >= self.per_ip:
            return False
        self._open[ip] = count + 1
        return True

    def release(self, ip: str) -> None:
        """Give back a slot taken by `acquire`."""
        count = self._open.get(ip, 0) - 1
        if count > 0:
            self._open[ip] = count
        else:
            self._open.pop(ip, None)

    def open_sessions(self, ip: str) -> int:
        return self._open.get(ip, 0)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Token bucket per IP: `burst` mails at once, refilled at `per_minute`."""

    per_minute: float
    burst: int
    clock: Clock = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow(self, ip: str) -> bool:
        """Spend one token of `ip`'s bucket; False when it is empty."""
        now = self.clock()
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) > _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[ip] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_minute / 60)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no information."""
        full_after = self.burst * 60 / self.per_minute if self.per_minute > 0 else float("inf")
        for ip in [ip for ip, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[ip]

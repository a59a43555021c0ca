"""Rate limit for failed logins, per client address (SMTP AUTH and API keys).

After `max_failures` failures within `window` seconds an address is refused
without its credentials being checked, until its oldest failure ages out.
This keeps password guessing slow and keeps scrypt from being used as a
CPU sink.
"""

from __future__ import annotations

import time
from collections import deque


class FailureLimiter:
    """Sliding-window count of failures per key."""

    def __init__(self, max_failures: int, window: float, clock=time.monotonic) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def blocked(self, key: str) -> bool:
        """Whether `key` has used up its failures for now."""
        return len(self._recent(key)) >= self._max

    def failed(self, key: str) -> None:
        """Record one failure of `key`."""
        self._recent(key)
        self._failures.setdefault(key, deque()).append(self._clock())

    def succeeded(self, key: str) -> None:
        """A good login clears the address's record."""
        self._failures.pop(key, None)

"""Which consumer offsets may be committed when records finish out of order.

Services that work on many records of a partition at once (the sender's
deliveries, the notifier's webhook calls) may finish them in any order, but
an offset may only be committed once every record before it is done: commit
the finished prefix of each partition, nothing past the first unfinished one.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition


class OffsetTracker:
    """Offsets in flight per partition; `advance()` says what may be committed."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, dict[int, bool]] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        """A record was taken up (call in offset order per partition)."""
        self._pending.setdefault(tp, {})[offset] = False

    def done(self, tp: TopicPartition, offset: int) -> None:
        """A record's output is durable."""
        offsets = self._pending.get(tp)
        if offsets is not None and offset in offsets:
            offsets[offset] = True

    def advance(self) -> dict[TopicPartition, int]:
        """Drop each partition's finished prefix; the next offset to commit per partition."""
        commits = {}
        for tp, offsets in self._pending.items():
            last = None
            while offsets:
                offset = next(iter(offsets))
                if not offsets[offset]:
                    break
                del offsets[offset]
                last = offset
            if last is not None:
                commits[tp] = last + 1
        return commits

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked in a rebalance: their records are someone else's now."""
        for tp in tps:
            self._pending.pop(tp, None)

    def in_flight(self, tp: TopicPartition) -> int:
        """Records of `tp` taken up and not yet done."""
        return sum(1 for done in self._pending.get(tp, {}).values() if not done)

"""The Kafka edge of the ingress: all records of a message, or none.

A message for N recipients is N `outgoing` records, written in one Kafka
transaction (shared with the other messages waiting at that moment: group
commit, `bounceflow.kafka_writer`). A consumer reading `read_committed`
(every bounceflow consumer) sees all of them or none. The client is told
"accepted" only after the commit was acknowledged; otherwise the publish
fails with `KafkaUnavailable` (SMTP 451 4.3.0, REST 503) and the aborted
records are never delivered, not even after Kafka comes back. See
docs/ingress.md.

Several writers (`ingress_kafka_producers`), each with its own transactional
producer. A message joins the writer with the most messages in flight, so
under load one writer carries them all in few, large transactions (each
costs ~1 ms of CPU in aiokafka, whatever its size); a message that finds
every writer idle goes to the one that finished longest ago, whose last
commit markers are written by then (a writer that starts its next
transaction right after a commit waits on CONCURRENT_TRANSACTIONS).
Transactional ids are random per process plus the writer number, so two
ingress processes never fence each other.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bounceflow.kafka_writer import OutRecord, TransactionalWriter
from bounceflow.models import OutgoingMessage
from bounceflow.settings import CommonSettings


@dataclass
class _Lane:
    """A writer and what this publisher knows of its load."""

    writer: TransactionalWriter
    in_flight: int = 0
    finished: int = 0  # sequence number of its last completed publish


class Publisher:
    """Publishes the records of one message atomically, within a time bound."""

    def __init__(self, settings: CommonSettings, writers: int = 2) -> None:
        base = f"{settings.topic_prefix}bounceflow-ingress-{uuid.uuid4().hex[:12]}"
        self._lanes = [
            _Lane(TransactionalWriter(settings, settings.topic("outgoing"), f"{base}-{i}"))
            for i in range(max(1, writers))
        ]
        self._completions = 0

    @property
    def healthy(self) -> bool:
        return all(lane.writer.healthy for lane in self._lanes)

    async def start(self) -> None:
        """Connect now, so `/health` tells the truth early; Kafka being down is not fatal."""
        await asyncio.gather(*(lane.writer.start() for lane in self._lanes))

    async def stop(self) -> None:
        await asyncio.gather(*(lane.writer.stop() for lane in self._lanes))

    async def publish(self, records: Sequence[OutgoingMessage]) -> None:
        """Write all `records` in one transaction; raise KafkaUnavailable unless committed in time."""
        lane = self._pick()
        lane.in_flight += 1
        try:
            await lane.writer.write([OutRecord(r.message_id, r.to_bytes()) for r in records])
        finally:
            lane.in_flight -= 1
            self._completions += 1
            lane.finished = self._completions

    def _pick(self) -> _Lane:
        """The busiest writer (bigger transactions); among idle ones, the one idle longest."""
        return max(self._lanes, key=lambda lane: (lane.in_flight, -lane.finished))

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
producer, take turns so a transaction in flight does not hold up the next.
Transactional ids are random per process plus the writer number, so two
ingress processes never fence each other.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence

from bounceflow.kafka_writer import OutRecord, TransactionalWriter
from bounceflow.models import OutgoingMessage
from bounceflow.settings import CommonSettings


class Publisher:
    """Publishes the records of one message atomically, within a time bound."""

    def __init__(self, settings: CommonSettings, writers: int = 2) -> None:
        base = f"{settings.topic_prefix}bounceflow-ingress-{uuid.uuid4().hex[:12]}"
        self._writers = [
            TransactionalWriter(settings, settings.topic("outgoing"), f"{base}-{i}") for i in range(max(1, writers))
        ]
        self._turns = itertools.cycle(self._writers)

    @property
    def healthy(self) -> bool:
        return all(writer.healthy for writer in self._writers)

    async def start(self) -> None:
        """Connect now, so `/health` tells the truth early; Kafka being down is not fatal."""
        await asyncio.gather(*(writer.start() for writer in self._writers))

    async def stop(self) -> None:
        await asyncio.gather(*(writer.stop() for writer in self._writers))

    async def publish(self, records: Sequence[OutgoingMessage]) -> None:
        """Write all `records` in one transaction; raise KafkaUnavailable unless committed in time."""
        await next(self._turns).write([OutRecord(r.message_id, r.to_bytes()) for r in records])

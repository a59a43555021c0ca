"""The Kafka edge of the ingress: all records of a message, or none.

A message for N recipients is N `outgoing` records. They are written in one
Kafka transaction, so a consumer reading `read_committed` (every bounceflow
consumer: `bounceflow.kafka.create_consumer`) sees all of them or none. The
client is told "accepted" only after the commit was acknowledged; if that
does not happen within `kafka_ack_timeout`, the publish fails with
`KafkaUnavailable` (SMTP 451 4.3.0, REST 503) and the producer that held
the transaction is thrown away. Its replacement reuses the transactional id,
and `InitProducerId` on that id aborts whatever the old one left open; if no
replacement comes, the coordinator aborts it after `TRANSACTION_TIMEOUT_MS`.

A transactional producer runs one transaction at a time, so a small pool of
them (`ingress_kafka_producers`) lets that many messages be published
concurrently. Transactional ids are random per process plus the slot number,
so two ingress processes never fence each other. See docs/ingress.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from bounceflow.kafka import KafkaUnavailable, create_producer
from bounceflow.models import OutgoingMessage
from bounceflow.settings import CommonSettings

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_MS = 60_000
STOP_TIMEOUT = 5.0
# The coordinator answers CONCURRENT_TRANSACTIONS while it still writes the
# previous transaction's markers; the default 100 ms backoff would idle a busy
# producer for far longer than the markers take.
RETRY_BACKOFF_MS = 5


class _Slot:
    """One transactional producer, (re)started on demand."""

    def __init__(self, settings: CommonSettings, transactional_id: str) -> None:
        self._settings = settings
        self.transactional_id = transactional_id
        self._producer: AIOKafkaProducer | None = None

    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = create_producer(
                self._settings,
                transactional_id=self.transactional_id,
                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                retry_backoff_ms=RETRY_BACKOFF_MS,
            )
            try:
                await producer.start()
            except BaseException:
                await _stop_quietly(producer)
                raise
            self._producer = producer
        return self._producer

    def discard(self) -> None:
        """Drop the producer (it may hold an open transaction); stop it in the background."""
        producer, self._producer = self._producer, None
        if producer is not None:
            asyncio.get_running_loop().create_task(_stop_quietly(producer))

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), STOP_TIMEOUT)
    except BaseException as exc:  # stopping is best effort; Kafka may be gone
        log.debug("producer stop: %s", type(exc).__name__)


class Publisher:
    """Publishes the records of one message atomically, within a time bound."""

    def __init__(self, settings: CommonSettings, pool_size: int = 4) -> None:
        self._settings = settings
        self._topic = settings.topic("outgoing")
        self._timeout = settings.kafka_ack_timeout
        base = f"{settings.topic_prefix}bounceflow-ingress-{uuid.uuid4().hex[:12]}"
        self._slots = [_Slot(settings, f"{base}-{i}") for i in range(max(1, pool_size))]
        self._free: asyncio.Queue[_Slot] = asyncio.Queue()
        for slot in self._slots:
            self._free.put_nowait(slot)
        self.healthy = False

    async def start(self) -> None:
        """Connect one producer now, so `/health` tells the truth early; Kafka being down is not fatal."""
        slot = await self._free.get()
        try:
            await asyncio.wait_for(slot.producer(), self._timeout)
            self.healthy = True
        except Exception as exc:
            log.warning("kafka not reachable at start", extra={"error": f"{type(exc).__name__}: {exc}"})
        finally:
            self._free.put_nowait(slot)

    async def stop(self) -> None:
        await asyncio.gather(*(slot.close() for slot in self._slots))

    async def publish(self, records: Sequence[OutgoingMessage]) -> None:
        """Write all `records` in one transaction; raise KafkaUnavailable unless committed in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            slot = await asyncio.wait_for(self._free.get(), self._timeout)
        except asyncio.TimeoutError as exc:
            self.healthy = False
            raise KafkaUnavailable(f"{self._topic}: no producer free within {self._timeout}s") from exc
        try:
            await asyncio.wait_for(self._transaction(slot, records), max(0.001, deadline - loop.time()))
            self.healthy = True
        except BaseException as exc:
            slot.discard()
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.healthy = False
            raise KafkaUnavailable(f"{self._topic}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._free.put_nowait(slot)

    async def _transaction(self, slot: _Slot, records: Sequence[OutgoingMessage]) -> None:
        producer = await slot.producer()
        await producer.begin_transaction()
        futures = [
            await producer.send(self._topic, record.to_bytes(), key=record.message_id.encode())
            for record in records
        ]
        await asyncio.gather(*futures)
        await producer.commit_transaction()

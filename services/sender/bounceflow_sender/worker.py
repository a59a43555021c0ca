"""Consume a topic with bounded concurrency and commit offsets in order.

Records of a partition are processed concurrently (up to `sender_concurrency`
in flight per topic), but the committed offset only moves past a record once
its outputs (the result, any retry record) are acknowledged by Kafka, and
never past an earlier record still in flight: at-least-once, in order per
partition. A record that is not due yet (`outgoing-retry`) pauses only its
own partition: we seek back to it, pause, and resume when it is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from bounceflow.offsets import OffsetTracker
from bounceflow.kafka import KafkaUnavailable, create_consumer

from bounceflow_sender.attempt import Output
from bounceflow_sender.metrics import IN_FLIGHT
from bounceflow_sender.settings import SenderSettings

log = logging.getLogger(__name__)

Handler = Callable[[bytes | None, bytes, str], Awaitable[list[Output]]]
DueIn = Callable[[bytes], float]

PUBLISH_BACKOFF = (0.5, 1, 2, 5, 10)
COMMIT_INTERVAL = 0.05


class TopicWorker(ConsumerRebalanceListener):
    """Runs `handler` for every record of one topic and publishes its outputs."""

    def __init__(
        self, settings: SenderSettings, topic: str, group: str, producer: AIOKafkaProducer,
        handler: Handler, due_in: DueIn | None = None, hold_max: float = 0.0,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._group = group
        self._producer = producer
        self._handler = handler
        self._due_in = due_in
        self._hold_max = hold_max
        self._slots = asyncio.Semaphore(settings.sender_concurrency)
        self._tracker = OffsetTracker()
        self._tasks: dict[TopicPartition, set[asyncio.Task]] = {}
        self._resumers: dict[TopicPartition, asyncio.TimerHandle] = {}
        self._progress = asyncio.Event()
        self._running = False
        self._consumer = None
        self._loop_task: asyncio.Task | None = None
        self._commit_task: asyncio.Task | None = None
        self._gauge = IN_FLIGHT.labels(topic)

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def healthy(self) -> bool:
        return self._running and self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        # Small fetches: a broker still returns a record larger than these (KIP-74), and
        # the default 40 MB per partition would be prefetched memory we do not need.
        self._consumer = create_consumer(self._settings, self._group, max_poll_records=500,
                                         max_partition_fetch_bytes=1 << 20, fetch_max_bytes=8 << 20)
        self._consumer.subscribe([self._settings.topic(self._topic)], listener=self)
        await self._consumer.start()
        self._running = True
        self._loop_task = asyncio.create_task(self._fetch_loop(), name=f"sender-{self._topic}")
        self._commit_task = asyncio.create_task(self._commit_loop(), name=f"sender-commit-{self._topic}")

    async def stop(self) -> None:
        """Stop fetching, let deliveries in flight finish (bounded), commit, leave the group."""
        self._running = False
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        await self._drain(list(self._tasks), self._settings.sender_shutdown_grace)
        if self._commit_task is not None:
            self._commit_task.cancel()
            await asyncio.gather(self._commit_task, return_exceptions=True)
        await self._commit()
        for handle in self._resumers.values():
            handle.cancel()
        await self._consumer.stop()

    async def _fetch_loop(self) -> None:
        consumer = self._consumer
        while self._running:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    if not self._running:
                        break  # not tracked: the next owner of the partition reads it again
                    if self._hold(tp, record):
                        break
                    await self._slots.acquire()
                    self._tracker.add(tp, record.offset)
                    task = asyncio.create_task(self._process(tp, record))
                    self._tasks.setdefault(tp, set()).add(task)
                    task.add_done_callback(self._tasks[tp].discard)

    def _hold(self, tp: TopicPartition, record: ConsumerRecord) -> bool:
        """Pause `tp` at `record` if it is due within the hold horizon (retry topic only)."""
        if self._due_in is None:
            return False
        wait = self._due_in(record.value)
        if wait <= 0 or wait > self._hold_max:
            return False  # due now, or far off: the handler requeues it at the tail
        self._consumer.seek(tp, record.offset)
        self._consumer.pause(tp)
        loop = asyncio.get_running_loop()
        self._resumers[tp] = loop.call_later(wait, self._resume, tp)
        return True

    def _resume(self, tp: TopicPartition) -> None:
        self._resumers.pop(tp, None)
        if tp in self._consumer.assignment():
            self._consumer.resume(tp)

    async def _process(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        self._gauge.inc()
        try:
            where = f"{record.topic}-{record.partition}-{record.offset}"
            try:
                outputs = await self._handler(record.key, record.value, where)
            except Exception:
                # A bug, not bad input: keep the offset uncommitted so the record is not lost.
                log.exception("handler failed; record stays uncommitted", extra={"where": where})
                return
            if await self._publish(outputs, where):
                self._tracker.done(tp, record.offset)
                self._progress.set()
        finally:
            self._gauge.dec()
            self._slots.release()

    async def _publish(self, outputs: list[Output], where: str) -> bool:
        """Send all outputs and wait for their acks; retries while running. True when durable."""
        attempt = 0
        while True:
            try:
                futures = [
                    await self._producer.send(self._settings.topic(o.topic), o.value, key=o.key.encode())
                    for o in outputs
                ]
                async with asyncio.timeout(self._settings.kafka_ack_timeout):
                    await (futures[0] if len(futures) == 1 else asyncio.gather(*futures))
                return True
            except Exception as exc:  # every producer error means "not durable yet"
                error = KafkaUnavailable(f"{type(exc).__name__}: {exc}")
                log.warning("publishing results failed; retrying", extra={"where": where, "error": str(error)})
                if not self._running:
                    return False
                await asyncio.sleep(PUBLISH_BACKOFF[min(attempt, len(PUBLISH_BACKOFF) - 1)])
                attempt += 1

    async def _commit_loop(self) -> None:
        while True:
            await self._progress.wait()
            self._progress.clear()
            await self._commit()
            await asyncio.sleep(COMMIT_INTERVAL)  # gather a few completions per commit

    async def _commit(self) -> None:
        offsets = self._tracker.advance()
        if not offsets:
            return
        assigned = self._consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:
            log.warning("offset commit failed; records may be delivered again", extra={"error": str(exc)})

    async def _drain(self, tps, timeout: float) -> None:
        tasks = [t for tp in tps for t in self._tasks.get(tp, ())]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("abandoned deliveries in flight; they will be retried", extra={"count": len(pending)})
            await asyncio.gather(*pending, return_exceptions=True)

    # ConsumerRebalanceListener
    async def on_partitions_revoked(self, revoked) -> None:
        await self._drain(revoked, self._settings.sender_shutdown_grace)
        await self._commit()
        self._tracker.forget(revoked)
        for tp in revoked:
            handle = self._resumers.pop(tp, None)
            if handle is not None:
                handle.cancel()

    async def on_partitions_assigned(self, assigned) -> None:
        return None

"""Writes the records of one mail to Kafka atomically, many mails per transaction.

Used at both SMTP edges (ingress: one `outgoing` record per recipient;
bounce-receiver: one `raw-bounce` record per RCPT). A mail's records go into
a Kafka transaction, so a multi-recipient mail never leaves half of its
records behind when Kafka fails in the middle, and a record we refused can
never land later: the client gets `451`/`503`, retries the whole mail, and
`read_committed` consumers never saw the aborted attempt.

Transactions cost round trips, so concurrent sessions share them (group
commit): one background task takes every mail that is waiting, writes them in
one transaction, and answers each session when the commit is acknowledged.
While several sessions are sending, it first waits `kafka_transaction_linger_ms`
for more mails, so transactions (and the commit markers every consumer must
skip) stay few.
After any failure the producer is thrown away and a new one is created with
the same transactional id, which fences the old one and aborts whatever it
left open. The new one is created right away in the background (retrying
until Kafka answers), not on the next mail: a transaction left open holds
back the last stable offset of its partitions, so every `read_committed`
consumer (the sender, the classifier) would wait behind it until the
transaction timeout. That timeout is kept short for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from bounceflow.kafka import KafkaUnavailable, create_producer
from bounceflow.settings import CommonSettings

log = logging.getLogger(__name__)

MAX_MAILS_PER_TRANSACTION = 500
# Right after a commit the coordinator answers CONCURRENT_TRANSACTIONS while it
# writes the markers; aiokafka's default 100 ms backoff would idle the writer.
RETRY_BACKOFF_MS = 5
RECONNECT_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts to re-create the producer


@dataclass(frozen=True)
class OutRecord:
    """One record to write: key (message id, or None) and the serialised value."""

    key: str | None
    value: bytes


@dataclass
class _Pending:
    records: list[OutRecord]
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class TransactionalWriter:
    """Group-committing transactional writer for one topic."""

    def __init__(self, settings: CommonSettings, topic: str, transactional_id: str) -> None:
        self._settings = settings
        self._topic = topic
        self._transactional_id = transactional_id
        self._timeout = settings.kafka_ack_timeout
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None
        self._reconnect_task: asyncio.Task | None = None
        self._producer_lock = asyncio.Lock()
        self._inflight: list[_Pending] = []
        self.healthy = False
        self.transactions = 0  # committed so far (with `mails`: the average group size)
        self.mails = 0

    async def start(self) -> None:
        """Start the commit loop and try to connect once; an unreachable Kafka is not fatal."""
        self._task = asyncio.create_task(self._run(), name=f"writer-{self._topic}")
        try:
            await asyncio.wait_for(self._ensure_producer(), self._timeout)
            self.healthy = True
        except Exception as exc:
            log.warning("kafka not reachable at start; mail is refused until it is", extra={"error": str(exc)})
            await self._discard_producer()
            self._reconnect_soon()

    async def stop(self) -> None:
        """Stop the loop (failing what still waits) and close the producer."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = self._inflight + [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        for pending in waiting:
            if not pending.done.done():
                pending.done.set_exception(KafkaUnavailable("writer stopping"))
                pending.done.exception()
        await self._discard_producer()

    async def write(self, records: list[OutRecord]) -> None:
        """Return once Kafka committed all `records`; raise KafkaUnavailable otherwise.

        If the caller is cancelled before its mail is picked up, nothing is
        written; once picked up, the transaction completes either way.
        """
        pending = _Pending(list(records))
        self._queue.put_nowait(pending)
        try:
            # The loop resolves every future within two transaction bounds;
            # this outer bound only guards against a bug in the loop.
            await asyncio.wait_for(asyncio.shield(pending.done), 3 * self._timeout)
        except asyncio.TimeoutError as exc:
            raise KafkaUnavailable("no answer from the writer loop") from exc
        except asyncio.CancelledError:
            pending.done.cancel()
            raise

    async def _run(self) -> None:
        linger = self._settings.kafka_transaction_linger_ms / 1000
        last_batch = 0
        while True:
            batch = [await self._queue.get()]
            if linger and last_batch > 1 and self._queue.qsize() < MAX_MAILS_PER_TRANSACTION:
                # Several sessions are sending: wait a moment for their mails. Each
                # transaction costs the broker several log writes plus a marker per
                # partition, whatever its size; and right after a commit the
                # coordinator would answer CONCURRENT_TRANSACTIONS (a retried request)
                # until its markers are written. A lone session never waits.
                await asyncio.sleep(linger)
            while not self._queue.empty() and len(batch) < MAX_MAILS_PER_TRANSACTION:
                batch.append(self._queue.get_nowait())
            last_batch = len(batch)
            self._inflight = [p for p in batch if not p.done.done()]
            if self._inflight:
                await self._commit_batch(self._inflight)
            self._inflight = []

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        try:
            await asyncio.wait_for(self._transaction(batch), self._timeout)
        except Exception as exc:  # timeout, connection, fencing, too large: all "not durable"
            self.healthy = False
            log.warning(
                "kafka transaction failed; the mails are refused",
                extra={"mails": len(batch), "error": f"{type(exc).__name__}: {exc}"},
            )
            await self._discard_producer()
            self._reconnect_soon()
            error = KafkaUnavailable(f"{self._topic}: {type(exc).__name__}: {exc}")
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(error)
                    pending.done.exception()  # retrieved: a cancelled caller must not warn
            return
        self.healthy = True
        self.transactions += 1
        self.mails += len(batch)
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)

    async def _transaction(self, batch: list[_Pending]) -> None:
        producer = await self._ensure_producer()
        await producer.begin_transaction()
        sent = []
        for pending in batch:
            for record in pending.records:
                key = record.key.encode() if record.key is not None else None
                sent.append(await producer.send(self._topic, record.value, key=key))
        await asyncio.gather(*sent)
        await producer.commit_transaction()

    def _reconnect_soon(self) -> None:
        """Re-create the producer in the background until Kafka answers (aborts what the old one left open)."""
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.create_task(self._reconnect(), name=f"writer-{self._topic}-reconnect")

    async def _reconnect(self) -> None:
        for attempt in itertools.count():
            try:
                await asyncio.wait_for(self._ensure_producer(), self._timeout)
                self.healthy = True
                return
            except Exception as exc:
                await self._discard_producer()
                log.debug("kafka still unreachable", extra={"attempt": attempt + 1, "error": str(exc)})
            await asyncio.sleep(RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)])

    async def _ensure_producer(self) -> AIOKafkaProducer:
        # One at a time: two producers with the same transactional id would fence each other.
        async with self._producer_lock:
            if self._producer is None:
                producer = create_producer(
                    self._settings,
                    transactional_id=self._transactional_id,
                    retry_backoff_ms=RETRY_BACKOFF_MS,
                    transaction_timeout_ms=int(max(10.0, 2 * self._timeout) * 1000),
                )
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(producer.stop(), self._timeout)

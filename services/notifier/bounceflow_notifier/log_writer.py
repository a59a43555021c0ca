"""Consumes delivery-result and classified-bounce into the ClickHouse logs.

Its own consumer group (`notifier-logs` by default), so a slow webhook never holds up
logging and the other way round. Records are batched (size and time bound,
because single-row inserts into ClickHouse are slow), and a partition's
offset is committed only after every row of the batch was inserted. When
ClickHouse is down the writer keeps the batch, waits with doubling backoff
and tries again: nothing is lost, nothing is skipped. A batch that was half
inserted before a failure is inserted whole again; the tables are
ReplacingMergeTree keyed by the stable event id, so that repeat (like a
replay of the topic) does not count twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from bounceflow.kafka import create_consumer
from bounceflow_notifier.migrations import migrate
from bounceflow_notifier.rows import TABLE_COLUMNS, Row, record_rows
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

TOPICS = ("delivery-result", "classified-bounce")

ROWS_WRITTEN = Counter("bounceflow_notifier_rows_written_total", "Rows inserted into ClickHouse.", ["table"])
STORE_FAILURES = Counter(
    "bounceflow_notifier_clickhouse_failures_total", "Failed ClickHouse migrations or batch inserts (all retried)."
)
REJECTED = Counter(
    "bounceflow_notifier_records_rejected_total", "Unparseable records kept in rejected_records.", ["topic"]
)
# The writer holds records for up to `log_batch_delay` before inserting, so its
# fetches may wait longer than the common `kafka_fetch_max_wait_ms`: up to
# 200 ms (or half the batch delay), unless 4 MiB are waiting.
FETCH_MIN_BYTES = 4 * 1024 * 1024
FETCH_MAX_WAIT_MS_CAP = 200

PENDING = Gauge("bounceflow_notifier_pending_records", "Records read but not yet in ClickHouse.")
BATCH_SECONDS = Histogram("bounceflow_notifier_batch_insert_seconds", "Time to insert one batch, retries included.")


class LogWriter:
    """Kafka -> rows -> ClickHouse, committing offsets after the insert."""

    def __init__(self, settings: NotifierSettings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._rows: list[Row] = []
        self._records = 0
        self._offsets: dict[TopicPartition, int] = {}
        self._first_pending_at: float | None = None
        self.migrated = False
        self.store_failures = 0
        self.records_logged = 0
        self.records_rejected = 0

    async def start(self) -> None:
        """Join the consumer group and start the loop (migrations run first, in the loop)."""
        fetch_wait_ms = max(self._settings.kafka_fetch_max_wait_ms,
                            min(FETCH_MAX_WAIT_MS_CAP, int(self._settings.log_batch_delay * 500)))
        self._consumer = create_consumer(
            self._settings, self._settings.notifier_log_group, *TOPICS, max_poll_records=self._settings.log_batch_size,
            fetch_min_bytes=FETCH_MIN_BYTES, fetch_max_wait_ms=fetch_wait_ms,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="notifier-log-writer")

    async def stop(self) -> None:
        """Flush what is pending (if ClickHouse takes it), commit, leave the group."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        try:
            await self._migrate()
            while not self._stopping.is_set():
                await self._poll()
                if self._batch_due():
                    await self._flush()
            await self._flush()
        except Exception:
            log.exception("log writer stopped on an unexpected error; records stay uncommitted")
            raise

    async def _migrate(self) -> None:
        delay = self._settings.log_retry_initial
        while not self._stopping.is_set():
            try:
                await migrate(self._store, self._settings.migrations_dir())
                self.migrated = True
                return
            except StoreUnavailable as exc:
                self.store_failures += 1
                STORE_FAILURES.inc()
                log.warning("ClickHouse unavailable for migrations; retrying", extra={"error": str(exc), "retry_in": delay})
                await self._sleep(delay)
                delay = min(delay * 2, self._settings.log_retry_max)

    async def _poll(self) -> None:
        timeout = self._settings.log_batch_delay
        if self._first_pending_at is not None:
            timeout = max(0.0, self._first_pending_at + timeout - time.monotonic())
        room = max(1, self._settings.log_batch_size - self._records)
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=room)
        for tp, records in batches.items():
            kind = tp.topic[len(self._settings.topic_prefix):]
            for record in records:
                rows = record_rows(kind, tp.topic, tp.partition, record.offset, record.key, record.value, record.timestamp)
                if rows[0].table == "rejected_records":
                    self._note_rejected(rows[0])
                self._rows.extend(rows)
                self._records += 1
            self._offsets[tp] = records[-1].offset + 1
        if self._records and self._first_pending_at is None:
            self._first_pending_at = time.monotonic()
        PENDING.set(self._records)

    def _batch_due(self) -> bool:
        if not self._records:
            return False
        if self._records >= self._settings.log_batch_size:
            return True
        return time.monotonic() - self._first_pending_at >= self._settings.log_batch_delay

    async def _flush(self) -> None:
        """Insert the pending rows (retrying while ClickHouse is down), then commit."""
        if not self._records:
            return
        by_table: dict[str, list[list]] = defaultdict(list)
        for row in self._rows:
            by_table[row.table].append(row.as_sequence())
        started = time.monotonic()
        if not await self._insert_until_done(by_table):
            log.warning("stopping with records not in ClickHouse; offsets not committed, they will be re-read",
                        extra={"records": self._records, "offsets": self._offset_text()})
            return
        BATCH_SECONDS.observe(time.monotonic() - started)
        for table, rows in by_table.items():
            ROWS_WRITTEN.labels(table).inc(len(rows))
        await self._commit()
        self.records_logged += self._records
        self._rows, self._records, self._offsets, self._first_pending_at = [], 0, {}, None
        PENDING.set(0)

    async def _insert_until_done(self, by_table: dict[str, list[list]]) -> bool:
        delay = self._settings.log_retry_initial
        while True:
            try:
                if not self.migrated:
                    await self._migrate()
                for table, rows in by_table.items():
                    await self._store.insert(table, TABLE_COLUMNS[table], rows)
                return True
            except StoreUnavailable as exc:
                self.store_failures += 1
                STORE_FAILURES.inc()
                log.warning("ClickHouse insert failed; keeping the batch and retrying",
                            extra={"error": str(exc), "records": self._records, "retry_in": delay,
                                   "offsets": self._offset_text()})
                if self._stopping.is_set():
                    return False
                await self._sleep(delay)
                delay = min(delay * 2, self._settings.log_retry_max)

    async def _commit(self) -> None:
        try:
            await self._consumer.commit(dict(self._offsets))
        except KafkaError as exc:
            # Typically a rebalance took the partitions away while we waited for
            # ClickHouse: the new owner re-reads them, and the rows dedupe.
            log.warning("offset commit failed; these records will be read again (harmless, idempotent)",
                        extra={"error": repr(exc), "offsets": self._offset_text()})

    def _note_rejected(self, row: Row) -> None:
        self.records_rejected += 1
        REJECTED.labels(row.values["topic"]).inc()
        log.error("unparseable record kept in rejected_records",
                  extra={"topic": row.values["topic"], "partition": row.values["partition"],
                         "offset": row.values["offset"], "record_key": row.values["record_key"],
                         "error": row.values["error"]})

    def _offset_text(self) -> str:
        return ",".join(f"{tp.topic}[{tp.partition}]<{offset}" for tp, offset in sorted(self._offsets.items()))

    async def _sleep(self, seconds: float) -> None:
        """Wait, but wake up early when the service stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

"""The notification dispatcher: feedback-loop webhooks and forwards, at least once.

One consumer in its own group (`notifier_notify_group`, default
`notifier-notify`) reads `delivery-result`, `classified-bounce` and
`notification-retry`. Each record is planned (`notifications.py`) and every
notification attempted once right away; a failure becomes a
`PendingNotification` on `notification-retry` (the retry lives in Kafka and
survives a restart), the last failure a `DeadLetter` on
`notification-dead-letter`. A record's offset is committed only when all its
notifications succeeded or their retry/dead-letter records were acknowledged,
and never past an earlier record still in flight.

Records are worked on concurrently (at most `notifier_max_in_flight`; the
fetch loop waits for a free slot), attempts to one host go through its
`HostGate` (`host_gate.py`: a healthy host's events wait in line, a failing
or lagging host's beyond the backlog go to retry untried), and a retry
record that is not due yet is held in memory (bounded, else its partitions
pause) instead of blocking the records behind it: a slow or dead endpoint of
one account holds up another's for a bounded time only.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge

from bounceflow.offsets import OffsetTracker
from bounceflow.accounts import AccountStore
from bounceflow.kafka import create_consumer, create_producer
from bounceflow.models import ClassifiedBounce, DeadLetter, DeliveryResult, PendingNotification

from bounceflow_notifier.attempts import Attempts
from bounceflow_notifier.notifications import Notification, RetryPolicy, after_failure, plan_bounce, plan_result
from bounceflow_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

SOURCE_TOPICS = ("delivery-result", "classified-bounce", "notification-retry")
RETRY_TOPIC = "notification-retry"
DEAD_LETTER_TOPIC = "notification-dead-letter"
PUBLISH_BACKOFF = (0.2, 0.5, 1, 2, 5)
# At most this often an offset commit (a Kafka round trip); a crash replays at
# most this much more, and replayed notifications keep their idempotency key.
COMMIT_INTERVAL = 0.2

NOTIFICATIONS = Counter("bounceflow_notifications_total", "Notification attempts by kind and outcome",
                        ["kind", "outcome"])
HELD_RETRIES = Gauge("bounceflow_notification_retries_held", "Retry records waiting in memory until due")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class NotificationDispatcher(ConsumerRebalanceListener):
    """Consumes the three topics and delivers notifications; `start()` / `stop()`."""

    def __init__(self, settings: NotifierSettings, accounts: AccountStore, attempts: Attempts | None = None) -> None:
        self._settings = settings
        self._accounts = accounts
        self._attempts = attempts
        self._policy = RetryPolicy(settings.notification_retry_schedule, settings.notification_retry_jitter)
        self._slots = asyncio.Semaphore(settings.notifier_max_in_flight)
        self._tracker = OffsetTracker()
        self._tasks: set[asyncio.Task] = set()
        self._held = 0
        self._retry_paused = False
        self._progress = asyncio.Event()
        self._running = False
        self._consumer = None
        self._producer = None
        self._loop_task: asyncio.Task | None = None
        self._commit_task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        """For `/health`: the fetch loop is alive."""
        return self._running and self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        self._producer = create_producer(self._settings)
        await self._producer.start()
        if self._attempts is None:
            self._attempts = Attempts(self._settings, self._accounts)
        self._consumer = create_consumer(self._settings, self._settings.notifier_notify_group, max_poll_records=500,
                                         fetch_min_bytes=self._settings.notifier_dispatch_fetch_min_bytes)
        self._consumer.subscribe([self._settings.topic(t) for t in SOURCE_TOPICS], listener=self)
        await self._consumer.start()
        self._running = True
        self._loop_task = asyncio.create_task(self._fetch_loop(), name="notifier-dispatch")
        self._commit_task = asyncio.create_task(self._commit_loop(), name="notifier-dispatch-commit")
        log.info("notification dispatcher started", extra={"group": self._settings.notifier_notify_group})

    async def stop(self) -> None:
        """Stop fetching, abandon work in flight (it stays uncommitted), commit what is done."""
        self._running = False
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._commit_task is not None:
            self._commit_task.cancel()
            await asyncio.gather(self._commit_task, return_exceptions=True)
        await self._commit()
        await self._consumer.stop()
        await self._producer.stop()
        await self._attempts.close()
        log.info("notification dispatcher stopped")

    # Rebalance listener: commit what is done before partitions move on.
    async def on_partitions_revoked(self, revoked) -> None:
        await self._commit()
        self._tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        pass

    async def _fetch_loop(self) -> None:
        while self._running:
            try:
                batch = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as exc:
                log.warning("fetch failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(1)
                continue
            for tp, records in batch.items():
                for record in records:
                    if not self._running:
                        return  # untracked: read again after a restart
                    await self._slots.acquire()
                    self._tracker.add(tp, record.offset)
                    self._start(tp, record)

    def _start(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        """Plan the record here; only one with notifications to make gets a task (most results have none)."""
        where = f"{record.topic}-{record.partition}-{record.offset}"
        try:
            notifications = self._decode(record, where)
        except Exception:
            self._slots.release()
            log.exception("processing failed; record stays uncommitted", extra={"where": where})
            return
        if not notifications:
            self._slots.release()
            self._tracker.done(tp, record.offset)
            self._progress.set()
            return
        task = asyncio.create_task(self._process(tp, record, notifications, where))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, tp: TopicPartition, record: ConsumerRecord, notifications: list[Notification],
                       where: str) -> None:
        released = False
        try:
            if record.topic == self._settings.topic(RETRY_TOPIC):
                self._slots.release()  # a held retry must not take a working slot
                released = True
                await self._hold_until_due(notifications[0])
            if len(notifications) == 1:  # the usual case: no gather, no extra task
                results = [await self._deliver(notifications[0])]
            else:
                results = await asyncio.gather(*(self._deliver(n) for n in notifications))
            if all(results):
                self._tracker.done(tp, record.offset)
                self._progress.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not bad input: leave the offset uncommitted so nothing is lost.
            log.exception("processing failed; record stays uncommitted", extra={"where": where})
        finally:
            if not released:
                self._slots.release()

    def _decode(self, record: ConsumerRecord, where: str) -> list[Notification]:
        """The notifications a record asks for; undecodable records are logged and skipped."""
        topic = record.topic[len(self._settings.topic_prefix):]
        try:
            if topic == "delivery-result":
                result = DeliveryResult.from_bytes(record.value)
                plan = plan_result(result, self._accounts.get(result.account))
                message_id = result.message_id
            elif topic == "classified-bounce":
                bounce = ClassifiedBounce.from_bytes(record.value)
                plan = plan_bounce(bounce, self._accounts.get(bounce.account) if bounce.account else None)
                message_id = bounce.message_id
            else:
                return [Notification.from_pending(PendingNotification.from_bytes(record.value))]
        except ValueError as exc:
            log.error("undecodable record skipped", extra={"where": where, "error": str(exc)[:500]})
            return []
        for note in plan.skipped:
            log.info(note, extra={"message_id": message_id, "where": where})
        return plan.notifications

    async def _hold_until_due(self, notification: Notification) -> None:
        """Wait in memory until the retry is due (counted; the retry topic pauses when too many wait)."""
        if notification.not_before is None:
            return
        wait = (_aware(notification.not_before) - utcnow()).total_seconds()
        if wait <= 0:
            return
        self._held += 1
        HELD_RETRIES.set(self._held)
        self._pause_retries_if_full()
        try:
            await asyncio.sleep(wait)
        finally:
            self._held -= 1
            HELD_RETRIES.set(self._held)
            self._resume_retries_if_room()

    def _retry_partitions(self) -> list[TopicPartition]:
        topic = self._settings.topic(RETRY_TOPIC)
        return [tp for tp in self._consumer.assignment() if tp.topic == topic]

    def _pause_retries_if_full(self) -> None:
        if not self._retry_paused and self._held >= self._settings.notifier_retry_max_held:
            self._consumer.pause(*self._retry_partitions())
            self._retry_paused = True
            log.warning("retry topic paused: too many retries held", extra={"held": self._held})

    def _resume_retries_if_room(self) -> None:
        if self._retry_paused and self._held < self._settings.notifier_retry_max_held:
            self._consumer.resume(*self._retry_partitions())
            self._retry_paused = False

    async def _deliver(self, n: Notification) -> bool:
        """Attempt once; on failure publish the retry or dead letter. True when settled durably."""
        result = await self._attempts.attempt(n)
        extra = {"message_id": n.message_id, "event_id": n.event_id, "kind": n.kind,
                 "account": n.account, "attempt": n.attempt}
        if result.ok:
            NOTIFICATIONS.labels(n.kind, "delivered").inc()
            log.info("notification delivered", extra=extra)
            return True
        outcome = after_failure(n, result.error or "failed", result.permanent, utcnow(), self._policy)
        if isinstance(outcome, DeadLetter):
            NOTIFICATIONS.labels(n.kind, "dead-lettered").inc()
            log.warning("notification dead-lettered", extra={**extra, "error": outcome.reason})
            return await self._publish(DEAD_LETTER_TOPIC, n.event_id, outcome.to_bytes(), extra)
        NOTIFICATIONS.labels(n.kind, "retry").inc()
        log.info("notification failed; retry scheduled",
                 extra={**extra, "error": result.error, "not_before": outcome.not_before.isoformat()})
        return await self._publish(RETRY_TOPIC, n.event_id, outcome.to_bytes(), extra)

    async def _publish(self, topic: str, key: str, value: bytes, extra: dict) -> bool:
        """Send and wait for the ack; retries while running. True when durable."""
        attempt = 0
        while True:
            try:
                await asyncio.wait_for(
                    self._producer.send_and_wait(self._settings.topic(topic), value, key=key.encode()),
                    self._settings.kafka_ack_timeout)
                return True
            except Exception as exc:  # every producer error means "not durable yet"
                log.warning("publishing failed; retrying", extra={**extra, "topic": topic, "error": str(exc)})
                if not self._running:
                    return False
                await asyncio.sleep(PUBLISH_BACKOFF[min(attempt, len(PUBLISH_BACKOFF) - 1)])
                attempt += 1

    async def _commit_loop(self) -> None:
        while True:
            await self._progress.wait()
            self._progress.clear()
            await self._commit()
            await asyncio.sleep(COMMIT_INTERVAL)

    async def _commit(self) -> None:
        commits = self._tracker.advance()
        if not commits:
            return
        try:
            await self._consumer.commit(commits)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offset commit failed; records will be read again", extra={"error": str(exc)})

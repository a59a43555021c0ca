"""Helpers for the dispatcher tests on the real broker: settings, producing, waiting."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from bounceflow.accounts import AccountsFile, AccountStore, write_accounts
from bounceflow.kafka import create_producer, ensure_topics
from bounceflow.models import DeadLetter, PendingNotification
from bounceflow_notifier.dispatcher import NotificationDispatcher
from bounceflow_notifier.replay import topic_partitions
from bounceflow_notifier.settings import NotifierSettings


def settings_for(bootstrap: str, prefix: str, accounts_path: Path, **overrides) -> NotifierSettings:
    """Dispatcher settings for one test: its own topics and group, tiny retry schedule, loopback allowed."""
    values = dict(kafka_bootstrap=bootstrap, topic_prefix=prefix, accounts_file=str(accounts_path),
                  webhook_allow_private=True, notification_retry_schedule=[0.2, 0.2, 0.2],
                  notification_retry_jitter=0.0, webhook_timeout=5.0, notifier_helo_name="notifier.test")
    values.update(overrides)
    return NotifierSettings(**values)


def save_accounts(path: Path, *accounts) -> AccountStore:
    write_accounts(path, AccountsFile(accounts=list(accounts)))
    return AccountStore(path, check_interval=0)


async def started(settings: NotifierSettings) -> NotificationDispatcher:
    await ensure_topics(settings)
    dispatcher = NotificationDispatcher(settings, AccountStore(settings.accounts_file, check_interval=0))
    await dispatcher.start()
    return dispatcher


async def produce(settings: NotifierSettings, topic: str, records, key=lambda r: r.message_id) -> None:
    """Publish model records to a (prefixed) topic and wait for the acks."""
    producer = create_producer(settings)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(settings.topic(topic), record.to_bytes(), key=(key(record) or "").encode())
    finally:
        await producer.stop()


async def until(check, timeout: float = 30.0, what: str = "condition"):
    """Poll `check()` (sync or async) until truthy; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.05)


async def committed_total(settings: NotifierSettings, topic: str) -> int:
    """Sum of the dispatcher group's committed offsets on a topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.group(settings.notifier_notify_group))
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == settings.topic(topic) and meta.offset > 0)


async def wait_settled(settings: NotifierSettings, topic: str, count: int, timeout: float = 30.0) -> None:
    """Wait until the dispatcher committed past `count` records of `topic`: all their notifications settled."""
    async def check():
        return await committed_total(settings, topic) >= count
    await until(check, timeout, f"{count} records of {topic} settled")


async def topic_records(settings: NotifierSettings, topic: str, model):
    """Everything on a (prefixed) topic so far, decoded with `model`."""
    topic = settings.topic(topic)
    tps = await topic_partitions(settings.kafka_bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found = []
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    found.extend(model.from_bytes(r.value) for r in records)
        return found
    finally:
        await consumer.stop()


async def dead_letters(settings: NotifierSettings) -> list[DeadLetter]:
    """Everything on the (prefixed) dead-letter topic so far."""
    return await topic_records(settings, "notification-dead-letter", DeadLetter)


async def retries(settings: NotifierSettings) -> list[PendingNotification]:
    """Everything on the (prefixed) retry topic so far."""
    return await topic_records(settings, "notification-retry", PendingNotification)

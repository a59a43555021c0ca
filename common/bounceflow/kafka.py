"""Kafka helpers: every service produces and consumes the same way.

Producers wait for all in-sync replicas (`acks=all`) and are idempotent, so a
record we call written survives a broker failover and a retry does not write
it twice. Consumers never auto-commit: a service commits an offset only after
its output was acknowledged (at-least-once; outputs carry stable ids so the
repeats a crash can cause are harmless downstream).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bounceflow.settings import TOPICS, CommonSettings

log = logging.getLogger(__name__)

# Room for a 25 MB message after base64 and JSON framing.
MAX_RECORD_BYTES = 40 * 1024 * 1024


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge a record within the configured bound."""


def create_producer(settings: CommonSettings, **overrides) -> AIOKafkaProducer:
    """An idempotent `acks=all` producer (call `await producer.start()`)."""
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_request_size=MAX_RECORD_BYTES,
        request_timeout_ms=int(settings.kafka_ack_timeout * 1000),
    )
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_consumer(settings: CommonSettings, group: str, *topics: str, **overrides) -> AIOKafkaConsumer:
    """A manually committing consumer in `group` (prefixed) for `topics` (prefixed)."""
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group(group),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_RECORD_BYTES,
        fetch_max_bytes=MAX_RECORD_BYTES,
        fetch_min_bytes=settings.kafka_fetch_min_bytes,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    options.update(overrides)
    return AIOKafkaConsumer(*(settings.topic(t) for t in topics), **options)


async def publish(producer: AIOKafkaProducer, topic: str, key: str | None, value: bytes, timeout: float):
    """Send one record and wait for its acknowledgement, at most `timeout` seconds.

    Raises KafkaUnavailable when Kafka does not acknowledge in time, so that
    the caller can refuse (SMTP 451, REST 503) rather than pretend success.
    """
    try:
        return await asyncio.wait_for(
            producer.send_and_wait(topic, value, key=key.encode() if key is not None else None),
            timeout,
        )
    except Exception as exc:  # aiokafka raises several error types; all mean "not durable"
        raise KafkaUnavailable(f"{topic}: {type(exc).__name__}: {exc}") from exc


async def ensure_topics(
    settings: CommonSettings, names: tuple[str, ...] | list[str] = TOPICS, partitions: int | None = None
) -> None:
    """Create the (prefixed) topics that do not exist yet; existing ones are left alone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=settings.topic(name),
                num_partitions=partitions or settings.topic_partitions,
                replication_factor=1,
                topic_configs={"max.message.bytes": str(MAX_RECORD_BYTES)},
            )
            for name in names
            if settings.topic(name) not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another service created it first
            log.info("created topics", extra={"topics": [t.name for t in wanted]})
    finally:
        await admin.close()

"""The real broker the other tests rely on: create, produce (acks=all), consume, restart."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from aiokafka.structs import TopicPartition

from kafka_broker import KafkaBroker, create_topics


async def _produce(bootstrap: str, topic: str, key: bytes, value: bytes):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        return await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, topic: str, group: str, timeout: float = 20.0):
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        return await asyncio.wait_for(consumer.getone(), timeout)
    finally:
        await consumer.stop()


async def test_produce_and_consume(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}outgoing"
    await create_topics(kafka_broker.bootstrap, [topic])

    meta = await _produce(kafka_broker.bootstrap, topic, b"msg-1", b"hello")
    record = await _consume_one(kafka_broker.bootstrap, topic, f"{topic_prefix}g")

    assert (record.key, record.value) == (b"msg-1", b"hello")
    assert (record.partition, record.offset) == (meta.partition, meta.offset)


async def test_topics_get_default_partitions_and_no_auto_create(kafka_broker, topic_prefix):
    topic, typo = f"{topic_prefix}raw-bounce", f"{topic_prefix}typo"
    await create_topics(kafka_broker.bootstrap, [topic])

    # auto.create.topics.enable=false: producing to an unknown topic must fail,
    # not silently create it (the producer's metadata request asks for auto-create).
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=1000)
    await producer.start()
    try:
        with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):
            await producer.send_and_wait(typo, b"lost?")
    finally:
        await producer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        assert len(described["partitions"]) == 4
        assert typo not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own: restarting the session broker would disturb others."""
    broker = KafkaBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


async def test_record_survives_broker_restart(own_broker, topic_prefix):
    kafka_broker = own_broker
    topic = f"{topic_prefix}delivery-result"
    await create_topics(kafka_broker.bootstrap, [topic])
    meta = await _produce(kafka_broker.bootstrap, topic, b"msg-2", b"persisted")
    pid_before = kafka_broker.pid

    # Blocking on purpose: nothing else runs on this loop while the broker restarts.
    kafka_broker.restart()

    assert kafka_broker.pid != pid_before
    record = await _consume_one(kafka_broker.bootstrap, topic, f"{topic_prefix}g")
    assert (record.key, record.value) == (b"msg-2", b"persisted")
    assert (record.partition, record.offset) == (meta.partition, meta.offset)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, meta.partition)
        assert (await consumer.end_offsets([tp]))[tp] == meta.offset + 1
    finally:
        await consumer.stop()

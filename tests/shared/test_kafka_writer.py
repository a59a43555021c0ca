"""The group-committing transactional writer: all or nothing, and quick recovery.

A broker of this test's own is stopped and started again; the session broker
is never touched.
"""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from bounceflow.kafka import KafkaUnavailable
from bounceflow.kafka_writer import OutRecord, TransactionalWriter
from bounceflow.settings import CommonSettings
from kafka_broker import KafkaBroker, create_topics, install_jars


async def committed(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        values = []
        while batch := await consumer.getmany(timeout_ms=1000):
            values += [r.value for records in batch.values() for r in records]
        return sorted(values)
    finally:
        await consumer.stop()


async def wait_until(predicate, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.fixture
def broker(tmp_path):
    install_jars()
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


async def started_writer(broker, topic_prefix: str, topic_name: str, **settings) -> tuple[str, TransactionalWriter]:
    """(the prefixed topic, a started writer for it) on this test's broker."""
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, topic_prefix=topic_prefix, **settings)
    topic = settings.topic(topic_name)
    await create_topics(broker.bootstrap, [topic])
    writer = TransactionalWriter(settings, topic, f"{topic_prefix}w")
    await writer.start()
    return topic, writer


async def test_concurrent_mails_share_transactions_and_all_land(broker, topic_prefix):
    topic, writer = await started_writer(broker, topic_prefix, "outgoing", kafka_ack_timeout=5)
    try:
        mails = [[OutRecord(f"m{i}", f"{i}a".encode()), OutRecord(f"m{i}", f"{i}b".encode())] for i in range(50)]
        await asyncio.gather(*(writer.write(records) for records in mails))
    finally:
        await writer.stop()
    assert await committed(broker.bootstrap, topic) == sorted(r.value for records in mails for r in records)


@pytest.mark.parametrize(("linger_ms", "transactions"), [(1500, 1), (0, 2)])
async def test_while_sessions_are_busy_the_writer_lingers_to_group_mails(broker, topic_prefix, linger_ms, transactions):
    topic, writer = await started_writer(broker, topic_prefix, "outgoing", kafka_ack_timeout=5,
                                         kafka_transaction_linger_ms=linger_ms)
    try:
        await asyncio.gather(*(writer.write([OutRecord(f"m{i}", b"busy")]) for i in range(5)))
        assert writer.mails == 5 and writer.transactions < 5  # several sessions at once: shared transactions
        before = writer.transactions

        async def later(records: list[OutRecord]) -> None:
            await asyncio.sleep(0.2)
            await writer.write(records)

        await asyncio.gather(writer.write([OutRecord("a", b"a")]), later([OutRecord("b", b"b")]))
    finally:
        await writer.stop()
    assert writer.transactions - before == transactions
    assert await committed(broker.bootstrap, topic) == sorted([b"busy"] * 5 + [b"a", b"b"])


async def test_after_an_outage_the_writer_recovers_without_waiting_for_traffic(broker, topic_prefix):
    topic, writer = await started_writer(broker, topic_prefix, "raw-bounce", kafka_ack_timeout=2)
    try:
        await writer.write([OutRecord("m1", b"before")])
        broker.stop()
        with pytest.raises(KafkaUnavailable):
            await writer.write([OutRecord("m2", b"refused")])
        assert not writer.healthy
        broker.start()
        # No write in between: the producer is re-created in the background, which
        # also aborts whatever the failed one left open (it would hold back the
        # last stable offset for every read_committed consumer until it timed out).
        assert await wait_until(lambda: writer.healthy, timeout=30), "writer did not reconnect by itself"
        await writer.write([OutRecord("m3", b"after")])
    finally:
        await writer.stop()
    assert await committed(broker.bootstrap, topic) == [b"after", b"before"]

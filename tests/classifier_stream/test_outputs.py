"""At-least-once for the outputs the agents send through the producer (agents.py, top).

Each link of the argument gets a test: a send through the producer is in the
accumulator that `app.producer.flush()` waits for (live broker); Faust's
consumer flushes the producer before it commits offsets; aiokafka reports a
failed send before that flush returns; a failed send stops commits and
crashes the consumer.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.producer.message_accumulator import MessageAccumulator
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from bounceflow_classifier import agents
from bounceflow_classifier.app import create_app
from bounceflow_classifier.settings import ClassifierSettings
from classifier_stream.test_transport import new_consumer
from kafka_broker import create_topics

INPUT = TP("raw-bounce", 0)
LINGER = 3.0  # seconds


async def end_offset(bootstrap: str, topic: str) -> int:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        return (await reader.end_offsets([tp]))[tp]
    finally:
        await reader.stop()


async def test_a_send_through_the_producer_is_durable_once_the_producer_is_flushed(kafka_broker, topic_prefix):
    topic = f"{topic_prefix}classified-bounce"
    await create_topics(kafka_broker.bootstrap, [topic], partitions=1)
    settings = ClassifierSettings(kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix)
    # A long linger keeps the record in aiokafka's accumulator for a while; the flush
    # does not cut it short, it returns once the broker has acknowledged the batch.
    app = create_app(settings, 1, store="memory://", web_enabled=False, producer_linger=LINGER)
    send = agents._sender(app, app.topic(topic))
    await app.producer.start()
    try:
        await send("msg-1", b"classified")
        assert await end_offset(kafka_broker.bootstrap, topic) == 0  # still in the accumulator
        await asyncio.wait_for(app.producer.flush(), LINGER + 30)  # what Faust awaits before a commit
        assert await end_offset(kafka_broker.bootstrap, topic) == 1
    finally:
        await app.producer.stop()


async def test_faust_flushes_the_producer_before_it_commits_offsets(monkeypatch):
    consumer = new_consumer()
    steps = []

    async def flush():
        steps.append("flush")

    async def commit(offsets):
        steps.append(("commit", dict(offsets)))
        return True

    monkeypatch.setattr(consumer.app.producer, "flush", flush)
    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit", lambda self, offsets: commit(offsets))
    monkeypatch.setattr(consumer, "assignment", lambda: {INPUT})
    assert await consumer._commit_offsets({INPUT: 5})
    assert steps == ["flush", ("commit", {INPUT: 5})]


async def test_a_failed_send_stops_offset_commits_and_crashes_the_consumer(monkeypatch, caplog):
    consumer = new_consumer()
    app = consumer.app
    commits, crashes = [], []

    async def commit(offsets):
        commits.append(offsets)
        return True

    async def crash(reason):
        crashes.append(reason)

    monkeypatch.setattr(app.producer, "flush", lambda: asyncio.sleep(0))
    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit", lambda self, offsets: commit(offsets))
    monkeypatch.setattr(consumer, "assignment", lambda: {INPUT})
    monkeypatch.setattr(consumer, "crash", crash)

    assert await consumer._commit_offsets({INPUT: 5})
    failed: asyncio.Future = asyncio.get_running_loop().create_future()
    failed.set_exception(TimeoutError("no broker"))
    with caplog.at_level(logging.ERROR, logger=agents.__name__):
        agents._check_sent(app, "classified-bounce", "msg-1", failed)
    assert any(getattr(r, "message_id", None) == "msg-1" for r in caplog.records)

    assert not await consumer._commit_offsets({INPUT: 9})
    assert commits == [{INPUT: 5}]
    assert len(crashes) == 1 and isinstance(crashes[0], TimeoutError)


async def test_a_successful_send_leaves_commits_alone():
    consumer = new_consumer()
    done: asyncio.Future = asyncio.get_running_loop().create_future()
    done.set_result(None)
    agents._check_sent(consumer.app, "classified-bounce", "msg-1", done)
    assert consumer._send_failure is None


async def test_aiokafka_fails_a_send_before_the_flush_that_waited_for_it_returns():
    # `_check_sent` must have refused commits by the time Faust's flush returns and it commits.
    accumulator = MessageAccumulator(cluster=None, batch_size=16384, compression_type=0, batch_ttl=30)
    tp = TopicPartition("classified-bounce", 0)
    steps = []
    sent = await accumulator.add_message(tp, b"msg-1", b"classified", timeout=1)
    sent.add_done_callback(lambda fut: steps.append(("send failed", type(fut.exception()).__name__)))

    async def flush_then_commit():  # as Faust's `Consumer._commit_offsets`
        await accumulator.flush()
        steps.append("flush returned")

    committing = asyncio.ensure_future(flush_then_commit())
    await asyncio.sleep(0)
    accumulator._batches[tp][0].failure(TimeoutError("no broker"))  # what the sender does when it gives up
    await committing
    assert steps == [("send failed", "TimeoutError"), "flush returned"]

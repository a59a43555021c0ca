"""The classifier worker as a process on the real broker, across a SIGKILL restart.

Phase 1: a matched bounce per sent message (constructed DSNs and corpus
mails), a bounce for an unknown id, one without a key (re-keyed by the id in
the returned message) and one that arrives before its `outgoing` record.
Then SIGKILL once the group committed its input, so the table can only come
back from RocksDB and the changelog. Phase 2: bounces for messages sent before
the restart must still match; nothing is skipped, and a replayed bounce is
classified the same way each time.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bounceflow.models import ClassifiedBounce, DeferredBounce
from classifier_stream.bounces import dsn_mime, new_id, outgoing, raw_bounce
from classifier_stream.worker import ClassifierWorker, TopicReader, wait_committed
from kafka_broker import create_topics

CORPUS = Path("/work/shared/corpus/eml")
CORPUS_MAILS = ["lhost-exim-02.eml", "lhost-sendmail-01.eml", "lhost-exim-05.eml"]
TOPICS = ("outgoing", "raw-bounce", "raw-bounce-retry", "classified-bounce")
TIMEOUT = 90.0


def corpus_mail(name: str) -> bytes:
    path = CORPUS / name
    return path.read_bytes()


def by_event(records) -> dict[str, list[ClassifiedBounce]]:
    seen = defaultdict(list)
    for record in records:
        out = ClassifiedBounce.from_bytes(record.value)
        seen[out.event_id].append(out)
    return seen


def verdict(out: ClassifiedBounce) -> tuple:
    """What must not differ between two classifications of the same bounce."""
    return (out.message_id, out.matched, out.account, out.classification.model_dump())


async def test_worker_classifies_and_survives_sigkill(kafka_broker, topic_prefix, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic = lambda name: f"{topic_prefix}{name}"  # noqa: E731
    await create_topics(bootstrap, [topic(t) for t in TOPICS], partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    classified = await TopicReader(bootstrap, topic("classified-bounce")).start()
    retries = await TopicReader(bootstrap, topic("raw-bounce-retry")).start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    worker = ClassifierWorker(bootstrap, topic_prefix, tmp_path / "data", tmp_path / "worker.log",
                              classifier_join_retry_interval="0.5", classifier_join_retry_timeout="5")

    async def send(name: str, key: str | None, value: bytes) -> None:
        await producer.send_and_wait(topic(name), value, key=key.encode() if key else None)

    try:
        # Phase 1: sent messages and their bounces, before the worker starts.
        sent = [new_id() for _ in range(6)]
        for mid in sent:
            await send("outgoing", mid, outgoing(mid).to_bytes())
        expected: dict[str, tuple[str | None, bool]] = {}  # event id -> (message id, matched)
        mimes = [dsn_mime(sent[0]), dsn_mime(sent[1]), *(corpus_mail(n) for n in CORPUS_MAILS)]
        for mid, mime in zip(sent, mimes):
            bounce = raw_bounce(mime, message_id=mid)
            await send("raw-bounce", mid, bounce.to_bytes())
            expected[bounce.event_id] = (mid, True)
        unknown = raw_bounce(dsn_mime("nope"), message_id=new_id())
        await send("raw-bounce", unknown.message_id, unknown.to_bytes())
        expected[unknown.event_id] = (unknown.message_id, False)
        keyless = raw_bounce(dsn_mime(sent[5]), message_id=None)
        await send("raw-bounce", None, keyless.to_bytes())
        expected[keyless.event_id] = (sent[5], True)

        worker.start()
        assert worker.health() == 200

        # A bounce that overtakes its outgoing record: deferred, then matched.
        late = new_id()
        early_bounce = raw_bounce(dsn_mime(late), message_id=late)
        await send("raw-bounce", late, early_bounce.to_bytes())
        await retries.until(lambda rs: any(DeferredBounce.from_bytes(r.value).bounce.event_id == early_bounce.event_id for r in rs), TIMEOUT)
        await send("outgoing", late, outgoing(late).to_bytes())
        expected[early_bounce.event_id] = (late, True)

        await classified.until(lambda rs: expected.keys() <= by_event(rs).keys(), TIMEOUT)
        seen = by_event(classified.records)
        for event_id, (mid, matched) in expected.items():
            out = seen[event_id][0]
            assert (out.message_id, out.matched) == (mid, matched), event_id
        assert seen[keyless.event_id][0].classification.linked_message_id == sent[5]
        first = seen[expected_key(expected, sent[0])][0]
        assert first.account == "demo" and first.dsn.envid == "cust-env-1"
        assert first.classification.category == "dsn-failure"

        status, body = worker.get("/metrics")
        assert status == 200 and b'bounceflow_classifier_classified_total{category="dsn-failure",matched="true"}' in body

        # Kill once every input record is committed: after this, only RocksDB and the
        # changelog know the sent messages (the outgoing records are not read again).
        ends = {}
        probe = await TopicReader(bootstrap, topic("outgoing")).start()
        for name in ("outgoing", "raw-bounce"):
            tps = [TopicPartition(topic(name), p) for p in range(4)]
            ends.update(await probe._consumer.end_offsets(tps))
        await probe.stop()
        await wait_committed(admin, f"{topic_prefix}bounceflow-classifier", ends, TIMEOUT)
        worker.kill()

        # Phase 2, while the worker is down: bounces for messages sent before the restart.
        phase2 = {}
        for mid in (sent[0], sent[2], late):
            bounce = raw_bounce(dsn_mime(mid), message_id=mid)
            await send("raw-bounce", mid, bounce.to_bytes())
            phase2[bounce.event_id] = (mid, True)
        fresh = new_id()
        await send("outgoing", fresh, outgoing(fresh).to_bytes())
        bounce = raw_bounce(dsn_mime(fresh), message_id=fresh)
        await send("raw-bounce", fresh, bounce.to_bytes())
        phase2[bounce.event_id] = (fresh, True)
        expected.update(phase2)

        worker.start()
        await classified.until(lambda rs: expected.keys() <= by_event(rs).keys(), TIMEOUT)
        seen = by_event(classified.records)
        for event_id, (mid, matched) in phase2.items():
            out = seen[event_id][0]
            assert (out.message_id, out.matched) == (mid, matched), f"{event_id}: table lost {mid}"
        # Nothing skipped (above), and a bounce seen twice was classified the same way.
        for event_id, outs in seen.items():
            assert len({repr(verdict(o)) for o in outs}) == 1, event_id
        assert set(seen) == set(expected)

        assert worker.terminate() == 0  # SIGTERM: clean shutdown
    finally:
        worker.kill()
        await classified.stop()
        await retries.stop()
        await admin.close()
        await producer.stop()


async def until_metric(worker: ClassifierWorker, line: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while line not in worker.get("/metrics")[1]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{line!r} not in /metrics after {timeout}s")
        await asyncio.sleep(0.2)


def expected_key(expected: dict, message_id: str) -> str:
    return next(e for e, (mid, _) in expected.items() if mid == message_id)


async def test_expired_entries_are_deleted_with_changelog_tombstones(kafka_broker, topic_prefix, tmp_path):
    bootstrap = kafka_broker.bootstrap
    await create_topics(bootstrap, [f"{topic_prefix}{t}" for t in TOPICS], partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    sent = [new_id() for _ in range(5)]
    try:
        for mid in sent:
            await producer.send_and_wait(f"{topic_prefix}outgoing", outgoing(mid).to_bytes(), key=mid.encode())
    finally:
        await producer.stop()
    worker = ClassifierWorker(bootstrap, topic_prefix, tmp_path / "data", tmp_path / "worker.log",
                              classifier_table_ttl="3", classifier_table_sweep_interval="1")
    changelog = TopicReader(bootstrap, f"{topic_prefix}bounceflow-classifier-sent-messages-changelog")
    try:
        worker.start()
        # Table writes went to the changelog, so Faust has created that topic by then.
        await until_metric(worker, b"bounceflow_classifier_outgoing_recorded_total 5.0", TIMEOUT)
        await changelog.start()
        # Each key: its entry, then a tombstone written by the sweep (outside stream iteration).
        tombstoned = lambda rs: {r.key.decode() for r in rs if r.value is None} >= set(sent)  # noqa: E731
        await changelog.until(tombstoned, TIMEOUT)
        assert {r.key.decode() for r in changelog.records if r.value is not None} == set(sent)
        assert worker.terminate() == 0
    finally:
        worker.kill()
        await changelog.stop()

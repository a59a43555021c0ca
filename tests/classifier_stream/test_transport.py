"""The classifier's Faust transport (`transport.py`) and the table's changelog partition.

Without Kafka: the consumer and its thread are built but never started.
"""

from __future__ import annotations

import faust.transport.consumer
from faust.types import TP
from intervaltree import IntervalTree

from bounceflow_classifier.app import create_app
from bounceflow_classifier.settings import ClassifierSettings
from bounceflow_classifier.transport import Consumer
from classifier_stream.bounces import new_id, outgoing
from classifier_stream.test_agents import make_harness

TOPIC_PARTITION = TP("outgoing", 0)


def new_consumer(**settings) -> Consumer:
    config = ClassifierSettings(**{"kafka_bootstrap": "127.0.0.1:1", **settings})
    consumer = create_app(config, 4, store="memory://", web_enabled=False).consumer
    assert isinstance(consumer, Consumer)
    return consumer


def intervals(tree: IntervalTree) -> list[tuple[int, int]]:
    return [(i.begin, i.end) for i in sorted(tree)]


async def faust_gaps(gaps: list[tuple[int, int]], committed: int | None) -> list[tuple[int, int]]:
    """The intervals Faust's own `_add_gap` keeps after the same calls."""
    consumer = new_consumer()
    consumer._committed_offset[TOPIC_PARTITION] = committed
    for first, last in gaps:
        await faust.transport.consumer.Consumer._add_gap(consumer, TOPIC_PARTITION, first, last)
    return intervals(consumer._gap[TOPIC_PARTITION])


async def test_gaps_in_offset_order_give_the_tree_faust_builds():
    gaps = [(3, 3), (4, 4), (10, 12), (20, 20)]  # commit markers, one of them right after another
    consumer = new_consumer()
    consumer._committed_offset[TOPIC_PARTITION] = 3
    for first, last in gaps:
        await consumer._add_gap(TOPIC_PARTITION, first, last)
    assert intervals(consumer._gap[TOPIC_PARTITION]) == await faust_gaps(gaps, committed=3)
    assert intervals(consumer._gap[TOPIC_PARTITION]) == [(4, 5), (10, 13), (20, 21)]  # 3 was committed


async def test_a_gap_before_the_end_of_the_tree_is_merged_as_faust_does():
    gaps = [(10, 15), (12, 20), (5, 6)]
    consumer = new_consumer()
    for first, last in gaps:
        await consumer._add_gap(TOPIC_PARTITION, first, last)
    assert intervals(consumer._gap[TOPIC_PARTITION]) == await faust_gaps(gaps, committed=None)
    assert intervals(consumer._gap[TOPIC_PARTITION]) == [(5, 7), (10, 21)]


async def committed_offsets(add_gap) -> list[int]:
    """Offsets `_new_offset` returns, commit after commit, when 3 and 6 are commit markers."""
    consumer = new_consumer()
    tp = TOPIC_PARTITION
    consumer._committed_offset[tp] = 0
    for offset in (1, 2, 4, 5, 7):
        consumer._acked[tp].append(offset)
        consumer._acked_index[tp].add(offset)
    # What Faust's fetch loop calls on reading 4 after 2 and 7 after 5.
    await add_gap(consumer, tp, 3, 4)
    await add_gap(consumer, tp, 6, 7)
    offsets = []
    while (offset := consumer._new_offset(tp)) is not None and offset not in offsets:
        offsets.append(offset)
        consumer._committed_offset[tp] = offset  # as `Consumer.commit` records it
    return offsets


async def test_offsets_are_committed_across_commit_markers_as_faust_does():
    ours = await committed_offsets(Consumer._add_gap)
    assert ours == await committed_offsets(faust.transport.consumer.Consumer._add_gap)
    assert ours[-1] == 8  # everything up to the last record


async def test_consumer_fetches_like_the_other_services_and_reads_committed_records():
    consumer = new_consumer(kafka_fetch_min_bytes=12345, kafka_fetch_max_wait_ms=67)
    kafka_consumer = consumer._thread._create_worker_consumer(consumer.transport)
    assert kafka_consumer._fetch_min_bytes == 12345
    assert kafka_consumer._fetch_max_wait_ms == 67
    assert kafka_consumer._isolation_level == "read_committed"  # no records of aborted transactions


async def test_table_write_from_an_outgoing_record_goes_to_that_records_partition():
    harness = make_harness()
    harness.app.producer.key_partition = None  # must not be asked: the partition is known
    msg = outgoing(new_id())
    async with harness.agents.record_outgoing.test_context() as agent:
        await agent.put(key=msg.message_id.encode(), value=msg.to_bytes(), partition=3)
    changelog = harness.app.producer.buffer.pending.get_nowait()
    assert changelog.message.partition == 3
    assert changelog.message.key == msg.message_id.encode()

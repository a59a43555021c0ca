"""Kafka goes away and comes back: 451 meanwhile, nothing half-written, then 250 again.

Uses its own broker (never the shared one), stopped and restarted on the same
ports and data.
"""

from __future__ import annotations

import asyncio

import pytest

from bounceflow.verp import new_message_id
from kafka_broker import KafkaBroker
from bounce_receiver.receiver_harness import DOMAINS, bounce_mime, send_bounce


@pytest.fixture
async def own_broker(tmp_path):
    broker = KafkaBroker(tmp_path / "kafka")
    await asyncio.to_thread(broker.start)
    yield broker
    await asyncio.to_thread(broker.stop)


async def test_outage_gives_451_and_no_record_then_recovers(start_receiver, own_broker):
    receiver = await start_receiver(kafka_bootstrap=own_broker.bootstrap, kafka_ack_timeout=3.0)
    before = new_message_id()
    assert (await send_bounce(receiver.port, "", [receiver.verp(before)], bounce_mime())).code == 250

    await asyncio.to_thread(own_broker.stop)
    lost = [new_message_id(), new_message_id()]
    rcpts = [receiver.verp(lost[0]), receiver.verp(lost[1], domain=DOMAINS[1])]
    reply = await send_bounce(receiver.port, "", rcpts, bounce_mime())
    assert reply.code == 451 and reply.text.startswith("4.3.0"), reply

    await asyncio.to_thread(own_broker.start)
    after = new_message_id()
    for _attempt in range(20):  # what a remote MTA does: retry the 451 until it gets 250
        reply = await send_bounce(receiver.port, "", [receiver.verp(after)], bounce_mime())
        if reply.code == 250:
            break
        assert reply.code == 451, reply
    assert reply.code == 250, reply

    ids = [r.message_id for _, r in await receiver.records()]
    assert sorted(ids) == sorted([before, after])  # neither of the refused mail's two records

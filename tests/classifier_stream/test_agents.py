"""The classifier's agents without Kafka: `agent.test_context()`, `memory://` store.

Outputs go to in-memory channels the test reads. A deferred bounce is carried
from the retry output to the retry agent by the test itself, so each step of
the deferred join is visible.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import faust
import pytest
from faust.types import TP

from bounceflow.models import ClassifiedBounce, DeferredBounce, RawBounce
from bounceflow_classifier import agents, join, tables
from bounceflow_classifier.app import Topics, create_app
from bounceflow_classifier.settings import ClassifierSettings
from classifier_stream.bounces import dsn_mime, new_id, outgoing, raw_bounce

PARTITIONS = 4


@dataclass
class Harness:
    app: faust.App
    agents: agents.Agents
    classified: faust.types.ChannelT  # subscribers of the output channels
    rekeyed: faust.types.ChannelT
    deferred: faust.types.ChannelT

    async def send_outgoing(self, msg) -> None:
        async with self.agents.record_outgoing.test_context() as agent:
            await agent.put(key=msg.message_id.encode(), value=msg.to_bytes())

    async def send_bounce(self, key: str | None, value: bytes) -> None:
        async with self.agents.classify_raw_bounce.test_context() as agent:
            await agent.put(key=key.encode() if key else None, value=value)

    async def send_retry(self, key: str, deferred: DeferredBounce) -> None:
        async with self.agents.retry_join.test_context() as agent:
            await agent.put(key=key.encode(), value=deferred.to_bytes())

    async def next_classified(self) -> tuple[str, ClassifiedBounce]:
        event = await self.classified.get(timeout=5)
        return event.key.decode(), ClassifiedBounce.from_bytes(event.value)

    async def next_deferred(self) -> tuple[str, DeferredBounce]:
        event = await self.deferred.get(timeout=5)
        return event.key.decode(), DeferredBounce.from_bytes(event.value)

    async def next_rekeyed(self) -> tuple[str, RawBounce]:
        event = await self.rekeyed.get(timeout=5)
        return event.key.decode(), RawBounce.from_bytes(event.value)

    def nothing_else(self) -> bool:
        return self.classified.empty() and self.rekeyed.empty() and self.deferred.empty()


def make_harness(**settings) -> Harness:
    defaults = dict(kafka_bootstrap="127.0.0.1:1", classifier_join_retry_interval=0.01)
    config = ClassifierSettings(**{**defaults, **settings})
    app = create_app(config, PARTITIONS, store="memory://", web_enabled=False)
    app.finalize()
    app.flow_control.resume()
    # No broker to ask for partition metadata: the changelog record of a table write
    # goes to the producer's (never started) buffer, on partition 0.
    app.producer.key_partition = lambda topic, key: TP(topic, 0)
    topics = Topics(*(app.channel(maxsize=100) for _ in range(4)))
    table = tables.sent_messages_table(app, PARTITIONS)
    handles = agents.register(app, config, topics, table)
    subscribe = lambda channel: channel.clone(is_iterator=True)  # noqa: E731 - channels deliver to subscribers
    return Harness(app, handles, subscribe(topics.classified), subscribe(topics.raw_bounce), subscribe(topics.retry))


@pytest.fixture
def harness() -> Harness:
    return make_harness()


async def test_bounce_for_a_sent_message_is_published_matched(harness):
    mid = new_id()
    msg = outgoing(mid)
    await harness.send_outgoing(msg)
    bounce = raw_bounce(dsn_mime(mid), message_id=mid)
    await harness.send_bounce(mid, bounce.to_bytes())

    key, out = await harness.next_classified()
    assert key == mid
    assert out.matched and out.message_id == mid and out.event_id == bounce.event_id
    assert (out.account, out.recipient, out.envelope_from, out.track_bounces) == (
        msg.account, msg.recipient, msg.envelope_from, True)
    assert out.dsn == msg.dsn  # the notifier forwards by the customer's own DSN request
    assert out.classification.category == "dsn-failure"
    assert out.classification.reason == "userunknown" and out.classification.status == "5.1.1"
    assert out.mime_b64 == bounce.mime_b64 and out.rcpt_to == bounce.rcpt_to
    assert harness.nothing_else()


async def test_unknown_id_is_deferred_then_published_unmatched():
    harness = make_harness(classifier_join_retry_timeout=0)
    mid = new_id()
    bounce = raw_bounce(dsn_mime(mid), message_id=mid)
    await harness.send_bounce(mid, bounce.to_bytes())

    key, deferred = await harness.next_deferred()
    assert key == mid and deferred.bounce == bounce and deferred.attempt == 2
    assert harness.classified.empty()

    await harness.send_retry(key, deferred)
    key, out = await harness.next_classified()
    assert key == bounce.event_id  # unmatched: keyed by the raw bounce's event id
    assert not out.matched and out.message_id == mid and out.account is None
    assert out.classification.category == "dsn-failure"
    assert harness.nothing_else()


async def test_late_outgoing_record_is_matched_on_a_later_attempt():
    harness = make_harness(classifier_join_retry_timeout=60)
    mid = new_id()
    bounce = raw_bounce(dsn_mime(mid), message_id=mid)
    await harness.send_bounce(mid, bounce.to_bytes())
    key, deferred = await harness.next_deferred()

    # Still missing: deferred again, with the next attempt number.
    await harness.send_retry(key, deferred)
    key, again = await harness.next_deferred()
    assert again.attempt == 3 and again.first_attempt_at == deferred.first_attempt_at

    await harness.send_outgoing(outgoing(mid))
    await harness.send_retry(key, again)
    key, out = await harness.next_classified()
    assert key == mid and out.matched and out.event_id == bounce.event_id
    assert harness.nothing_else()


async def test_bounce_without_key_is_rekeyed_by_the_id_in_the_returned_message(harness):
    mid = new_id()
    await harness.send_outgoing(outgoing(mid))
    bounce = raw_bounce(dsn_mime(mid), message_id=None)  # role address, rewritten envelope
    await harness.send_bounce(None, bounce.to_bytes())

    key, rekeyed = await harness.next_rekeyed()
    assert key == mid and rekeyed.message_id == mid and rekeyed.event_id == bounce.event_id
    assert rekeyed.meta[join.REKEY_META] == "X-Bounceflow-Id"
    assert harness.classified.empty()

    await harness.send_bounce(key, rekeyed.to_bytes())  # it comes back on raw-bounce
    key, out = await harness.next_classified()
    assert key == mid and out.matched and out.event_id == bounce.event_id
    assert harness.nothing_else()


async def test_bounce_without_any_id_is_published_unmatched(harness):
    mime = dsn_mime("x").replace(b"X-Bounceflow-Id: x\r\n", b"")
    bounce = raw_bounce(mime, message_id=None)
    await harness.send_bounce(None, bounce.to_bytes())

    key, out = await harness.next_classified()
    assert key == bounce.event_id and not out.matched and out.message_id is None
    assert out.classification.category == "dsn-failure"
    assert harness.nothing_else()


async def test_bounce_received_after_the_ttl_is_unmatched_without_waiting():
    harness = make_harness(classifier_table_ttl=24 * 3600)
    mid = new_id()
    await harness.send_outgoing(outgoing(mid))
    late = datetime.now(timezone.utc) + timedelta(days=2)
    bounce = raw_bounce(dsn_mime(mid), message_id=mid, received_at=late)
    await harness.send_bounce(mid, bounce.to_bytes())

    key, out = await harness.next_classified()
    assert key == bounce.event_id and not out.matched and out.message_id == mid
    assert harness.nothing_else()  # no deferral: waiting cannot bring an expired entry back


async def test_undecodable_mime_is_published_unknown_with_the_error(harness):
    mid = new_id()
    await harness.send_outgoing(outgoing(mid))
    bounce = raw_bounce(b"", message_id=mid).model_copy(update={"mime_b64": "%%% not base64 %%%"})
    await harness.send_bounce(mid, bounce.to_bytes())

    key, out = await harness.next_classified()
    assert key == mid and out.matched  # still linked to its message
    assert out.classification.category == "unknown"
    assert "base64" in out.classification.error


async def test_garbage_record_is_published_unknown_not_dropped(harness):
    await harness.send_bounce("abc", b"\xff\x00 not json")
    key, out = await harness.next_classified()
    assert out.event_id == key and out.event_id.endswith(":0")  # topic:partition:offset, stable
    assert out.classification.category == "unknown" and "undecodable" in out.classification.error
    assert base64.b64decode(out.mime_b64) == b"\xff\x00 not json"  # the bytes are kept


async def test_parser_failure_does_not_stop_the_stream(harness, monkeypatch):
    def broken(raw: bytes):
        raise RuntimeError("boom")

    monkeypatch.setattr(join, "parse_bounce", broken)
    bounce = raw_bounce(dsn_mime("x"), message_id=None)
    await harness.send_bounce(None, bounce.to_bytes())
    _, out = await harness.next_classified()
    assert out.classification.category == "unknown" and "boom" in out.classification.error


async def test_invalid_outgoing_record_is_not_stored(harness):
    async with harness.agents.record_outgoing.test_context() as agent:
        await agent.put(key=b"k", value=b"{}")
    assert list(harness.agents.table.keys()) == []


async def test_expiry_deletes_only_entries_older_than_the_cutoff(harness):
    now = datetime.now(timezone.utc)
    old, fresh = new_id(), new_id()
    await harness.send_outgoing(outgoing(old, submitted_at=now - timedelta(hours=2)))
    await harness.send_outgoing(outgoing(fresh, submitted_at=now))

    assert await tables.expire(harness.agents.table, now - timedelta(hours=1)) == 1
    assert tables.lookup(harness.agents.table, old) is None
    assert tables.lookup(harness.agents.table, fresh).message_id == fresh


class _Consumer:
    def __init__(self, highwater: int | None) -> None:
        self._highwater = highwater

    def highwater(self, tp: TP) -> int | None:
        return self._highwater


class _App:
    def __init__(self, highwater: int | None) -> None:
        self.consumer = _Consumer(highwater)


class _Outgoing:
    topics = ("outgoing",)

    def get_topic_name(self) -> str:
        return "outgoing"


@pytest.mark.parametrize(
    ("processed", "highwater", "behind"),
    [
        (None, 10, False),  # nothing read yet: unknown counts as not behind
        (9, 10, False),  # offset 9 was the last record: caught up
        (8, 10, False),  # offset 9 is the commit marker of the transaction that wrote 8
        (7, 10, True),  # a record (8) is still waiting
        (3, None, False),  # no broker metadata
    ],
)
def test_outgoing_progress_treats_a_trailing_commit_marker_as_caught_up(processed, highwater, behind):
    progress = agents.OutgoingProgress(_App(highwater), _Outgoing())
    if processed is not None:
        progress.processed(0, processed)
    assert progress.behind(0) is behind

"""The agents: fill the table from `outgoing`, classify and join `raw-bounce`.

- `record-outgoing`: each `outgoing` record becomes a compact table entry.
- `classify-raw-bounce`: parse, join with the table by the record key, then
  carry out the outcome from `join`: publish to classified-bounce, re-key to
  raw-bounce (no key, but the returned message names one of our ids) or defer
  to raw-bounce-retry (the `outgoing` record may not have reached the table).
- `retry-join`: waits until a deferred bounce is due, joins again; publishes
  (matched, or unmatched after `classifier_join_retry_timeout`) or defers again.
- a timer deletes expired table entries.

Each agent yields what it did (the stored message id or the outcome), so a
unit test's `put()` returns once the event was handled.

Outputs are sent without waiting for each acknowledgement, through the app's
producer (`app.producer.send`) rather than `Topic.send`: Faust's path wraps
each record in a PendingMessage and a FutureMessage and runs sensors and a
callback per record, which cost the worker more CPU than aiokafka's own send.
The record is the same (key and value bytes, no headers, the producer's
default partitioner on the key). At-least-once holds as with `Topic.send`:
the send puts the record into aiokafka's accumulator before the agent takes
the next event, and Faust's consumer flushes the producer (`app.producer.flush()`,
which waits for every batch in the accumulator) before it commits the input
offsets, so an offset is committed only after what its record produced is
durable. A send that fails even so (aiokafka gave up retrying) stops commits
for good (`transport.Consumer.refuse_commits`): the worker crashes and the
records are read again; under `Topic.send` such a failure went unnoticed.
Outputs carry the raw bounce's event id, so a replay is a harmless
duplicate. tests/classifier_stream/test_outputs.py checks each link.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial

import faust
from faust.types import TP
from pydantic import ValidationError

from bounceflow.models import DeferredBounce, OutgoingMessage, RawBounce

from . import join, tables
from .app import Topics
from .metrics import CLASSIFIED, JOIN_RETRIES, OUTGOING_RECORDED, OUTGOING_SKIPPED, REKEYED, UNDECODABLE
from .settings import ClassifierSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CATCH_UP_POLL = 0.02  # seconds between two lookups while `outgoing` catches up


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Agents:
    """Handles on what `register` created (tests use `agent.test_context()`)."""

    record_outgoing: faust.types.AgentT
    classify_raw_bounce: faust.types.AgentT
    retry_join: faust.types.AgentT
    table: faust.Table


def policy_of(settings: ClassifierSettings) -> join.JoinPolicy:
    return join.JoinPolicy(
        ttl=settings.table_ttl,
        retry_interval=settings.join_retry_interval,
        retry_timeout=settings.join_retry_timeout,
    )


def register(
    app: faust.App,
    settings: ClassifierSettings,
    topics: Topics,
    table: faust.Table,
    clock: Clock = utcnow,
) -> Agents:
    """Create the agents and the expiry timer on `app`."""
    policy = policy_of(settings)
    emit = _Emitter(app, topics)
    progress = OutgoingProgress(app, topics.outgoing)

    @app.agent(topics.outgoing, name="record-outgoing")
    async def record_outgoing(stream):
        async for event in stream.events():
            stored = _record(table, event, clock(), policy)
            progress.processed(event.message.partition, event.message.offset)
            yield stored

    @app.agent(topics.raw_bounce, name="classify-raw-bounce")
    async def classify_raw_bounce(stream):
        async for event in stream.events():
            decoded = _decode_bounce(event, clock())
            if isinstance(decoded, join.Publish):
                outcome = decoded
            else:
                outcome = await _first_attempt(table, progress, event.message.partition, *decoded, clock, policy)
            await emit(outcome)
            yield outcome

    @app.agent(topics.retry, name="retry-join")
    async def retry_join(stream):
        async for event in stream.events():
            deferred = _decode_deferred(event)
            if deferred is None:
                yield None
                continue
            wait = (tables.as_utc(deferred.not_before) - clock()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            outcome = _retry_attempt(table, event, deferred, clock(), policy)
            await emit(outcome)
            yield outcome

    @app.timer(interval=settings.classifier_table_sweep_interval, name="expire-sent-messages")
    async def expire_sent_messages():
        if app.in_recovery or app.rebalancing:
            return  # next tick; the table is not complete yet
        expired = await tables.expire(table, clock() - policy.ttl)
        if expired:
            log.info("expired sent messages", extra={"count": expired})

    return Agents(record_outgoing, classify_raw_bounce, retry_join, table)


def _record(table: faust.Table, event: faust.types.EventT, now: datetime, policy: join.JoinPolicy) -> str | None:
    try:
        msg = OutgoingMessage.from_bytes(event.value)
    except (ValidationError, ValueError, TypeError) as exc:
        OUTGOING_SKIPPED.labels("invalid").inc()
        log.error("invalid outgoing record, not stored", extra={"message_id": _key(event), "where": _where(event), "error": str(exc)[:300]})
        return None
    if tables.as_utc(msg.submitted_at) < now - policy.ttl:
        OUTGOING_SKIPPED.labels("expired").inc()
        return None  # a replay of old history: it would be expired on arrival
    tables.remember(table, msg)
    OUTGOING_RECORDED.inc()
    return msg.message_id


def _decode_bounce(event: faust.types.EventT, now: datetime) -> join.Publish | tuple:
    """(key, RawBounce, Classification), or the `unknown` record for an undecodable one."""
    key = _key(event)
    try:
        raw = RawBounce.from_bytes(event.value)
    except (ValidationError, ValueError, TypeError) as exc:
        UNDECODABLE.labels("record").inc()
        log.error("undecodable raw-bounce record, published as unknown", extra={"message_id": key, "where": _where(event), "error": str(exc)[:300]})
        return join.undecodable_record(key, event.value, _where(event), _timestamp(event, now), f"undecodable raw-bounce record: {exc}", now)
    classification = join.classify(raw)
    _note_mime_error(raw, classification, key)
    return key, raw, classification


async def _first_attempt(
    table: faust.Table,
    progress: "OutgoingProgress",
    partition: int,
    key: str | None,
    raw: RawBounce,
    classification,
    clock: Clock,
    policy: join.JoinPolicy,
) -> join.Outcome:
    """Join; on a miss while `outgoing` of this partition is still catching up, wait for it.

    After a restart with a backlog on both topics, the bounce stream can run
    ahead of the outgoing stream. Waiting here (at most one retry interval)
    keeps the join in order without a round trip through raw-bounce-retry.
    """
    deadline = time.monotonic() + policy.retry_interval.total_seconds()
    while True:
        sent = tables.lookup(table, key) if key is not None else None
        outcome = join.on_raw_bounce(key, raw, classification, sent, clock(), policy)
        if not isinstance(outcome, join.Defer) or not progress.behind(partition) or time.monotonic() >= deadline:
            return outcome
        await asyncio.sleep(CATCH_UP_POLL)


def _retry_attempt(
    table: faust.Table, event: faust.types.EventT, deferred: DeferredBounce, now: datetime, policy: join.JoinPolicy
) -> join.Outcome:
    key = _key(event) or deferred.bounce.message_id or deferred.bounce.event_id
    classification = join.classify(deferred.bounce)
    return join.on_deferred(key, deferred, classification, tables.lookup(table, key), now, policy)


def _decode_deferred(event: faust.types.EventT) -> DeferredBounce | None:
    try:
        return DeferredBounce.from_bytes(event.value)
    except (ValidationError, ValueError, TypeError) as exc:
        # Only this service writes raw-bounce-retry; a bad record there is a bug, and
        # the bounce it carried went to raw-bounce first: log loudly, do not loop on it.
        UNDECODABLE.labels("retry-record").inc()
        log.error("undecodable raw-bounce-retry record skipped", extra={"message_id": _key(event), "where": _where(event), "error": str(exc)[:300]})
        return None


def _note_mime_error(raw: RawBounce, classification, key: str | None) -> None:
    if classification.error and classification.category == "unknown":
        UNDECODABLE.labels("mime").inc()
        log.warning("bounce not parseable, classified unknown", extra={"message_id": key, "event_id": raw.event_id, "error": classification.error})


class OutgoingProgress:
    """How far `record-outgoing` got in each partition, against that partition's end."""

    def __init__(self, app: faust.App, outgoing: faust.types.ChannelT) -> None:
        self._app = app
        self._topic = outgoing.get_topic_name() if hasattr(outgoing, "topics") else None
        self._next: dict[int, int] = {}

    def processed(self, partition: int, offset: int) -> None:
        self._next[partition] = offset + 1

    def behind(self, partition: int) -> bool:
        """True when records of this partition were read but more are waiting.

        Unknown (nothing read since start, no broker metadata) counts as not
        behind: the bounce then takes the raw-bounce-retry path. `outgoing` is
        written in transactions, so the partition's last offset is usually a
        commit marker, which a read_committed consumer never receives: one
        offset short of the end counts as caught up (were it a record after
        all, the bounce takes the retry path, which is only slower).
        """
        done = self._next.get(partition)
        if done is None or self._topic is None:
            return False
        try:
            end = self._app.consumer.highwater(TP(self._topic, partition))
        except Exception:  # consumer not started (unit tests) or partition not assigned
            return False
        return end is not None and done < end - 1


class _Emitter:
    """Carries out an outcome: one send to the topic it names."""

    def __init__(self, app: faust.App, topics: Topics) -> None:
        self._send_classified = _sender(app, topics.classified)
        self._send_rekeyed = _sender(app, topics.raw_bounce)
        self._send_deferred = _sender(app, topics.retry)
        self._classified: dict[tuple[str, bool], object] = {}  # bound metric children, by labels

    async def __call__(self, outcome: join.Outcome) -> None:
        if isinstance(outcome, join.Publish):
            await self._send_classified(outcome.key, outcome.record.to_bytes())
            self._count(outcome.record.classification.category, outcome.record.matched)
        elif isinstance(outcome, join.Rekey):
            await self._send_rekeyed(outcome.key, outcome.record.to_bytes())
            REKEYED.inc()
            log.info("bounce re-keyed", extra={"message_id": outcome.key, "event_id": outcome.record.event_id})
        else:
            await self._send_deferred(outcome.key, outcome.record.to_bytes())
            JOIN_RETRIES.inc()

    def _count(self, category: str, matched: bool) -> None:
        child = self._classified.get((category, matched))
        if child is None:
            child = self._classified[category, matched] = CLASSIFIED.labels(category, str(matched).lower())
        child.inc()


Send = Callable[[str, bytes], Awaitable[None]]  # (key, value)


def _sender(app: faust.App, channel: faust.types.ChannelT) -> Send:
    """How to write one record to `channel`: a Kafka topic through the producer (see the top)."""
    if not isinstance(channel, faust.types.TopicT):  # the unit tests' in-memory channels
        async def send_to_channel(key: str, value: bytes) -> None:
            await channel.send(key=key.encode(), value=value)

        return send_to_channel

    topic = channel.get_topic_name()

    async def send_to_topic(key: str, value: bytes) -> None:
        sent = await app.producer.send(topic, key.encode(), value, partition=None, timestamp=None, headers=None)
        sent.add_done_callback(partial(_check_sent, app, topic, key))

    return send_to_topic


def _check_sent(app: faust.App, topic: str, key: str, sent: asyncio.Future) -> None:
    """Done callback of a send: a failure stops offset commits before the flush returns.

    aiokafka completes a batch's message futures right after the batch's own
    future, so this runs before the flush that waited for the batch returns.
    """
    if sent.cancelled():
        exc: BaseException = asyncio.CancelledError(f"send to {topic} cancelled")
    else:
        exc = sent.exception()
        if exc is None:
            return
    log.error("output not written, input offsets will not be committed", extra={"message_id": key, "topic": topic, "error": repr(exc)[:300]})
    app.consumer.refuse_commits(exc)


def _key(event: faust.types.EventT) -> str | None:
    key = event.key
    if key is None:
        return None
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)


def _where(event: faust.types.EventT) -> str:
    m = event.message
    return f"{m.topic}:{m.partition}:{m.offset}"


def _timestamp(event: faust.types.EventT, fallback: datetime) -> datetime:
    ts = event.message.timestamp
    return datetime.fromtimestamp(ts, timezone.utc) if ts else fallback

"""The table of sent messages: what the classifier remembers of each `outgoing` record.

One compact `SentMessage` per message id (no MIME), in a Faust table backed
by RocksDB (rocksdict) and a compacted changelog topic, partitioned like
`outgoing` and `raw-bounce` so a bounce is joined on the worker that holds
its message. Entries expire after `classifier_table_ttl`: a lookup treats an
entry older than the TTL (measured at the bounce's `received_at`) as absent,
and a timer deletes expired entries (with changelog tombstones) so the table
does not grow forever. Why not a windowed table: Faust keeps a windowed
table's expiry index in memory only (it is lost on restart) and expires keys
without writing tombstones, so the changelog would still grow.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import faust
from faust.streams import current_event
from pydantic import BaseModel, ConfigDict, Field

from bounceflow.models import DsnRequest, OutgoingMessage

from .metrics import TABLE_ENTRIES, TABLE_EXPIRED

log = logging.getLogger(__name__)

TABLE_NAME = "sent-messages"
SWEEP_CHUNK = 1000  # keys per step of the sweep; it yields to the event loop between steps


class SentMessage(BaseModel):
    """The table value: what a bounce needs to know about the message it returns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str
    account: str
    recipient: str
    envelope_from: str = Field(description="The customer's envelope ('' for <>).")
    track_bounces: bool
    dsn: DsnRequest = Field(default_factory=DsnRequest)
    submitted_at: datetime

    @classmethod
    def from_outgoing(cls, msg: OutgoingMessage) -> "SentMessage":
        # `msg` is validated already: copy its fields without validating them again.
        return cls.model_construct(
            message_id=msg.message_id,
            account=msg.account,
            recipient=msg.recipient,
            envelope_from=msg.envelope_from,
            track_bounces=msg.track_bounces,
            dsn=msg.dsn,
            submitted_at=as_utc(msg.submitted_at),
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_defaults=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SentMessage":
        return cls.model_validate_json(data)


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes on the wire are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class SentMessagesTable(faust.Table):
    """Faust's table; a write from `record-outgoing` names its changelog partition.

    With `use_partitioner=True` Faust hashes every changelog key with aiokafka's
    pure-Python murmur2. A write made while handling an `outgoing` record goes
    to that record's partition instead: the ingress's producer hashed the same
    key bytes with the same partitioner to put it there, and it is the
    partition whose RocksDB database Faust's store writes the entry to.
    Writes outside stream iteration (the expiry sweep) still use the partitioner.
    """

    def partition_for_key(self, key: object) -> int | None:
        event = current_event()
        return event.message.partition if event is not None else None


def sent_messages_table(app: faust.App, partitions: int) -> faust.Table:
    """The Faust table (raw bytes in and out; `SentMessage` is the value format).

    `use_partitioner=True`: changelog records are partitioned like the
    `outgoing` records with the same key (by the producer's default
    partitioner), so the table can be written outside of stream iteration:
    the expiry timer deletes keys that way.
    """
    return app.tables.add(
        SentMessagesTable(
            app,
            name=TABLE_NAME,
            partitions=partitions,
            key_type=bytes,  # bytes = the "raw" codec: the key bytes of `outgoing`
            value_type=bytes,
            use_partitioner=True,
            beacon=app.tables.beacon,
            help="Sent messages by message id (from `outgoing`), for joining bounces.",
        )
    )


def remember(table: faust.Table, msg: OutgoingMessage) -> None:
    """Store the compact record of one `outgoing` message."""
    table[msg.message_id.encode()] = SentMessage.from_outgoing(msg).to_bytes()


def lookup(table: faust.Table, message_id: str) -> SentMessage | None:
    """The stored record for `message_id`, or None (expiry is the caller's judgement).

    Reads the table's store directly: `table.get` asks the store whether the key
    exists and then reads it (two RocksDB reads); the store's `get` reads once.
    """
    value = table.data.get(message_id.encode())
    if value is None:
        return None
    try:
        return SentMessage.from_bytes(value)
    except ValueError:
        log.error("unreadable table entry", extra={"message_id": message_id})
        return None


async def expire(table: faust.Table, cutoff: datetime) -> int:
    """Delete entries submitted before `cutoff` from this worker's partitions; returns how many."""
    expired = 0
    seen = 0
    batch: list[bytes] = []
    for key, value in table.items():
        seen += 1
        if _submitted_before(value, cutoff):
            batch.append(key)
        if len(batch) >= SWEEP_CHUNK or seen % SWEEP_CHUNK == 0:
            expired += _delete(table, batch)
            batch = []
            await asyncio.sleep(0)
    expired += _delete(table, batch)
    TABLE_EXPIRED.inc(expired)
    TABLE_ENTRIES.set(seen - expired)
    return expired


def _submitted_before(value: bytes, cutoff: datetime) -> bool:
    try:
        return SentMessage.from_bytes(value).submitted_at < cutoff
    except ValueError:
        return True  # unreadable: it can never be joined, so it only takes space


def _delete(table: faust.Table, keys: list[bytes]) -> int:
    for key in keys:
        table.pop(key, None)
    return len(keys)

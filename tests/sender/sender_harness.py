"""Helpers for sender tests: publish `outgoing` records, read `delivery-result`.

`ResultReader` polls the result topic (all partitions, from the start) until
a predicate holds or a bound passes: no sleeps, and a timeout says what was
seen. `outgoing()` builds a valid OutgoingMessage with sensible defaults.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bounceflow.models import DeliveryResult, DsnRequest, OutgoingMessage
from bounceflow.verp import new_message_id

WAIT = 30.0
SECRETS = ["sender-test-secret"]
BOUNCE_DOMAIN = "bounces.sender.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mime(subject: str = "hello", extra_headers: bytes = b"", body: bytes = b"Hello there.\r\n") -> bytes:
    return (b"From: Shop <shop@example.org>\r\nTo: someone@example.com\r\nSubject: " + subject.encode()
            + b"\r\n" + extra_headers + b"\r\n" + body)


def outgoing(recipient: str, *, track: bool = True, envelope_from: str = "shop@example.org",
             data: bytes | None = None, dsn: DsnRequest | None = None, account: str = "demo") -> OutgoingMessage:
    return OutgoingMessage(
        message_id=new_message_id(), account=account, source="rest", submitted_at=datetime.now(timezone.utc),
        envelope_from=envelope_from, recipient=recipient, track_bounces=track, dsn=dsn or DsnRequest(),
        mime_b64=base64.b64encode(data if data is not None else mime()).decode(),
    )


class Publisher:
    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=8 << 20)
        self._prefix = prefix

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, message: OutgoingMessage) -> OutgoingMessage:
        await self._producer.send_and_wait(f"{self._prefix}outgoing", message.to_bytes(),
                                           key=message.message_id.encode())
        return message

    async def raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        await self._producer.send_and_wait(f"{self._prefix}{topic}", value, key=key)


class ResultReader:
    """Every `delivery-result` record seen so far, parsed."""

    def __init__(self, bootstrap: str, prefix: str, topic: str = "delivery-result") -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                          auto_offset_reset="earliest", isolation_level="read_committed")
        self._topic = f"{prefix}{topic}"
        self.results: list[DeliveryResult] = []
        self.raw: list[bytes] = []

    async def start(self) -> None:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic)
        deadline = time.monotonic() + WAIT
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self._topic} never appeared")
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self._topic)
        tps = [TopicPartition(self._topic, p) for p in partitions]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)

    async def stop(self) -> None:
        await self._consumer.stop()

    def of(self, message_id: str) -> list[DeliveryResult]:
        return sorted((r for r in self.results if r.message_id == message_id), key=lambda r: r.attempt)

    async def wait_for(self, predicate, timeout: float = WAIT):
        """Poll until `predicate(self)` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; results so far: {[_brief(r) for r in self.results]}")
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    self.raw.append(record.value)
                    self.results.append(DeliveryResult.from_bytes(record.value))

    async def final(self, message_id: str, timeout: float = WAIT) -> DeliveryResult:
        """The final result of a message (waits for it)."""
        return await self.wait_for(lambda r: next((x for x in r.of(message_id) if x.final), None), timeout)


def _brief(result: DeliveryResult) -> str:
    return f"{result.message_id}#{result.attempt}:{result.status}:{result.reason}"


async def until(predicate, timeout: float = WAIT, interval: float = 0.05):
    """Bounded polling of a plain predicate (e.g. an MX simulator's state)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)
    return value

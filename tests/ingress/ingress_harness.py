"""Helpers for ingress tests: read back `outgoing`, talk SMTP line by line."""

from __future__ import annotations

import asyncio
import base64
from email import message_from_bytes

from aiokafka import AIOKafkaConsumer, TopicPartition

from bounceflow.models import OutgoingMessage


SETTLE_SECONDS = 3.0


async def _settled_end_offsets(bootstrap, committed_reader, tps, deadline):
    """End offsets once no transaction is in flight: the last stable offset equals
    the high watermark. A commit is acknowledged before its markers reach the
    partitions, so right after a 250 the LSO can still sit before that record.
    Bounded to a few seconds: a transaction left open by a Kafka outage holds the
    LSO back until it is aborted, and then the stable offsets are the answer."""
    loop = asyncio.get_running_loop()
    deadline = min(deadline, loop.time() + SETTLE_SECONDS)
    raw = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_uncommitted",
                           enable_auto_commit=False, group_id=None)
    await raw.start()
    try:
        while True:
            stable, high = await committed_reader.end_offsets(tps), await raw.end_offsets(tps)
            if stable == high or loop.time() > deadline:
                return stable
            await asyncio.sleep(0.05)
    finally:
        await raw.stop()


async def committed_outgoing(bootstrap: str, topic: str, timeout: float = 20.0) -> list[OutgoingMessage]:
    """Every committed record on `topic` up to now (read_committed, up to the last stable offset)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not partitions:
            if loop.time() > deadline:
                raise AssertionError(f"topic {topic} has no partitions")
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await _settled_end_offsets(bootstrap, consumer, tps, deadline)
        records: list[OutgoingMessage] = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= end[tp] for tp in tps):
                return records
            if loop.time() > deadline:
                raise AssertionError(f"read {len(records)} records but did not reach {end} (at {positions})")
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    record = OutgoingMessage.from_bytes(message.value)
                    assert message.key == record.message_id.encode()
                    records.append(record)
    finally:
        await consumer.stop()


def parsed_mime(record: OutgoingMessage):
    """The record's MIME as an email.message.Message."""
    return message_from_bytes(base64.b64decode(record.mime_b64))


class SmtpLines:
    """A plain SMTP client that sends exactly the lines a test gives (seed transcripts)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> "SmtpLines":
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        code, _ = await client.reply()
        assert code == 220
        return client

    async def reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply: (code, text of the last line)."""
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 30)).decode()
            if not line:
                raise ConnectionError("server closed the connection")
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return int(line[:3]), "\n".join(entry[4:] for entry in lines)

    async def cmd(self, line: str) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def login(self, username: str, password: str) -> None:
        token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
        code, text = await self.cmd(f"AUTH PLAIN {token}")
        assert code == 235, text

    async def data(self, content: bytes) -> tuple[int, str]:
        code, text = await self.cmd("DATA")
        assert code == 354, text
        lines = content.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        body = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
        self.writer.write(body + b".\r\n")
        await self.writer.drain()
        return await self.reply()

    async def close(self) -> None:
        try:
            await self.cmd("QUIT")
        except (ConnectionError, OSError):
            pass
        self.writer.close()

"""Test helpers for the bounce-receiver: a raw SMTP client and a committed-records reader.

The SMTP client speaks the wire protocol itself over loopback so tests can do
what real (and broken) MTAs do: send 8-bit garbage, hang up mid-DATA, pipe a
body larger than the limit. The reader returns every committed record of a
topic up to its end offsets: bounded, no sleeps, and "nothing else" is provable.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from bounceflow.models import RawBounce

READ_TIMEOUT = 30.0
DOMAINS = ["bounces.localhost", "bounces.example.net"]
SECRETS = ["current-secret", "previous-secret"]  # first signs, second still verifies


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class SmtpWire:
    """A minimal SMTP client over asyncio streams (one session)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, greeting: Reply) -> None:
        self.reader, self.writer, self.greeting = reader, writer, greeting

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> "SmtpWire":
        reader, writer = await asyncio.open_connection(host, port)
        wire = cls(reader, writer, Reply(0, ""))
        wire.greeting = await wire.read_reply()
        return wire

    async def read_reply(self) -> Reply:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), READ_TIMEOUT)
            if not line:
                raise ConnectionError(f"server closed the connection after {lines!r}")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text[4:])
            if len(text) < 4 or text[3] != "-":
                return Reply(int(text[:3]), "\n".join(lines))

    async def cmd(self, line: str | bytes) -> Reply:
        self.writer.write((line.encode() if isinstance(line, str) else line) + b"\r\n")
        await self.writer.drain()
        return await self.read_reply()

    async def data(self, body: bytes) -> Reply:
        """DATA with dot-stuffing; returns the reply to the final dot."""
        reply = await self.cmd("DATA")
        assert reply.code == 354, reply
        self.writer.write(stuff(body) + b".\r\n")
        await self.writer.drain()
        return await self.read_reply()

    async def send(self, mail_from: str, rcpts: list[str], body: bytes, helo: str = "mx.remote.test") -> Reply:
        """A whole transaction; every step before DATA must succeed."""
        if not self.greeting.code == 220:
            raise AssertionError(f"greeting {self.greeting}")
        for line in (f"EHLO {helo}", f"MAIL FROM:<{mail_from}>", *(f"RCPT TO:<{r}>" for r in rcpts)):
            reply = await self.cmd(line)
            assert reply.code == 250, f"{line!r} -> {reply}"
        return await self.data(body)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def quit(self) -> None:
        try:
            await self.cmd("QUIT")
        finally:
            await self.close()


def stuff(body: bytes) -> bytes:
    """CRLF-terminate and dot-stuff a body for DATA."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


async def send_bounce(port: int, mail_from: str, rcpts: list[str], body: bytes) -> Reply:
    wire = await SmtpWire.connect(port)
    try:
        return await wire.send(mail_from, rcpts, body)
    finally:
        await wire.quit()


async def committed_records(
    bootstrap: str, topic: str, partitions: int = 4
) -> list[tuple[bytes | None, RawBounce]]:
    """Every committed record of `topic` (read_committed) up to its end offsets, by partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        isolation_level="read_committed", auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + READ_TIMEOUT
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} up to {end}")
            batches = await consumer.getmany(timeout_ms=200)
            for tp in sorted(batches):
                records += [(m.key, RawBounce.from_bytes(m.value)) for m in batches[tp]]
        return records
    finally:
        await consumer.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bounce_mime(message_id: str = "", subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    """A small RFC 3464 failure DSN (what a remote MTA sends back)."""
    return (
        "From: MAILER-DAEMON@mx.remote.test\r\n"
        f"Subject: {subject}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.test\r\n\r\n"
        "Final-Recipient: rfc822; bob@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"X-Bounceflow-Id: {message_id}\r\nSubject: hello\r\n"
        "--b1--\r\n"
    ).encode()

"""`bounceflow.smtp_data.FastDataReading` must answer DATA exactly as aiosmtpd does.

Each case runs the same bytes through a plain aiosmtpd server and one with
the mixin (small limits, so the edges are cheap to reach) and compares the
whole transcript after DATA and what the handler received.
"""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounceflow.smtp_data import FastDataReading

LINE_LIMIT = 60
SIZE_LIMIT = 400


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[object, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.content, envelope.original_content))
        return "250 2.0.0 Queued"


class PlainSMTP(SMTP):
    line_length_limit = LINE_LIMIT


class FastSMTP(FastDataReading, SMTP):
    line_length_limit = LINE_LIMIT


async def transcript(protocol, payload: bytes, **options) -> tuple[bytes, list]:
    """Everything the server answered after DATA's 354, and what the handler got."""
    handler = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol(handler, data_size_limit=SIZE_LIMIT, **options), "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(b"HELO client.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        while not (await asyncio.wait_for(reader.readline(), 10)).startswith(b"354"):
            pass
        writer.write(payload + b"QUIT\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes after QUIT
        writer.close()
        return answer, handler.received
    finally:
        server.close()
        await server.wait_closed()


async def assert_same(payload: bytes, **options) -> tuple[bytes, list]:
    plain = await transcript(PlainSMTP, payload, **options)
    fast = await transcript(FastSMTP, payload, **options)
    assert fast == plain
    return fast


@pytest.mark.parametrize("payload", [
    b".\r\n",  # an empty message
    b"Subject: x\r\n\r\nbody\r\n.\r\n",
    b"a line that ends with a dot.\r\n.\r\n",
    b"..starts with a dot\r\n.. \r\n...\r\n.\r\n",  # dot-stuffed lines
    b".\r\n" + b"NOOP\r\n",  # a pipelined command right after the end
    b"x\r\n.\r\nNOOP\r\nRSET\r\n",
    b"bare\nline feed\rand carriage return\r\n.\r\n",
    b"a\r\n.x\r\n.\r\n",  # `.x` is a stuffed line, not the end
    b"a\r\n\r\n.\r\n",
    b"x" * (LINE_LIMIT - 2) + b"\r\n.\r\n",  # the longest line allowed
    b"x" * (LINE_LIMIT - 1) + b"\r\n.\r\n",  # one too long: 500
    b"x" * (LINE_LIMIT * 3) + b"\r\n.\r\n",
    b"." + b"x" * (LINE_LIMIT - 2) + b"\r\n.\r\n",  # measured before unstuffing
    (b"y" * 40 + b"\r\n") * 9 + b".\r\n",  # 378 bytes: under the size limit
    (b"y" * 40 + b"\r\n") * 12 + b".\r\n",  # 504 bytes: 552, read to the end anyway
    b"x" * (LINE_LIMIT * 3) + b"\r\n" + (b"y" * 40 + b"\r\n") * 12 + b".\r\n",  # long line first: 500
    (b"y" * 40 + b"\r\n") * 12 + b"x" * (LINE_LIMIT * 3) + b"\r\n.\r\n",  # too much first: 552
    "unicode é ü\r\n".encode() + b".\r\n",
    b"\xff\xfe 8-bit\r\n.\r\n",
])
@pytest.mark.parametrize("options", [{}, {"decode_data": True}, {"decode_data": True, "enable_SMTPUTF8": True}],
                         ids=["bytes", "ascii", "utf8"])
async def test_data_is_answered_and_delivered_as_aiosmtpd_does(payload, options):
    await assert_same(payload, **options)


async def test_the_fixed_cases_cover_acceptance_and_every_refusal():
    seen = set()
    for payload in (b"a\r\n.\r\n", b"x" * (LINE_LIMIT * 3) + b"\r\n.\r\n", (b"y" * 40 + b"\r\n") * 12 + b".\r\n"):
        answer, _ = await assert_same(payload)
        seen.add(answer[:3])
    assert seen == {b"250", b"500", b"552"}


_PIECES = st.sampled_from([b"a", b"bc", b".", b"..", b"\r\n", b"\r", b"\n", b" ", b"\xc3\xa9", b"x" * 30])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_PIECES, max_size=40).map(b"".join))
async def test_any_message_is_answered_as_aiosmtpd_does(body):
    stream = b"\r\n" + body
    if b"\r\n.\r\n" in stream:
        body = stream[:stream.index(b"\r\n.\r\n")][2:]  # what comes after the first end would be commands
    await assert_same(body + (b"" if body.endswith(b"\r\n") or not body else b"\r\n") + b".\r\n")

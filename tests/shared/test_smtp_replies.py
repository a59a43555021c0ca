"""RFC 2920 reply grouping (`bounceflow.smtp_replies.PipelinedReplies`) on a bare aiosmtpd server."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from bounceflow.smtp_replies import PipelinedReplies


class GroupingSMTP(PipelinedReplies, SMTP):
    pass


class NotGroupingSMTP(GroupingSMTP):
    hold_replies = False


class AcceptAll:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Queued"


@pytest.fixture
async def serve():
    servers = []

    async def start(protocol=GroupingSMTP) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: protocol(AcceptAll(), hostname="mx.test"), "127.0.0.1", 0)
        servers.append(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        assert (await reader.readline()).startswith(b"220 mx.test")
        writer.write(b"EHLO client.test\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        return reader, writer

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_once(reader: asyncio.StreamReader) -> list[str]:
    return (await asyncio.wait_for(reader.read(65536), 10)).decode().splitlines()


async def test_replies_to_a_pipelined_group_arrive_in_one_write(serve):
    reader, writer = await serve()
    writer.write(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
    mail, rcpt_b, rcpt_c, data = await read_once(reader)
    assert (mail[:3], rcpt_b[:3], rcpt_c[:3], data[:3]) == ("250", "250", "250", "354")
    writer.write(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert await read_once(reader) == ["250 2.0.0 Queued"]
    writer.close()


async def test_a_client_that_waits_for_each_reply_gets_each_at_once(serve):
    reader, writer = await serve()
    for command, code in ((b"MAIL FROM:<a@example.test>", "250"), (b"RCPT TO:<b@example.test>", "250"),
                          (b"DATA", "354"), (b"x\r\n.", "250"), (b"NOOP", "250")):
        writer.write(command + b"\r\n")
        [reply] = await read_once(reader)
        assert reply[:3] == code
    writer.close()


async def test_half_a_command_waiting_does_not_hold_the_reply(serve):
    reader, writer = await serve()
    writer.write(b"NOOP\r\nNO")  # the rest of the second NOOP has not arrived
    assert [r[:3] for r in await read_once(reader)] == ["250"]
    writer.write(b"OP\r\n")
    assert [r[:3] for r in await read_once(reader)] == ["250"]
    writer.close()


async def test_quit_is_answered_even_with_more_commands_behind_it(serve):
    reader, writer = await serve()
    writer.write(b"NOOP\r\nQUIT\r\nNOOP\r\n")
    replies = []
    while line := await asyncio.wait_for(reader.readline(), 10):
        replies.append(line.decode()[:3])
    assert replies == ["250", "221"]  # then the server closed the connection
    writer.close()


async def test_errors_in_a_group_keep_their_order(serve):
    reader, writer = await serve()
    writer.write(b"RCPT TO:<b@example.test>\r\nMAIL FROM:<a@example.test>\r\nBOGUS\r\nRCPT TO:<b@example.test>\r\n")
    replies = []
    while len(replies) < 4:
        replies += [r[:3] for r in await read_once(reader)]
    assert replies == ["503", "250", "500", "250"]
    writer.close()


class RecordingWriter:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def drain(self) -> None:
        pass


@pytest.mark.parametrize(("protocol", "writes"), [(GroupingSMTP, [b"250 one\r\n250 two\r\n"]),
                                                   (NotGroupingSMTP, [b"250 one\r\n", b"250 two\r\n"])])
async def test_hold_replies_switches_the_grouping(protocol, writes):
    server = protocol(AcceptAll())
    server._held_replies = []
    server._reader = asyncio.StreamReader()
    server._reader.feed_data(b"NOOP\r\n")  # the next command is waiting
    server._writer = RecordingWriter()
    await server.push("250 one")
    server._reader = asyncio.StreamReader()  # ... and has been read
    await server.push("250 two")
    assert server._writer.writes == writes

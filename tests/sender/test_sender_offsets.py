"""In-order commits over out-of-order completions, SMTP data framing and reply parsing."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from bounceflow_sender.smtp_client import Extensions, Reply, SmtpConnection, SmtpDisconnected, encode_data
from bounceflow.offsets import OffsetTracker

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_commit_moves_only_over_the_finished_prefix():
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.add(TP0, offset)
    tracker.add(TP1, 0)
    tracker.done(TP0, 6)
    tracker.done(TP1, 0)
    assert tracker.advance() == {TP1: 1}
    tracker.done(TP0, 5)
    assert tracker.advance() == {TP0: 7}
    assert tracker.in_flight(TP0) == 1
    tracker.done(TP0, 7)
    assert tracker.advance() == {TP0: 8}
    assert tracker.advance() == {}


def test_unknown_and_forgotten_offsets_are_ignored():
    tracker = OffsetTracker()
    tracker.add(TP0, 1)
    tracker.done(TP0, 99)
    tracker.done(TP1, 1)
    tracker.forget([TP0])
    tracker.done(TP0, 1)
    assert tracker.advance() == {}


def test_data_is_crlf_normalised_dot_stuffed_and_terminated():
    assert encode_data(b"a\n.b\r\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert encode_data(b".") == b"..\r\n.\r\n"
    assert encode_data(b"x\r\n") == b"x\r\n.\r\n"


def _encode_by_regex(message: bytes) -> bytes:
    """RFC 5321 §4.5.2 framing done the plain way: what the fast path must equal."""
    data = re.sub(rb"^\.", b"..", re.sub(rb"\r\n|\r|\n", b"\r\n", message), flags=re.M)
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b" "]), max_size=20).map(b"".join))
def test_data_framing_fast_path_equals_the_regex_rules(message):
    assert encode_data(message) == _encode_by_regex(message)


def test_ehlo_extensions():
    ext = Extensions.parse("mx.example\nPIPELINING\nSIZE 1000\n8bitmime\nAUTH PLAIN LOGIN\nDSN")
    assert ext.has("pipelining") and ext.has("8BITMIME") and ext.has("DSN")
    assert ext.size_limit() == 1000 and ext.keywords["AUTH"] == "PLAIN LOGIN"
    assert Extensions.parse("mx\nSIZE").size_limit() is None


class _NoPeer:
    def get_extra_info(self, name):
        return None


async def test_replies_are_parsed_however_the_bytes_arrive():
    reader = asyncio.StreamReader()
    connection = SmtpConnection(reader, _NoPeer(), "mx.test", timeout=5)
    reader.feed_data(b"250-mx.test\r\n250-PIPE")
    reading = asyncio.ensure_future(connection.read_reply())
    await asyncio.sleep(0)
    reader.feed_data(b"LINING\r\n250 DSN\r\n250 2.0.0 OK\r\n354 go on\r\n550 5.1.1 no")
    reader.feed_eof()
    assert (await reading).text == "mx.test\nPIPELINING\nDSN"
    assert [await connection.read_reply() for _ in range(2)] == [Reply(250, "2.0.0 OK"), Reply(354, "go on")]
    assert connection.transaction_replies == 3
    with pytest.raises(SmtpDisconnected):  # a reply cut short by the close is no reply
        await connection.read_reply()

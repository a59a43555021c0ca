"""In-order commits over out-of-order completions, and SMTP data framing."""

from __future__ import annotations

from aiokafka import TopicPartition

from bounceflow_sender.smtp_client import Extensions, encode_data
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


def test_ehlo_extensions():
    ext = Extensions.parse("mx.example\nPIPELINING\nSIZE 1000\n8bitmime\nAUTH PLAIN LOGIN\nDSN")
    assert ext.has("pipelining") and ext.has("8BITMIME") and ext.has("DSN")
    assert ext.size_limit() == 1000 and ext.keywords["AUTH"] == "PLAIN LOGIN"
    assert Extensions.parse("mx\nSIZE").size_limit() is None

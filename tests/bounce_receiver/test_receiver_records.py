"""What one received mail becomes on the raw-bounce topic (pure, no Kafka)."""

import base64
from datetime import datetime, timezone

from aiosmtpd.smtp import Session

from bounceflow.models import RawBounce
from bounceflow_bounce_receiver.recipients import RecipientDecision
from bounceflow_bounce_receiver.smtp_handler import ReceiverEnvelope, raw_bounces

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def envelope(mail_from: str, decisions: list[RecipientDecision], content: bytes) -> ReceiverEnvelope:
    env = ReceiverEnvelope()
    env.mail_from = mail_from
    env.decisions = decisions
    env.rcpt_tos = [d.address for d in decisions]
    env.original_content = content
    return env


def session() -> Session:
    s = Session(loop=None)
    s.peer = ("192.0.2.7", 40000)
    s.host_name = "mx.remote.example"
    return s


def test_one_record_per_recipient_with_stable_distinct_event_ids():
    decisions = [
        RecipientDecision("b.aaa.sig@bounces.localhost", message_id="aaa"),
        RecipientDecision("postmaster@bounces.localhost", role="postmaster"),
    ]
    body = b"Subject: x\r\n\r\n\xff\xfe raw 8-bit\r\n"
    records = raw_bounces(envelope("<>", decisions, body), session(), NOW, new_id=lambda: "receipt1")
    assert [r.event_id for r in records] == ["receipt1.0", "receipt1.1"]
    assert [r.message_id for r in records] == ["aaa", None]
    assert all(r.mail_from == "" and r.remote_ip == "192.0.2.7" and r.helo == "mx.remote.example" for r in records)
    assert all(base64.b64decode(r.mime_b64) == body and r.received_at == NOW for r in records)
    assert records[1].meta["role"] == "postmaster" and records[0].meta["receipt"] == "receipt1"
    assert RawBounce.from_bytes(records[0].to_bytes()) == records[0]


def test_ordinary_sender_and_empty_body():
    decisions = [RecipientDecision("b.aaa.sig@bounces.localhost", message_id="aaa")]
    (record,) = raw_bounces(envelope("ooo@example.org", decisions, b""), session(), NOW)
    assert record.mail_from == "ooo@example.org" and record.mime == b""

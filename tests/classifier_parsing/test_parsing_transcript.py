"""Sendmail-style session transcripts: each recipient gets its own exchange, not its neighbours'."""

from __future__ import annotations

from bounceflow_classifier.parsing import parse_bounce, transcript
from classifier_parsing.bounce_corpus import corpus_bytes


def _reasons(raw: bytes) -> dict[str, str]:
    return {r.recipient: r.reason for r in parse_bounce(raw).recipients}


def test_corpus_v5_sendmail_transcript_pairs_commands_with_replies():
    got = _reasons(corpus_bytes("lhost-v5sendmail-07"))
    assert got["kijitora@example.org"] == "blocked"  # its session's MAIL FROM got "no access from mail server"
    assert got["mikeneko@example.org"] == "hostunknown"  # another session's MAIL FROM is not its stage
    assert got["hachiware@example.edu"] == "userunknown"  # refused at its own RCPT TO


def test_corpus_multi_host_transcript_keeps_texts_apart():
    got = _reasons(corpus_bytes("lhost-v5sendmail-05"))
    assert got["kuroneko@example.or.jp"] == "hostunknown"
    assert got["kijitora@example.org"] == "hostunknown"
    assert got["mikeneko@example.co.jp"] == "userunknown"


_BOUNCE = b"""From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>
To: sender@example.com
Subject: Returned mail: see transcript for details

The original message was received at Mon, 1 Jan 2024 10:00:00 +0000

   ----- The following addresses had permanent fatal errors -----
<alice@one.example>
<bob@two.example>

   ----- Transcript of session follows -----
While talking to mx.one.example:
>>> RCPT To:<alice@one.example>
<<< 552 Requested mail action aborted: mailbox full
552 <alice@one.example>... Mailbox full
While talking to mx.two.example:
>>> MAIL From:<sender@example.com>
<<< 554 Service refused, your IP is listed at a DNSBL
554 <bob@two.example>... Service unavailable

   ----- Original message follows -----
Subject: hello
"""


def test_hand_written_transcript():
    got = _reasons(_BOUNCE)
    assert got == {"alice@one.example": "mailboxfull", "bob@two.example": "blocked"}


def test_exchange_before_stops_at_another_recipient():
    lines = [">>> MAIL From:<s@x.example>", "<<< 501 no access", "554 <a@x.example>... Remote protocol error",
             "554 <b@x.example>... 550 Host unknown"]
    assert transcript.exchange_before(lines, 2) == ">>> MAIL From:<s@x.example> <<< 501 no access"
    assert transcript.exchange_before(lines, 3) == ""
    assert transcript.exchange_before(["mail.local: unknown user: bob", "554 <bob@x.example>... Service unavailable"], 1) \
        == "mail.local: unknown user: bob"

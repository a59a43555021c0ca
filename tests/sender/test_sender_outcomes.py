"""SMTP replies and errors become delivered / deferred / failed with a reason."""

from __future__ import annotations

import dataclasses

import pytest

from bounceflow_sender import outcomes


@pytest.mark.parametrize("code, text, status, reason, enhanced", [
    (250, "2.0.0 OK: queued as 123", "delivered", "delivered", "2.0.0"),
    (550, "5.1.1 Recipient address rejected: User unknown", "failed", "userunknown", "5.1.1"),
    (552, "5.2.2 Mailbox full", "failed", "mailboxfull", "5.2.2"),
    (554, "5.7.1 Message rejected: content refused by policy", "failed", "rejected", "5.7.1"),
    (550, "5.7.1 Service unavailable; client host blocked using Spamhaus", "failed", "blocked", "5.7.1"),
    (554, "5.7.1 This message looks like spam", "failed", "spamdetected", "5.7.1"),
    (554, "5.7.26 DMARC policy", "failed", "policyviolation", "5.7.26"),
    (552, "message size exceeds fixed limit", "failed", "mesgtoobig", None),
    (550, "relay access denied", "failed", "norelaying", None),
    (451, "4.7.1 Recipient temporarily deferred: try again later", "deferred", "blocked", "4.7.1"),
    (421, "too many connections from your IP", "deferred", "toomanyconn", None),
    (452, "4.2.2 over quota", "deferred", "mailboxfull", "4.2.2"),
    (450, "try later", "deferred", "systemerror", None),
    (553, "no", "failed", "rejected", None),
    (599, "", "failed", "undefined", None),
])
def test_replies(code, text, status, reason, enhanced):
    outcome = outcomes.from_reply(code, text, "rcpt")
    assert (outcome.status, outcome.reason, outcome.enhanced_status) == (status, reason, enhanced)
    assert outcome.smtp_code == code and outcome.stage == "rcpt"


def test_a_reply_outside_2xx_to_5xx_is_a_protocol_error_and_deferred():
    outcome = outcomes.from_reply(699, "what", "data")
    assert outcome.status == "deferred" and "unexpected reply" in outcome.reply_text


@pytest.mark.parametrize("text, expected", [
    ("5.1.1 user unknown", "5.1.1"), ("  4.7.0 x", "4.7.0"), ("5.1.10 x", "5.1.10"),
    ("550 5.1.1 x", None), ("5.1 x", None), ("6.1.1 x", None), ("5.1.1x", None), ("", None),
])
def test_enhanced_status_parsing(text, expected):
    assert outcomes.enhanced_status(text) == expected


def test_network_errors_are_deferred():
    outcome = outcomes.network_error("connection reset", "data")
    assert outcome.status == "deferred" and outcome.retry and outcome.reason == "networkerror"


def test_tls_errors():
    assert outcomes.tls_error("bad cert").status == "deferred"
    assert outcomes.tls_error("bad cert", fatal=True).status == "failed"


def test_outcome_is_tagged_with_its_host():
    outcome = outcomes.from_reply(250, "ok", "data").at("mx.example.com", "192.0.2.1")
    assert (outcome.remote_host, outcome.remote_ip) == ("mx.example.com", "192.0.2.1")


def test_tagging_keeps_every_other_field():
    outcome = outcomes.Outcome("failed", "userunknown", 550, "5.1.1", "no such user", "rcpt", "old", "198.51.100.1")
    assert outcome.at("mx.example.com", "192.0.2.1") == dataclasses.replace(
        outcome, remote_host="mx.example.com", remote_ip="192.0.2.1")

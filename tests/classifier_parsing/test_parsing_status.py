"""Which enhanced status a recipient gets when the Status field and the remote's reply differ."""

from __future__ import annotations

import pytest

from bounceflow_classifier.parsing import dsn, parse_bounce
from classifier_parsing.bounce_corpus import corpus_bytes


@pytest.mark.parametrize("field,diag,want", [
    ("5.0.0", "550 5.7.1 Connections not accepted from servers without a valid sender domain", "5.7.1"),
    ("5.0.0", "host mx[192.0.2.1] said: 554 5.6.0 scored as spam (in reply to end of DATA command)", "5.6.0"),
    ("4.4.7", "450 4.7.1 Access denied. IP name lookup failed", "4.7.1"),  # expired: what the remote said
    ("4.4.7", "554 4.4.7 Message expired: unable to deliver.<421 4.4.2 Connection timed out>", "4.4.2"),
    ("5.1.1", "552 5.2.2 Over quota", "5.2.2"),  # the remote's own reply beats the transcription
    ("5.1.1", "User unknown, see 5.7.1 in the manual", "5.1.1"),  # not a reply: the field stays
    ("5.0.0", "451 4.3.0 try later", "5.0.0"),  # another class never replaces the field
    ("5.0.0", "550 no code here", "5.0.0"),
    ("5.2.2", "", "5.2.2"),
])
def test_prefer_status(field, diag, want):
    assert dsn.prefer_status(field, diag) == want


@pytest.mark.parametrize("name,want", [
    ("lhost-exim-43", "5.7.1"), ("lhost-opensmtpd-11", "5.7.26"), ("lhost-sendmail-08", "4.7.1"),
    ("lhost-x3-06", "5.2.2"), ("lhost-sendmail-18", "5.3.0"),
])
def test_corpus_status_from_the_reply(name, want):
    assert parse_bounce(corpus_bytes(name)).status == want


_DSN = """From: MAILER-DAEMON@mx.example.net
To: sender@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; someone@example.org
Action: failed
Status: {status}
Diagnostic-Code: {diag}

--b--
"""


def test_generic_field_takes_the_remote_code():
    got = parse_bounce(_DSN.format(status="5.0.0", diag="smtp; 550 5.7.25 no PTR record for 198.51.100.7").encode())
    assert (got.status, got.reason) == ("5.7.25", "requireptr")


def test_unix_mailer_exit_status_is_a_mail_system_error():
    got = parse_bounce(_DSN.format(status="5.0.0", diag="X-Unix; 75").encode())
    assert (got.status, got.reason) == ("5.3.0", "mailererror")


def test_generic_media_code_does_not_hide_spam_text():
    got = parse_bounce(_DSN.format(status="5.6.0", diag="smtp; 554 5.6.0 message scored as spam").encode())
    assert got.reason == "spamdetected"

"""The rules themselves: reason decisions, hard/soft, DSN field parsing, linking."""

from __future__ import annotations

import pytest

from bounceflow_classifier.parsing import dsn, parse_bounce, reasons


@pytest.mark.parametrize("status,code,text,action,command,want", [
    ("5.1.1", 550, "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown", "failed", "RCPT", "userunknown"),
    ("5.2.2", 552, "552 5.2.2 Mailbox full", "failed", None, "mailboxfull"),
    ("5.1.1", 550, "Not enough disk space", "failed", None, "mailboxfull"),  # text names a more specific reason
    ("5.7.1", 554, "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "failed", None, "blocked"),
    ("5.7.26", 550, "Unauthenticated email is not accepted", "failed", None, "authfailure"),
    ("5.7.25", 550, "", "failed", None, "requireptr"),
    ("4.4.7", None, "", "delayed", None, "expired"),
    (None, None, "", "delayed", None, "expired"),
    (None, None, "", "failed", None, "undefined"),
    ("5.0.0", 550, "550 Unknown user", "failed", "DATA", "filtered"),  # refused after DATA: a filter
    (None, 554, "", "failed", "CONN", "blocked"),
    (None, 553, "", "failed", "MAIL", "rejected"),
    ("2.0.0", 250, "250 OK", "delivered", None, "delivered"),
    ("5.4.4", None, "Host or domain name not found", "failed", None, "hostunknown"),
    ("5.3.4", 552, "", "failed", None, "mesgtoobig"),
])
def test_reason(status, code, text, action, command, want):
    assert reasons.classify(status, code, text, action, command) == want


@pytest.mark.parametrize("status,code,reason,action,want", [
    ("5.1.1", 550, "userunknown", "failed", "hard"),
    ("4.2.2", 452, "mailboxfull", "delayed", "soft"),
    ("4.7.1", 550, "blocked", "failed", "soft"),  # the enhanced status class wins over the reply code
    (None, 550, "blocked", "failed", "hard"),
    (None, 421, "blocked", "failed", "soft"),
    (None, None, "expired", "failed", "hard"),  # the reporting MTA gave up
    (None, None, "expired", "delayed", "soft"),
    ("2.0.0", 250, "delivered", "delivered", None),
])
def test_bounce_type(status, code, reason, action, want):
    assert reasons.bounce_type(status, code, reason, action) == want


def test_dsn_fields_blocks_in_any_order():
    report = dsn.parse_fields(
        "Reporting-MTA: dns; mx.example.org\nOriginal-Envelope-Id: env-42\n\n"
        "Action: failed\nStatus: 5.0.0 (rejected)\nOriginal-Recipient: rfc822;a@example.net\n"
        "Final-Recipient: rfc822;a@example.net\nDiagnostic-Code: smtp; 550 no\n  such user\n\n"
        "Final-Recipient: rfc822; <@relay.example:b@example.net>\nAction: delayed\nStatus: 4.4.1\n"
    )
    assert report.message_fields["original-envelope-id"] == "env-42"
    assert [dsn.address_of(r.get("final-recipient")) for r in report.recipients] == ["a@example.net", "b@example.net"]
    assert report.recipients[0].get("diagnostic-code") == "smtp; 550 no such user"
    assert dsn.normalise_status(report.recipients[0].get("status")) == "5.0.0"


def test_links_to_our_message_and_envelope():
    raw = (b"From: MAILER-DAEMON@mx.example.org\nTo: bounces@relay.example\nSubject: Undelivered Mail\n"
           b'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
           b"--B\nContent-Type: text/plain\n\nfailed\n"
           b"--B\nContent-Type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; mx.example.org\nOriginal-Envelope-Id: customer-env-1\n\n"
           b"Final-Recipient: rfc822; bob@example.net\nAction: failed\nStatus: 5.1.1\n\n"
           b"--B\nContent-Type: text/rfc822-headers\n\n"
           b"Message-ID: <orig-1@relay.example>\nX-Bounceflow-Id: msg-123\nFrom: alice@example.com\n\n"
           b"--B--\n")
    c = parse_bounce(raw)
    assert c.linked_message_id == "msg-123"
    assert c.original_message_id == "<orig-1@relay.example>"
    assert c.original_envelope_id == "customer-env-1"
    assert c.reason == "userunknown" and c.bounce_type == "hard"


def test_vacation_subjects_in_several_languages():
    for subject in ("Out of Office: hello", "Abwesenheitsnotiz", "R\xe9ponse automatique", "Fuera de la oficina",
                    "Risposta automatica", "Automatisch antwoord", "Automatic reply: x"):
        raw = ("From: alice@example.com\nTo: bob@example.org\nSubject: %s\n"
               "Content-Type: text/plain; charset=utf-8\n\nI am away until Monday.\n" % subject).encode()
        c = parse_bounce(raw)
        assert c.category == "autoreply", subject
        assert c.reason == "vacation" and not c.is_bounce

"""The returned mails the devkit builds parse with the stdlib and look like the real thing."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from bounceflow.models import MESSAGE_ID_HEADER
from bounceflow_devkit import bounce_mail

RECIPIENT = "kijitora@example.test"
ORIGINAL = (
    "Return-Path: <b.m42.abc123@bounces.localhost>\r\n"
    "From: Shop <news@shop.test>\r\n"
    f"To: <{RECIPIENT}>\r\n"
    "Subject: Weekly news\r\n"
    "Message-ID: <m42@shop.test>\r\n"
    f"{MESSAGE_ID_HEADER}: m42\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "The body of the original message.\r\n"
).encode()


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def delivery_status(report: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    """The per-message and the (single) per-recipient block of a DSN."""
    status_part = report.get_payload()[1]
    assert status_part.get_content_type() == "message/delivery-status"
    per_message, per_recipient = status_part.get_payload()
    return per_message, per_recipient


DSN_BUILDERS = [
    (bounce_mail.dsn_failure, "failed", "5.1.1"),
    (bounce_mail.dsn_delay, "delayed", "4.4.1"),
    (bounce_mail.dsn_success, "delivered", "2.0.0"),
]


@pytest.mark.parametrize(("builder", "action", "status"), DSN_BUILDERS)
def test_dsn_is_an_rfc3464_report(builder, action, status):
    report = parse(builder(ORIGINAL, RECIPIENT, reporting_mta="mx.example.test", envid="ENV-7",
                           original_recipient="rfc822;Kijitora@Example.test", to="b.m42.abc123@bounces.localhost"))

    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"] == "b.m42.abc123@bounces.localhost"
    assert report["Auto-Submitted"] == "auto-replied"
    human, _, returned = report.get_payload()
    assert human.get_content_type() == "text/plain"
    assert RECIPIENT in human.get_content()

    per_message, per_recipient = delivery_status(report)
    assert per_message["Reporting-MTA"] == "dns; mx.example.test"
    assert per_message["Original-Envelope-Id"] == "ENV-7"
    assert per_message["Arrival-Date"]
    assert per_recipient["Final-Recipient"] == f"rfc822; {RECIPIENT}"
    assert per_recipient["Original-Recipient"] == "rfc822;Kijitora@Example.test"
    assert per_recipient["Action"] == action
    assert per_recipient["Status"] == status
    assert per_recipient["Remote-MTA"].startswith("dns; ")
    assert per_recipient["Diagnostic-Code"].startswith(f"smtp; {status[0]}")
    assert per_recipient["Last-Attempt-Date"]
    assert ("Will-Retry-Until" in per_recipient) == (action == "delayed")

    assert returned.get_content_type() == "message/rfc822"
    original = returned.get_payload()[0]
    assert original[MESSAGE_ID_HEADER] == "m42"
    assert original.get_content().strip() == "The body of the original message."


def test_dsn_without_envid_or_orcpt_leaves_those_fields_out():
    report = parse(bounce_mail.dsn_failure(ORIGINAL, RECIPIENT))
    per_message, per_recipient = delivery_status(report)

    assert "Original-Envelope-Id" not in per_message
    assert "Original-Recipient" not in per_recipient
    assert report["To"] == "b.m42.abc123@bounces.localhost"  # the original's Return-Path


def test_ret_hdrs_returns_only_the_headers():
    report = parse(bounce_mail.dsn_failure(ORIGINAL, RECIPIENT, ret="HDRS"))
    returned = report.get_payload()[2]

    assert returned.get_content_type() == "text/rfc822-headers"
    headers = returned.get_content()
    assert f"{MESSAGE_ID_HEADER}: m42" in headers
    assert "Subject: Weekly news" in headers
    assert "The body of the original message." not in headers


def test_status_and_diagnostic_are_the_callers():
    report = parse(bounce_mail.dsn_failure(ORIGINAL, RECIPIENT, status="5.2.2",
                                           diagnostic="552 5.2.2 Mailbox full"))
    _, per_recipient = delivery_status(report)

    assert per_recipient["Status"] == "5.2.2"
    assert per_recipient["Diagnostic-Code"] == "smtp; 552 5.2.2 Mailbox full"


def test_8bit_original_survives():
    original = (
        "From: news@shop.test\r\nSubject: =?utf-8?q?K=C3=A4se?=\r\n"
        f"{MESSAGE_ID_HEADER}: m43\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße aus Köln\r\n"
    ).encode()
    report = parse(bounce_mail.dsn_failure(original, RECIPIENT))
    returned = report.get_payload()[2].get_payload()[0]

    assert returned[MESSAGE_ID_HEADER] == "m43"
    assert returned.get_content().strip() == "Grüße aus Köln"


def test_output_uses_crlf_line_ends():
    data = bounce_mail.dsn_failure(ORIGINAL, RECIPIENT)

    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_autoreply_is_rfc3834_out_of_office():
    reply = parse(bounce_mail.autoreply(ORIGINAL, RECIPIENT))

    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["From"] == RECIPIENT
    assert reply["In-Reply-To"] == "<m42@shop.test>"
    assert reply["Subject"] == "Out of Office: Weekly news"
    assert reply.get_content_type() == "text/plain"
    assert "out of the office" in reply.get_content()


@pytest.mark.parametrize("style", ["qmail", "exim"])
def test_nonstandard_bounce_is_plain_text_with_the_original(style):
    bounce = parse(bounce_mail.nonstandard_bounce(ORIGINAL, RECIPIENT, diagnostic="550 Unknown user",
                                                  reporting_mta="mx.example.test", style=style))

    assert bounce.get_content_type() == "text/plain"
    assert bounce["From"].lower().startswith("mailer-daemon@mx.example.test")
    text = bounce.get_content()
    assert RECIPIENT in text
    assert "550 Unknown user" in text
    assert f"{MESSAGE_ID_HEADER}: m42" in text
    assert "The body of the original message." in text


def test_arf_complaint_is_an_rfc5965_feedback_report():
    report = parse(bounce_mail.arf_complaint(ORIGINAL, RECIPIENT, reporting_mta="fbl.example.test",
                                             mail_from="b.m42.abc123@bounces.localhost"))

    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "feedback-report"
    human, feedback, returned = report.get_payload()
    assert human.get_content_type() == "text/plain"
    assert feedback.get_content_type() == "message/feedback-report"
    fields = feedback.get_payload()[0]
    assert fields["Feedback-Type"] == "abuse"
    assert fields["Version"] == "1"
    assert fields["User-Agent"]
    assert fields["Original-Mail-From"] == "<b.m42.abc123@bounces.localhost>"
    assert fields["Original-Rcpt-To"] == f"<{RECIPIENT}>"
    assert returned.get_content_type() == "message/rfc822"
    assert returned.get_payload()[0][MESSAGE_ID_HEADER] == "m42"

"""One corpus mail per category, checked against what a reader expects."""

from __future__ import annotations

from classifier_parsing.bounce_corpus import corpus_bytes

from bounceflow.models import Classification
from bounceflow_classifier.parsing import parse_bounce


def parse(name: str) -> Classification:
    return parse_bounce(corpus_bytes(name))


def test_dsn_failure_reports_first_failed_recipient():
    c = parse("rfc3464-63")  # Gmail multipart/report, address not found
    assert c.category == "dsn-failure"
    assert c.is_bounce and c.bounce_type == "hard"
    assert c.reason == "userunknown"
    assert c.status == "5.1.1" and c.smtp_code == 550
    assert c.recipient == "libsisimai-2@googlegroups.com"
    assert c.recipients[0].action == "failed"


def test_dsn_delay_is_a_soft_bounce():
    c = parse("rfc3464-09")  # Postfix "THIS IS A WARNING ONLY"
    assert c.category == "dsn-delay"
    assert c.is_bounce and c.bounce_type == "soft"
    assert c.action == "delayed"
    assert c.status.startswith("4.")


def test_dsn_success_is_not_a_bounce():
    c = parse("rfc3464-28")  # Postfix delivery report (Action: deliverable)
    assert c.category == "dsn-success"
    assert not c.is_bounce and c.bounce_type is None
    assert c.reason == "delivered"
    assert c.recipient == "kijitora@neko.example.jp"  # the outer report's recipient


def test_autoreply_is_vacation():
    c = parse("rfc3834-03")
    assert c.category == "autoreply"
    assert not c.is_bounce
    assert c.reason == "vacation"


def test_autoreply_saying_the_mailbox_is_gone_is_a_bounce():
    c = parse("rfc3834-06")  # "This email inbox … is no longer in use"
    assert c.category == "nonstandard-bounce"
    assert c.is_bounce and c.reason == "suspend"


def test_arf_complaint_has_feedback_type_and_recipient():
    c = parse("arf-02")
    assert c.category == "complaint"
    assert not c.is_bounce
    assert c.reason == "feedback" and c.feedback_type == "abuse"
    assert c.recipient == "this-local-part-does-not-exist-on-yahoo@yahoo.com"


def test_ses_json_complaint_is_a_complaint():
    c = parse("lhost-amazonses-11")
    assert c.category == "complaint"
    assert c.recipient == "complaint@simulator.amazonses.com"


def test_nonstandard_qmail_bounce():
    c = parse("lhost-qmail-01")
    assert c.category == "nonstandard-bounce"
    assert c.is_bounce and c.bounce_type == "hard"
    assert c.reason == "userunknown"
    assert c.recipient == "kijitora@example.ne.jp"
    assert c.original_message_id == "<000000000.9999999999999.JavaMail.postmaster@mailhub>"


def test_ordinary_mail_is_unknown():
    c = parse("is-not-bounce-02")
    assert c.category == "unknown"
    assert not c.is_bounce and c.reason is None


def test_several_recipients_are_all_reported():
    c = parse("lhost-messagingserver-03")
    assert [r.recipient for r in c.recipients] == ["sabineko@example.org", "mikeneko@example.org"]
    assert all(r.action == "failed" for r in c.recipients)

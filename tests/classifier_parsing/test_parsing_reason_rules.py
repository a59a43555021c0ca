"""Reason rules taken from Sisimai's behaviour and from what MTAs say, and the
MTA-format recognisers (`lhosts.py`): each rule on corpus mails of that MTA
(expected values read from the labels) and on a hand-written mail that is not
in the corpus, to show the rule is about the wording, not the file."""

from __future__ import annotations

import pytest

from classifier_parsing.bounce_corpus import corpus_bytes

from bounceflow_classifier.parsing import lhosts, parse_bounce, reasons


def _prose(body: str, subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    return (f"From: MAILER-DAEMON@mx.example.net\nTo: bounces@relay.example\nSubject: {subject}\n"
            f"Content-Type: text/plain\n\n{body}\n").encode()


@pytest.mark.parametrize("name", [
    "lhost-mfilter-01", "lhost-mxlogic-03", "lhost-x1-01", "lhost-x2-01", "lhost-surfcontrol-01",  # filtered: no stage
    "lhost-domino-01", "lhost-notes-03", "lhost-exchange2003-01", "lhost-office365-01", "rfc3464-06",  # own lookup
    "lhost-qmail-02", "lhost-qmail-04", "lhost-exim-51", "lhost-exim-37", "lhost-postfix-34", "lhost-postfix-28",
    "lhost-postfix-59", "lhost-outlook-09", "lhost-sendmail-55", "lhost-qmail-05", "rfc3464-29",
    "lhost-receivingses-03", "lhost-surfcontrol-03", "lhost-exim-04", "lhost-ezweb-08",
])
def test_reason_rule_on_corpus(name, labels):
    first = labels[name]["expected"]["records"][0]
    c = parse_bounce(corpus_bytes(name))
    assert c.reason == first["reason"]


@pytest.mark.parametrize("status,text,command,want", [
    # "unknown user" with no stage named and no x.1.x status: a filter on the recipient's side
    ("5.0.0", "550 unknown user", None, "filtered"),
    ("5.1.1", "550 5.1.1 unknown user", None, "userunknown"),
    (None, "550 no such user", "RCPT", "userunknown"),
    (None, "User jane (jane@corp.example) not listed in Corporate Directory", None, "userunknown"),
    # refused before any recipient: about our host; a missing domain at MAIL FROM is our sender's
    ("5.0.0", "501 5.0.0 Invalid domain name", "HELO", "blocked"),
    ("5.1.0", "553 5.1.0 sender.example does not exist", "MAIL", "rejected"),
    (None, "553 mx.nowhere.example does not exist", "DATA", "hostunknown"),
    (None, "Host not found, try again", None, "networkerror"),
    (None, "550 domain [corp.example] mismatches client ip 198.51.100.7.", None, "requireptr"),
    (None, "503 Improper sequence of commands", None, "syntaxerror"),
    (None, "554 Service currently unavailable", None, "systemerror"),
    (None, "Unable to contact LDAP server. (#4.4.3) this message has been in the queue too long.", None, "systemerror"),
    ("4.0.0", "450 4.0.0 Temporary failure", None, "onhold"),
])
def test_reason_rule_by_hand(status, text, command, want):
    assert reasons.classify(status, 550, text, "failed", command) == want


def test_addresses_are_not_evidence():
    # the local part names a reason; the words around it do not
    assert reasons.match_text("550 <spam-reports@example.org>: Recipient address rejected: User unknown") == "userunknown"


def test_multiline_reply_codes_do_not_split_phrases():
    text = "550-5.7.1 Messages with multiple 550 5.7.1 addresses in From: header are not accepted."
    assert reasons.match_text(text) == "notcompliantrfc"


def test_x_unix_diagnostic_is_a_mailer_error():
    raw = (b"From: MAILER-DAEMON@host.example\nTo: a@relay.example\nSubject: Returned mail\nMIME-Version: 1.0\n"
           b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
           b"--B\nContent-Type: text/plain\n\nThe message could not be delivered; it will be retried later.\n"
           b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; host.example\n\n"
           b"Final-Recipient: RFC822; joe@host.example\nAction: failed\nStatus: 5.3.0\n"
           b"Diagnostic-Code: X-Unix; 75\n\n--B--\n")
    c = parse_bounce(raw)
    assert c.reason == "mailererror" and c.recipient == "joe@host.example"


@pytest.mark.parametrize("name", ["lhost-verizon-02", "lhost-apachejames-01"])
def test_message_details_format_on_corpus(name, labels):
    c = parse_bounce(corpus_bytes(name))
    assert c.category == "nonstandard-bounce" and c.is_bounce and c.bounce_type == "hard"
    assert c.recipient and c.recipient.endswith(labels[name]["expected"]["recipient"].split("@")[1])


def test_message_details_format_by_hand():
    body = ("Error: Mailbox full\nError message below:\n552 - Requested mail action aborted: mailbox full\n"
            "Message details:\n  Subject: hi\n  MAIL FROM: a@relay.example\n  RCPT TO: pat@gateway.example\n")
    c = parse_bounce(_prose(body, subject="Re: hi"))
    assert c.recipient == "pat@gateway.example" and c.reason == "mailboxfull" and c.smtp_code == 552
    assert lhosts.recognise("x", "nothing to see here") is None


def test_list_loop_alert_on_corpus_and_by_hand(labels):
    c = parse_bounce(corpus_bytes("lhost-fml-03"))
    assert (c.reason, c.recipient) == ("systemerror", labels["lhost-fml-03"]["expected"]["recipient"])
    raw = _prose("Duplicated Message-ID in <team@lists.example>.\nOriginal mail as follows:\n",
                 subject="Loop Alert: Duplicated Message-ID (team ML)")
    c = parse_bounce(raw)
    assert (c.category, c.reason, c.recipient) == ("nonstandard-bounce", "systemerror", "team@lists.example")


@pytest.mark.parametrize("name", ["lhost-x2-03", "lhost-postfix-08", "lhost-v5sendmail-01"])
def test_timed_out_connections_expire_on_corpus(name, labels):
    assert parse_bounce(corpus_bytes(name)).reason == labels[name]["expected"]["records"][0]["reason"] == "expired"


def test_timed_out_connections_expire_by_hand():
    """A connection attempt that timed out until the MTA gave up is `expired`, even when the
    text also says it was unable to connect; a refused connection is not."""
    timed_out = "unable to connect to remote server [198.51.100.4:25]: Operation timed out; giving up"
    assert reasons.classify(None, None, timed_out, "failed") == "expired"
    assert reasons.classify(None, None, "connect to mx.corp.example[198.51.100.4]:25: Connection timed out",
                            "failed") == "expired"
    assert reasons.classify(None, None, "unable to connect to remote server [198.51.100.4:25]: No route to host",
                            "failed") == "networkerror"


def _x_unix_bounce(paragraph: str, code: str = "77") -> bytes:
    return ("From: MAILER-DAEMON@host.example\nTo: a@relay.example\nSubject: Returned mail\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
            "--B\nContent-Type: text/plain\n\n   ----- The following addresses had permanent fatal errors -----\n"
            f"<joe@host.example>\n    (reason: {paragraph})\n\n"
            "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; host.example\n\n"
            f"Final-Recipient: RFC822; joe@host.example\nAction: failed\nStatus: 5.3.0\nDiagnostic-Code: X-Unix; {code}\n"
            "\n--B--\n").encode()


def test_x_unix_yields_to_the_recipients_own_paragraph(labels):
    """`X-Unix; <exit status>` is a mailer error unless the prose says why for that recipient."""
    assert parse_bounce(corpus_bytes("lhost-sendmail-13")).reason == labels["lhost-sendmail-13"]["expected"]["records"][0]["reason"]
    assert parse_bounce(corpus_bytes("lhost-sendmail-55")).reason == "mailererror"  # text only in the transcript
    assert parse_bounce(_x_unix_bounce("Insufficient permission")).reason == "systemerror"
    assert parse_bounce(_x_unix_bounce("Mailbox is full", "75")).reason == "mailboxfull"
    assert parse_bounce(_x_unix_bounce("255", "255")).reason == "mailererror"

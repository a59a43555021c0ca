"""MTA formats with a verdict of their own (`parsing/lhosts.py`): InterScan MSS,
Zoho Mail's ERROR_CODE lines, PowerMTA's bounce category. Each on its corpus
mails (expected values from the labels) and on a hand-written bounce."""

from __future__ import annotations

import pytest

from classifier_parsing.bounce_corpus import corpus_bytes

from bounceflow_classifier.parsing import lhosts, parse_bounce


@pytest.mark.parametrize("name", ["lhost-interscanmss-02", "lhost-interscanmss-03", "lhost-zoho-05",
                                  "lhost-powermta-02"])
def test_format_on_corpus(name, labels):
    first = labels[name]["expected"]["records"][0]
    c = parse_bounce(corpus_bytes(name))
    assert (c.recipient, c.reason) == (first["recipient"], first["reason"])


def test_zoho_reply_code_is_read():
    assert parse_bounce(corpus_bytes("lhost-zoho-05")).smtp_code == 421


def _mail(sender: str, subject: str, body: str, ctype: str = "text/plain") -> bytes:
    return f"From: {sender}\nTo: ops@example.net\nSubject: {subject}\nContent-Type: {ctype}\n\n{body}\n".encode()


def test_interscan_by_hand():
    body = ("****** Message from InterScan Messaging Security Suite ******\n\n"
            "Reason:  Unable to deliver message to <ana@corp.example> (and other recipients in the same domain).\n"
            "Unable to deliver message to <bo@corp.example>\n")
    c = parse_bounce(_mail("postmaster@gw.corp.example", "Mail could not be delivered", body))
    assert [(r.recipient, r.reason) for r in c.recipients] == [("ana@corp.example", "userunknown"),
                                                               ("bo@corp.example", "userunknown")]


def test_interscan_wording_needs_interscan():
    assert lhosts.interscan_mss("", "Unable to deliver message to <ana@corp.example>.") is None


def test_zoho_by_hand():
    body = ("This message was created automatically by mail delivery software.\n"
            "A message that you sent could not be delivered to one or more of its recipients. This is a permanent error.\n\n"
            "ana@corp.example Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <ana@corp.example>... User Unknown\n"
            "[Status: Error, Address: <bo@far.example>, ResponseCode 421, , Host not reachable.]\n")
    c = parse_bounce(_mail("mailer-daemon@mail.zoho.com", "Undelivered Mail Returned to Sender", body))
    got = [(r.recipient, r.smtp_code, r.reason) for r in c.recipients]
    assert got == [("ana@corp.example", 550, "userunknown"), ("bo@far.example", 421, "expired")]


def test_powermta_category_by_hand():
    """PowerMTA's category backs an "unknown user" with no stage and a vague status."""
    body = ("--b\nContent-Type: text/plain\n\nHello, this is the mail server on mta.example.net.\n\n"
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mta.example.net\n\n"
            "Final-Recipient: rfc822; cy@corp.example\nAction: failed\nStatus: 5.0.0\n"
            "Diagnostic-Code: smtp;550 sorry, no mailbox here by that name\n"
            "X-PowerMTA-BounceCategory: bad-mailbox\n\n--b--\n")
    ctype = 'multipart/report; report-type=delivery-status; boundary="b"'
    c = parse_bounce(_mail("mailer-daemon@mta.example.net", "Delivery report", body, ctype))
    assert (c.recipient, c.reason) == ("cy@corp.example", "userunknown")
    assert lhosts.powermta_category("other") is None
    assert lhosts.powermta_category("quota-issues") == "mailboxfull"

"""Provider reply-code tables (`parsing/rhosts.py`): each table on the corpus
mails of that provider (expected reasons read from the labels) and on a
hand-written bounce that is not in the corpus, to show the table is read from
the provider's code format or host, not from a file."""

from __future__ import annotations

import pytest

from classifier_parsing.bounce_corpus import corpus_bytes

from bounceflow_classifier.parsing import parse_bounce, rhosts


@pytest.mark.parametrize("name", [
    "lhost-sendmail-46", "rhost-franceptt-08", "rhost-franceptt-10", "rhost-franceptt-11", "rhost-franceptt-12",
    "rhost-spectrum-01", "lhost-office365-06", "lhost-office365-08", "lhost-office365-12",
    "rhost-nttdocomo-01", "rhost-nttdocomo-02", "rhost-nttdocomo-03", "rhost-zoho-01", "rhost-zoho-03",
])
def test_provider_table_on_corpus(name, labels):
    want = labels[name]["expected"]["records"][0]["reason"]
    assert parse_bounce(corpus_bytes(name)).reason == want


def _postfix(rcpt: str, host: str, reply: str, stage: str = "RCPT TO") -> bytes:
    body = (f"This is the mail system at host relay.example.net.\n\n"
            f"<{rcpt}>: host {host}[198.51.100.9] said: {reply} (in reply to {stage} command)\n")
    return (f"From: MAILER-DAEMON@relay.example.net\nTo: bounces@relay.example.net\n"
            f"Subject: Undelivered Mail Returned to Sender\nContent-Type: text/plain\n\n{body}").encode()


@pytest.mark.parametrize("rcpt,host,reply,stage,want", [
    # Orange / La Poste: the code's last three digits decide, not the generic words around it
    ("ana@orange.example", "smtp-in.orange.fr", "552 5.1.1 Boite du destinataire pleine. Recipient overquota. OFR_417 [417]",
     "RCPT TO", "mailboxfull"),
    ("ana@laposte.example", "smtpz4.laposte.net", "550 5.5.0 Le compte du destinataire est bloque. LPN007_426",
     "RCPT TO", "suspend"),
    ("ana@wanadoo.example", "smtp-in.orange.fr", "421 mwinf5c79 ME Trop de connexions. Too many connections, slow down. "
     "OFR005_104 [104]", "MAIL FROM", "toomanyconn"),
    # Spectrum: AUP# code ranges
    ("bo@charter.example", "mx.charter.net", "554 5.7.1 Your IP has a DNS issue AUP#In-1120", "MAIL FROM", "requireptr"),
    ("bo@spectrum.example", "mx.spectrum.example", "452 4.2.1 too many messages AUP#In-1400", "RCPT TO", "speeding"),
    # Exchange Online: three-digit details
    ("cy@contoso.example", "contoso.mail.protection.outlook.com",
     "550 5.7.509 Access denied, sending domain example.net does not pass DMARC verification", "end of DATA",
     "authfailure"),
    # NTT docomo: "Unknown user" after DATA is the recipient's reception filter refusing the sender
    ("dee@docomo.example", "mfsmax.docomo.ne.jp", "550 Unknown user dee@docomo.example", "end of DATA", "rejected"),
    ("dee@docomo.example", "mfsmax.docomo.ne.jp", "550 Unknown user dee@docomo.example", "RCPT TO", "userunknown"),
    # Zoho: its documented replies
    ("eve@zoho.example", "mx.zoho.com", "550 5.7.1 Email rejected per DMARC policy for zoho.example", "end of DATA",
     "authfailure"),
])
def test_provider_table_by_hand(rcpt, host, reply, stage, want):
    c = parse_bounce(_postfix(rcpt, host, reply, stage))
    assert (c.recipient, c.reason) == (rcpt, want)


def test_tables_need_the_provider():
    """The same words elsewhere are read by the generic rules; unknown codes fall through."""
    assert rhosts.find("mx.example.org", "550 Unknown user bob@example.org", "5.0.0", "DATA") is None
    assert rhosts.find("mx.example.org", "554 Email policy violation detected", None, "DATA") is None
    assert rhosts.find("smtp-in.orange.fr", "421 Service refuse. LPN001_108", "4.2.0", "DATA") is None  # code without a cause
    assert rhosts.find(None, "550 5.4.312 Message expired, DNS query failed", "5.4.312", None) == "networkerror"
    assert rhosts.find(None, "550 5.7.1 Delivery not authorized", "5.7.1", None) is None

"""Hostile and broken input: every case returns a valid Classification.

Bounds are enforced inside the parser (bytes read, parts walked, nesting
depth, text kept), so these cases finish promptly without timed assertions.
"""

from __future__ import annotations

import base64

from classifier_parsing.bounce_corpus import corpus_bytes

from bounceflow.models import Classification
from bounceflow_classifier.parsing import mime, parse_bounce

DSN_HEAD = (
    b"From: MAILER-DAEMON@mx.example.org\n"
    b"To: sender@example.com\n"
    b"Subject: Undelivered Mail Returned to Sender\n"
    b"MIME-Version: 1.0\n"
)


def _dsn(body_status: bytes, returned: bytes = b"Subject: hi\n\nhello\n") -> bytes:
    return (
        DSN_HEAD
        + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        + b"--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        + b"--B\nContent-Type: message/delivery-status\n\n" + body_status
        + b"\n--B\nContent-Type: message/rfc822\n\n" + returned + b"\n--B--\n"
    )


STATUS = (b"Reporting-MTA: dns; mx.example.org\n\n"
          b"Final-Recipient: rfc822; bob@example.net\nAction: failed\nStatus: 5.1.1\n"
          b"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: User unknown\n")


def test_truncated_mime_still_reports_what_it_read():
    raw = _dsn(STATUS)
    cut = raw[: raw.index(b"Diagnostic-Code")]
    c = parse_bounce(cut)
    assert isinstance(c, Classification)
    assert c.recipient == "bob@example.net"
    assert c.status == "5.1.1"


def test_every_truncation_of_a_corpus_mail_is_safe():
    raw = corpus_bytes("lhost-postfix-02")
    for end in range(0, len(raw), max(1, len(raw) // 40)):
        assert isinstance(parse_bounce(raw[:end]), Classification)


def test_wrong_and_unknown_charsets():
    raw = (DSN_HEAD + b"Content-Type: text/plain; charset=x-no-such-charset\n\n"
           b"<bob@example.net>: host mx said: 550 5.1.1 User unknown \xff\xfe\x80\n")
    c = parse_bounce(raw)
    assert c.category == "nonstandard-bounce"
    assert c.reason == "userunknown"
    assert mime.decode_bytes(b"\xff\xfe", "utf-8") == "\xff\xfe"  # falls back to Latin-1


def test_eight_bit_headers():
    raw = (b"From: Mail Delivery \xe9\xe8 <MAILER-DAEMON@mx.example.org>\n"
           b"Subject: Undeliverable: caf\xc3\xa9 \xff\n"
           b"To: sender@example.com\n\n"
           b"Delivery has failed to these recipients:\nbob@example.net\n550 5.1.1 User unknown\n")
    c = parse_bounce(raw)
    assert c.is_bounce
    assert c.recipient == "bob@example.net"


def test_huge_lines_are_bounded():
    raw = _dsn(STATUS, returned=b"Subject: x\n\n" + b"A" * 5_000_000 + b"\n")
    c = parse_bounce(raw)
    assert c.recipient == "bob@example.net"
    assert len(c.diagnostic or "") <= 1000


def test_huge_header_line():
    raw = b"From: MAILER-DAEMON@x\nSubject: " + b"x" * 3_000_000 + b"\n\nbody\n"
    assert isinstance(parse_bounce(raw), Classification)


def test_nested_rfc822_ten_levels_deep():
    inner = b"From: a@example.com\nSubject: innermost\nX-Bounceflow-Id: deep-1\n\nhello\n"
    for level in range(10):
        inner = (b"From: MAILER-DAEMON@mx%d.example.org\nSubject: Returned mail\n"
                 b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"L%d\"\n\n"
                 b"--L%d\nContent-Type: text/plain\n\nsee attached\n"
                 b"--L%d\nContent-Type: message/rfc822\n\n" % (level, level, level, level)
                 + inner + b"\n--L%d--\n" % level)
    c = parse_bounce(inner)
    assert isinstance(c, Classification)


def test_fifty_megabyte_attachment():
    blob = base64.encodebytes(b"\0" * (50 * 1024 * 1024 * 3 // 4))
    raw = _dsn(STATUS, returned=b"Subject: big\nContent-Type: application/octet-stream\n"
                                b"Content-Transfer-Encoding: base64\n\n" + blob)
    assert len(raw) > 50_000_000
    c = parse_bounce(raw)
    assert c.category == "dsn-failure"
    assert c.reason == "userunknown"


def test_many_parts_are_capped():
    parts = b"".join(b"--M\nContent-Type: text/plain\n\npart %d\n" % i for i in range(5000))
    raw = DSN_HEAD + b'Content-Type: multipart/mixed; boundary="M"\n\n' + parts + b"--M--\n"
    assert isinstance(parse_bounce(raw), Classification)


def test_base64_delivery_status_part():
    encoded = base64.encodebytes(STATUS)
    raw = (DSN_HEAD + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
           b"--B\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
           + encoded + b"--B--\n")
    c = parse_bounce(raw)
    assert c.category == "dsn-failure"
    assert c.recipient == "bob@example.net"


def test_text_plain_delivery_status():
    raw = (DSN_HEAD + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
           b"--B\nContent-Type: text/plain\n\n" + STATUS + b"--B--\n")
    c = parse_bounce(raw)
    assert c.category == "dsn-failure"
    assert c.reason == "userunknown"


def test_empty_and_garbage_input():
    for raw in (b"", b"\n\n\n", b"\x00" * 1000, bytes(range(256)) * 50, b"--\n--\n"):
        c = parse_bounce(raw)
        assert c.category == "unknown"
        assert not c.is_bounce

"""The fast MIME tree builder gives the tree the stdlib feed parser gives, and
the phrase scanner gives the match the plain alternation gives."""

from __future__ import annotations

import email
import re

import pytest

from bounceflow_classifier.parsing import mime, mimetree, nonstandard
from bounceflow_classifier.parsing.phrasescan import PhraseScan, required_literal
from classifier_parsing.bounce_corpus import CORPUS

_FILES = sorted((CORPUS / "eml").glob("*.eml"))


def _shape(msg, depth=0):
    """(content type, headers, text payload) of every part, depth-first, as compat32 sees them."""
    ctype = msg.get_content_type()
    headers = [(k, str(v)) for k, v in msg.items()]
    payload = msg.get_payload()
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        return [(ctype, headers, None)]  # kept as text by mimetree, as header blocks by the feed parser
    if isinstance(payload, list):
        out = [(ctype, headers, None)]
        for child in payload:
            out.extend(_shape(child, depth + 1))
        return out
    return [(ctype, headers, payload.replace("\r", "").rstrip("\n"))]  # line ends: mimetree makes all LF


@pytest.mark.parametrize("path", _FILES, ids=lambda p: p.stem)
def test_tree_matches_the_stdlib_parser(path):
    raw = path.read_bytes().replace(b"\r\n", b"\n")
    assert _shape(mime.load(raw)) == _shape(email.message_from_bytes(raw))


@pytest.mark.parametrize("text", [
    "Subject: x\n\nbody\n",
    "Subject: folded\n  line\nX: y\n\nbody",
    "From sender Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody",
    "Subject: x\nnot a header line\nmore body\n",
    "\nno headers at all\n",
    "Content-Type: multipart/mixed; boundary=b\n\npre\n--b\n\none\n--b\nContent-Type: text/html\n\n<p>two</p>\n--b--\nepi\n",
    "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nunterminated part\n",
    "Content-Type: multipart/mixed; boundary=b\n\nno boundary line at all\n",
    "Content-Type: multipart/mixed\n\nno boundary parameter\n",
    "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: inner\n\nhi\n--d--\n",
    "Content-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\na\n--i--\n",
    "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\n\ninner, its close line missing\n--o\n\nnext\n--o--\n",
])
def test_hand_written_shapes_match_the_stdlib_parser(text):
    assert _shape(mimetree.parse(text)) == _shape(email.message_from_string(text))


def test_nesting_is_bounded():
    text = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n" for i in range(40)) + "\ndeep\n"
    depth, msg = 0, mimetree.parse(text)
    while msg.is_multipart():
        msg, depth = msg.get_payload()[0], depth + 1
    assert depth <= mimetree.MAX_NESTING


def test_required_literal():
    assert required_literal(r"(?:after|in|our) data\b") == " data"
    assert required_literal(r"rcpt[ _]to\b") == "rcpt"
    assert required_literal(r"\bspam|junk") is None  # a bare alternation has no single literal
    assert required_literal(r"\[helo\]") == "[helo]"


def test_phrase_scan_equals_the_plain_alternation():
    phrases = [("A", r"mail from"), ("B", r"rcpt to"), ("C", r"(?:after|in) data\b"), ("D", r"\bdata")]
    scan = PhraseScan(phrases)
    plain = re.compile("|".join(f"(?P<{label}>{p})" for label, p in phrases))
    for text in ("after data command; rcpt to was fine", "mail from: <x> rcpt to: <y>", "data", "nothing here",
                 "in data", "rcpt to first, then mail from"):
        want = plain.search(text)
        got = scan.search(text)
        assert (got and (got[0], got[1].span())) == (want and (want.lastgroup, want.span()))


def test_command_of_names_the_leftmost_command():
    assert nonstandard.command_of("Remote host said: 550 unknown user (in reply to RCPT TO command)") == "RCPT"
    assert nonstandard.command_of("refused to talk to me: 554 blocked") == "CONN"
    assert nonstandard.command_of("said: 550 rejected (in reply to end of DATA command)") == "DATA"
    assert nonstandard.command_of("nothing about the stage") is None

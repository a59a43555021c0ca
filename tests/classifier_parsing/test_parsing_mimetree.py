"""The fast MIME tree builder gives the tree the stdlib feed parser gives, and
the phrase scanner gives the match the plain alternation gives."""

from __future__ import annotations

import email
import re

import pytest

from bounceflow_classifier.parsing import mime, mimetree, nonstandard
from bounceflow_classifier.parsing.phrasescan import PhraseScan, gate_literals
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


def test_gate_literals():
    assert gate_literals(r"(?:after|in|our) data\b") == (" data",)
    assert gate_literals(r"rcpt[ _]to\b") == ("rcpt",)
    assert gate_literals(r"\[helo\]") == ("[helo]",)
    assert gate_literals(r"\bspam|junk") == ("spam", "junk")  # a bare alternation: one of its branches
    # no run of 3: the alternation whose shortest literal is longest, nested groups read through
    assert gate_literals(r"(?:ip|host) (?:\S+ )?(?:blocked|was (?:denied|refused))") == ("blocked", "was ")
    assert gate_literals(r"(?:no|bad) (?:ptr|rdns)") == ("ptr", "rdns")
    assert gate_literals(r"(?:no|ip) \S+") is None  # nothing of 3 characters in every match
    assert gate_literals(r"(?i)spam") is None  # matches text the lower-cased text does not contain


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


def test_phrase_scans_of_the_tables_equal_their_plain_alternations():
    """The real tables (reasons, commands, delays) over every corpus text."""
    from bounceflow_classifier.parsing import reasons

    scans = [s.scan for s in reasons._STRONG + reasons._WEAK if s.scan] + [nonstandard._COMMANDS, nonstandard._DELAY]
    plains = [re.compile("|".join(f"(?P<p{i}>{p})" for i, p in enumerate(scan.patterns))) for scan in scans]
    for path in _FILES:
        low = path.read_bytes().decode("utf-8", "replace").lower()[:20_000]
        for scan, plain in zip(scans, plains):
            want = plain.search(low)
            got = scan.search(low)
            assert (got and (got[0], got[1].span())) == (want and (scan.labels[int(want.lastgroup[1:])], want.span()))

"""The fast MIME tree builder gives the tree the stdlib feed parser gives, the
phrase scanner gives the match the plain alternation gives, and the reason
tables name the reason a phrase-by-phrase search names."""

from __future__ import annotations

import email
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounceflow_classifier.parsing import mime, mimetree, nonstandard, reasons
from bounceflow_classifier.parsing.phrases import TEXT_TABLE, WEAK_TABLE
from bounceflow_classifier.parsing.phrasescan import PhraseScan, Substrings, gate_literals
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
        assert scan.occurs(text) == (want is not None)


def test_command_of_names_the_leftmost_command():
    assert nonstandard.command_of("Remote host said: 550 unknown user (in reply to RCPT TO command)") == "RCPT"
    assert nonstandard.command_of("refused to talk to me: 554 blocked") == "CONN"
    assert nonstandard.command_of("said: 550 rejected (in reply to end of DATA command)") == "DATA"
    assert nonstandard.command_of("nothing about the stage") is None


def test_phrase_scans_of_the_tables_equal_their_plain_alternations():
    """The real tables (reasons, commands, delays) over every corpus text."""
    scans = [s for s in reasons._STRONG.scans + reasons._WEAK.scans if s] + [nonstandard._COMMANDS, nonstandard._DELAY]
    plains = [re.compile("|".join(f"(?P<p{i}>{p})" for i, p in enumerate(scan.patterns))) for scan in scans]
    for path in _FILES:
        low = path.read_bytes().decode("utf-8", "replace").lower()[:5_000]  # evidence and commands read 4,000 and 3,000
        for scan, plain in zip(scans, plains):
            want = plain.search(low)
            got = scan.search(low)
            assert (got and (got[0], got[1].span())) == (want and (scan.labels[int(want.lastgroup[1:])], want.span()))
            assert scan.occurs(low) == (want is not None)


def test_substrings_finds_every_string_that_occurs():
    strings = ["a", "ab", "abc", "b", "bc", "c.d", "x\ny", " data", "data command", "[data]"]
    finder = Substrings(strings)
    for text in ["", "abc", "ababc", "zzz", "c.d c-d", "x\ny", "the data command", "data", "[data] [dat"]:
        assert finder.found_in(text) == {s for s in strings if s in text}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("ab .", min_size=1, max_size=4), min_size=1, max_size=12), st.text("ab .", max_size=40))
def test_substrings_of_generated_strings(strings, text):
    assert Substrings(strings).found_in(text) == {s for s in strings if s in text}


_PLAIN_TABLES = [[(reason, [re.compile(p) for p in phrases]) for reason, phrases in table]
                 for table in (TEXT_TABLE, WEAK_TABLE)]


def _first_reason_phrase_by_phrase(low: str, weak: bool) -> str | None:
    """The definition: the first reason (in table order) one of whose phrases occurs."""
    return next((reason for reason, phrases in _PLAIN_TABLES[weak] if any(p.search(low) for p in phrases)), None)


def test_reason_tables_name_the_first_reason_with_a_phrase_in_the_text():
    """Every paragraph of every corpus mail, and each mail's start, as evidence text."""
    for path in _FILES:
        text = path.read_bytes().decode("utf-8", "replace")
        for piece in [text] + text.split("\n\n")[:40]:
            low = reasons.evidence_text(piece)
            for weak in (False, True):
                assert reasons.match_prepared(low, weak) == _first_reason_phrase_by_phrase(low, weak)


_TABLE_WORDS = sorted({w for table in (TEXT_TABLE, WEAK_TABLE) for _, phrases in table for p in phrases
                       for w in re.findall(r"[a-z0-9'.-]+", p)} | {"550", "5.1.1", "<@>", ":", "\n"})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TABLE_WORDS), max_size=14).map(" ".join))
def test_reason_tables_on_generated_texts(text):
    low = reasons.evidence_text(text)
    for weak in (False, True):
        assert reasons.match_prepared(low, weak) == _first_reason_phrase_by_phrase(low, weak)

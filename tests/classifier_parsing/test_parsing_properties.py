"""Property tests: mutated corpus mails never crash the parser.

Hypothesis cuts, splices, flips bytes in and re-encodes real bounces; the
parser must return a valid Classification whose fields are consistent.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier_parsing.bounce_corpus import CORPUS

from bounceflow.models import Classification
from bounceflow_classifier.parsing import parse_bounce

FILES = sorted((CORPUS / "eml").glob("*.eml"))
SAMPLES = [p.read_bytes() for p in FILES[:: max(1, len(FILES) // 60)]]
CATEGORIES = {"dsn-failure", "dsn-delay", "dsn-success", "autoreply", "complaint", "nonstandard-bounce", "unknown"}


@st.composite
def mutated(draw) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "dup", "crlf"]))
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = draw(st.sampled_from([b"\n", b"\n\n", b"--", b"Content-Type: multipart/mixed; boundary=x\n",
                                             b"=?utf-8?b?/w==?=", b"\xff\xfe", b"Status: 9.9.9\n", b"<>@",
                                             b"Content-Transfer-Encoding: base64\n", b"\x00"]))
        elif op == "delete":
            j = draw(st.integers(i, min(len(raw), i + 200)))
            del raw[i:j]
        elif op == "dup":
            j = draw(st.integers(i, min(len(raw), i + 500)))
            raw[j:j] = raw[i:j]
        else:
            raw = bytearray(bytes(raw).replace(b"\n", b"\r\n"))
    return bytes(raw)


def _consistent(c: Classification) -> None:
    assert isinstance(c, Classification)
    assert c.category in CATEGORIES
    assert c.is_bounce == (c.category in ("dsn-failure", "dsn-delay", "nonstandard-bounce"))
    assert c.bounce_type in (None, "hard", "soft")
    if c.recipients and c.category != "unknown":
        assert c.recipient in {r.recipient for r in c.recipients}
    Classification.model_validate(c.model_dump())  # round-trips through the model


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus_mail_never_raises(raw):
    _consistent(parse_bounce(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw):
    _consistent(parse_bounce(raw))


def test_every_corpus_mail_parses_consistently():
    for path in FILES:
        c = parse_bounce(path.read_bytes())
        _consistent(c)
        assert c.error is None, path.name

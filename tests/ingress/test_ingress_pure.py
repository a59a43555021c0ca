"""The decisions without sockets: DSN parameters, submission records, reply codes, auth limit."""

from __future__ import annotations

import asyncio
import base64
import random
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.policy import SMTP as SMTP_POLICY

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounceflow.models import MESSAGE_ID_HEADER, DsnRequest
from bounceflow.settings import CommonSettings
from bounceflow_ingress.auth_limit import FailureLimiter
from bounceflow_ingress.publisher import Publisher
from bounceflow_ingress.dsn_params import (
    DsnParamError,
    MailDsn,
    RcptDsn,
    combine,
    from_rest,
    parse_mail_params,
    parse_rcpt_params,
    xtext_decode,
    xtext_encode,
)
from bounceflow_ingress.smtp_server import split_dsn_params, with_enhanced_code
from bounceflow_ingress import submission
from bounceflow_ingress.submission import (
    RecipientRequest,
    Submission,
    _split_header_block,
    build_records,
    compose_mime,
    header_values,
    stamp,
)


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127)))
def test_xtext_round_trip(value):
    encoded = xtext_encode(value)
    assert all(33 <= ord(c) <= 126 and c != "=" for c in encoded)
    assert xtext_decode(encoded, "X") == value


@pytest.mark.parametrize("bad", ["a+2", "a+2b", "a=b", "a b", "+GG", "é"])
def test_xtext_rejects(bad):
    with pytest.raises(DsnParamError):
        xtext_decode(bad, "ENVID")


def test_mail_and_rcpt_params_keep_case():
    mail = parse_mail_params(["SIZE=10", "ret=hdrs", "ENVID=Ab+2Bc"])
    rcpt = parse_rcpt_params(["NOTIFY=delay,Failure", "orcpt=RFC822;Bob@X.example"])
    assert mail == MailDsn(ret="HDRS", envid="Ab+c")
    assert rcpt == RcptDsn(notify=("DELAY", "FAILURE"), orcpt="RFC822;Bob@X.example")
    assert combine(mail, rcpt) == DsnRequest(notify=["DELAY", "FAILURE"], ret="HDRS", envid="Ab+c",
                                             orcpt="RFC822;Bob@X.example")


@pytest.mark.parametrize(
    "options",
    [["NOTIFY=NEVER,SUCCESS"], ["NOTIFY=SUCCESS,SUCCESS"], ["NOTIFY=,"], ["ORCPT=;a@b"], ["ORCPT=x y;a@b"],
     ["NOTIFY=SUCCESS", "notify=FAILURE"]],
)
def test_bad_rcpt_params(options):
    with pytest.raises(DsnParamError):
        parse_rcpt_params(options)


def test_rest_dsn():
    assert from_rest("never") == DsnRequest(notify=["NEVER"])
    assert from_rest(["SUCCESS", "FAILURE"], "hdrs", "id-1", "info@example.com") == DsnRequest(
        notify=["SUCCESS", "FAILURE"], ret="HDRS", envid="id-1", orcpt="rfc822;info@example.com")
    assert from_rest(orcpt="rfc822;a@example.com").orcpt == "rfc822;a@example.com"
    for bad in (dict(notify="ALWAYS"), dict(ret="ALL"), dict(envid="é"), dict(envid="x" * 101), dict(orcpt="nobody")):
        with pytest.raises(DsnParamError):
            from_rest(**bad)


def test_split_dsn_params_keeps_the_rest_for_aiosmtpd():
    assert split_dsn_params("SIZE=10 ret=HDRS BODY=8BITMIME EnvId=Ab", ("RET", "ENVID")) == (
        "SIZE=10 BODY=8BITMIME", ["ret=HDRS", "EnvId=Ab"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("503 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"),
        ("250 OK", "250 2.0.0 OK"),
        ("250 2.1.0 Sender OK", "250 2.1.0 Sender OK"),
        ("552 Error: Too much mail data", "552 5.3.4 Error: Too much mail data"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("334 ", "334 "),
    ],
)
def test_enhanced_codes_added_where_missing(raw, expected):
    assert with_enhanced_code(raw) == expected


PLAIN_ADDRESSES = [
    "a@b", "a@b.c", "accept+1@example.com", "A.B+c=d@Ex-ample.COM", "x@1.2", "!#$%&'*+/=?^_`{|}~-@a.b",
    "a@b.localhost", "a@LOCALHOST", "a@x.Test", "a@arpa", "a@b.onion", "a@invalid.x", "a@local", "a@my.local.net",
    "a@ab--cd.com", "a@xn--bcher-kva.example", "a@xn--x.example", "a@a-b.c", "a@-b.c", "a@b-.c", "a@b.c-",
    ".a@b.c", "a.@b.c", "a..b@c.d", "a@b..c", "a@.b", "a@b.", "@b.c", "a@", "a", "a@b@c", "a b@c.d", "a@b.c\n",
    " a@b.c", '"a b"@c.d', "a@[1.2.3.4]", "é@b.c", "a@bé.c", "a@b_c.d", "A@B.C",
    "x" * 64 + "@b.c", "x" * 65 + "@b.c", "x" * 242 + "@example.com", "x" * 243 + "@example.com",
    "a@" + "b" * 63 + ".c", "a@" + "b" * 64 + ".c", "a@" + ".".join(["b" * 60] * 4) + ".cd",
    "a@" + ".".join(["b" * 61] * 4) + ".c", "a@" + ".".join(["b" * 63] * 4),
]
_ADDRESS_PIECES = st.sampled_from(
    ["a", "Z", "0", "9", ".", "@", "-", "--", "+", "_", "!", " ", "\"", "[", "]", "é", "xn--", "localhost", "test",
     "example.com", "b" * 30, "\n", "\x00"]
)


@pytest.mark.parametrize("address", PLAIN_ADDRESSES)
def test_address_problem_fast_path_agrees_with_email_validator(address):
    assert submission.address_problem(address) == submission._validator_problem.__wrapped__(address)


@given(st.lists(_ADDRESS_PIECES, max_size=16).map("".join))
def test_address_problem_fast_path_agrees_with_email_validator_on_anything(address):
    assert submission.address_problem(address) == submission._validator_problem.__wrapped__(address)


def test_failure_limiter_window():
    now = [0.0]
    limiter = FailureLimiter(2, 10, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.blocked("a") and not limiter.blocked("b")
    now[0] = 10.0
    assert not limiter.blocked("a"), "failures age out"
    limiter.failed("a")
    limiter.succeeded("a")
    assert not limiter.blocked("a")


def test_stamp_prepends_and_replaces_forged_id():
    mime = b"From: a@example.com\r\nX-Bounceflow-Id: forged\r\n  continued\r\nSubject: s\r\n\r\nX-Bounceflow-Id: body\r\n"
    out = stamp(mime, "01abc", "<m@h>")
    assert out.startswith(b"X-Bounceflow-Id: 01abc\r\nMessage-ID: <m@h>\r\nFrom: a@example.com\r\nSubject: s\r\n")
    assert out.endswith(b"\r\n\r\nX-Bounceflow-Id: body\r\n"), "the body is untouched"
    assert stamp(b"Subject: lf\n\nbody\n", "01x", None) == b"X-Bounceflow-Id: 01x\nSubject: lf\n\nbody\n"


def test_build_records_one_per_recipient():
    submission = Submission(
        account="acme", source="smtp", envelope_from="", track_bounces=True,
        recipients=(RecipientRequest("a@example.net"), RecipientRequest("b@example.net", DsnRequest(notify=["NEVER"]))),
        mime=b"From: x@example.com\r\n\r\nhi\r\n",
    )
    records = build_records(submission, "h.test")
    assert [r.recipient for r in records] == ["a@example.net", "b@example.net"]
    assert records[1].dsn.notify == ["NEVER"]
    copies = [base64.b64decode(r.mime_b64) for r in records]
    assert [header_values(c, MESSAGE_ID_HEADER) for c in copies] == [[r.message_id] for r in records]
    assert header_values(copies[0], "Message-ID") == header_values(copies[1], "Message-ID")


_HEADER_PIECES = st.sampled_from([
    b"From: a@b.c", b"from:x", b"Message-ID: <a@b>", b"message-id:", b"Message-Id :x", b"To: t", b"X Y: z", b"(",
    b"\r\n", b"\n", b"\r", b" ", b"\t", b"cont", b":", b"From ", b"\xc3\xa9", b"\x0b", b"\x0c", b"Subject: s\r\n  folded",
])


@given(st.lists(_HEADER_PIECES, max_size=14).map(b"".join), st.sampled_from(["From", "Message-ID", "To", "Subject"]))
def test_header_values_as_the_email_parser_reads_them(mime, name):
    parsed = BytesHeaderParser().parsebytes(_split_header_block(mime)[0] + b"\r\n")
    assert header_values(mime, name) == [str(v) for v in parsed.get_all(name, [])]


def test_compose_mime_variants():
    html_only = compose_mime(from_="a@example.com", to=["b@example.net"], subject="S", html="<b>x</b>", text=None,
                             hostname="h")
    assert b"Content-Type: text/html" in html_only and b"\r\n" in html_only
    both = compose_mime(from_="a@example.com", to=[], subject=None, html="<b>x</b>", text="x", hostname="h")
    assert b"multipart/alternative" in both and b"To: undisclosed-recipients:;" in both


@pytest.mark.parametrize(
    "parts",
    [
        {"html": "<b>x</b>", "text": None, "subject": "Süß " * 30},
        {"html": "<b>x</b>", "text": "x\n" * 50, "subject": None},
        {"html": None, "text": "é" * 2000, "subject": "plain"},
    ],
)
def test_compose_with_cached_header_classes_gives_the_same_bytes(parts, monkeypatch):
    monkeypatch.setattr(submission, "make_message_id_header", lambda hostname: f"<fixed@{hostname}>")
    kwargs = dict(from_="Ann Example <a@example.com>", to=["b@example.net", "C <c@example.org>"], hostname="h",
                  now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), **parts)
    random.seed(7)  # the multipart boundary
    ours = compose_mime(**kwargs)
    monkeypatch.setattr(submission, "_COMPOSE_POLICY", SMTP_POLICY)
    random.seed(7)
    assert ours == compose_mime(**kwargs)


class _HeldWriter:
    """Stands in for a TransactionalWriter: records what it was given, commits when released."""

    def __init__(self) -> None:
        self.mails: list[list] = []
        self.release = asyncio.Event()

    async def write(self, records) -> None:
        self.mails.append(records)
        await self.release.wait()


def _publisher_with_held_writers(n: int) -> tuple[Publisher, list[_HeldWriter]]:
    publisher = Publisher(CommonSettings(kafka_bootstrap="unused:9092"), writers=n)
    writers = [_HeldWriter() for _ in range(n)]
    for lane, writer in zip(publisher._lanes, writers):
        lane.writer = writer
    return publisher, writers


def _record(i: int):
    return build_records(Submission(account="a", source="smtp", envelope_from="", track_bounces=True,
                                    recipients=(RecipientRequest(f"r{i}@example.net"),),
                                    mime=b"From: x@example.com\r\n\r\nhi\r\n"), "h.test")


def test_publisher_sends_concurrent_mails_to_the_busy_writer_and_alternates_when_idle():
    async def scenario() -> None:
        publisher, writers = _publisher_with_held_writers(2)
        for writer in writers:
            writer.release.set()
        for i in range(4):  # one at a time: every writer idle, the one idle longest takes it
            await publisher.publish(_record(i))
        assert [len(w.mails) for w in writers] == [2, 2]
        for writer in writers:
            writer.release.clear()
            writer.mails.clear()
        waiting = [asyncio.create_task(publisher.publish(_record(i))) for i in range(10)]
        await asyncio.sleep(0)
        assert sorted(len(w.mails) for w in writers) == [0, 10], "concurrent mails share one writer"
        for writer in writers:
            writer.release.set()
        await asyncio.gather(*waiting)

    asyncio.run(scenario())


def test_combine_shares_the_empty_request_and_keeps_any_parameter():
    assert combine(MailDsn(), RcptDsn()) == DsnRequest()
    assert combine(MailDsn(ret="HDRS"), RcptDsn()) == DsnRequest(ret="HDRS")
    assert combine(MailDsn(), RcptDsn(notify=("NEVER",))) == DsnRequest(notify=["NEVER"])
    assert combine(MailDsn(envid="E"), RcptDsn(orcpt="rfc822;a@b.c")) == DsnRequest(envid="E", orcpt="rfc822;a@b.c")

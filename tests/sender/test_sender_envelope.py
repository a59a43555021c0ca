"""The envelope rules of DESIGN.md ("Envelope and VERP"), without sockets."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounceflow.models import DsnRequest, OutgoingMessage
from bounceflow.verp import VerpCodec
from bounceflow_sender import envelope

CODEC = VerpCodec(["s3cret"])
MIME = b"Return-Path: <rp@example.org>\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\nReturn-Path: body line\r\n"


def message(*, track=True, envelope_from="owner@example.org", mime=MIME, dsn=None, message_id="01hx") -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id, account="demo", source="smtp", submitted_at=datetime.now(timezone.utc),
        envelope_from=envelope_from, recipient="rcpt@example.com", track_bounces=track,
        dsn=dsn or DsnRequest(), mime_b64=base64.b64encode(mime).decode(),
    )


def test_tracking_uses_signed_verp_on_the_account_domain():
    mail_from = envelope.mail_from(message(), CODEC, "bounces.example.net")
    assert mail_from == CODEC.address("01hx", "bounces.example.net")
    assert CODEC.message_id(mail_from, ["bounces.example.net"]) == "01hx"


def test_tracking_with_null_envelope_still_uses_verp():
    assert envelope.mail_from(message(envelope_from=""), CODEC, "b.test") == CODEC.address("01hx", "b.test")


def test_tracking_ignores_return_path_header():
    assert envelope.mail_from(message(), CODEC, "b.test").startswith("b.01hx.")


def test_untracked_uses_return_path_header_first():
    assert envelope.mail_from(message(track=False), CODEC, "b.test") == "rp@example.org"


def test_untracked_without_return_path_uses_submitted_envelope():
    mime = b"From: a@example.org\r\n\r\nbody\r\n"
    assert envelope.mail_from(message(track=False, mime=mime), CODEC, "b.test") == "owner@example.org"


def test_untracked_null_envelope_stays_null():
    mime = b"From: a@example.org\r\n\r\nbody\r\n"
    assert envelope.mail_from(message(track=False, envelope_from="", mime=mime), CODEC, "b.test") == ""


def test_untracked_null_return_path_header_means_null_sender():
    mime = b"Return-Path: <>\r\nFrom: a@example.org\r\n\r\nbody\r\n"
    assert envelope.mail_from(message(track=False, mime=mime), CODEC, "b.test") == ""


@pytest.mark.parametrize("value", [b"not an address", b"<two@@example.org>", b"<a b@example.org>", b""])
def test_unusable_return_path_header_falls_back_to_the_envelope(value):
    mime = b"Return-Path: " + value + b"\r\n\r\nbody\r\n"
    assert envelope.mail_from(message(track=False, mime=mime), CODEC, "b.test") == "owner@example.org"


def test_folded_return_path_header_is_read():
    mime = b"Return-Path:\r\n <folded@example.org>\r\nFrom: x@example.org\r\n\r\nbody\r\n"
    assert envelope.return_path(mime) == "folded@example.org"


def test_rewrite_removes_every_return_path_header_but_not_body_lines():
    mime = b"Return-Path: <a@x.org>\r\nFrom: a@example.org\r\nreturn-path:\r\n <b@x.org>\r\nSubject: s\r\n\r\nReturn-Path: body\r\n"
    out = envelope.rewrite_mime(mime, "01hx")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"return-path" not in head.lower()
    assert body == b"Return-Path: body\r\n"
    assert head.startswith(b"X-Bounceflow-Id: 01hx\r\n")
    assert b"From: a@example.org\r\nSubject: s" in head


def test_rewrite_replaces_a_forged_id_header():
    out = envelope.rewrite_mime(b"X-Bounceflow-Id: someone-else\r\nFrom: a@x.org\r\n\r\nb\r\n", "01hx")
    assert out.count(b"X-Bounceflow-Id") == 1 and b"someone-else" not in out


def test_rewrite_of_headers_only_message_keeps_them():
    out = envelope.rewrite_mime(b"From: a@x.org\nSubject: s", "01hx")
    assert out == b"X-Bounceflow-Id: 01hx\r\nFrom: a@x.org\nSubject: s\r\n\r\n"


def test_rewrite_keeps_bare_lf_messages_intact():
    out = envelope.rewrite_mime(b"Return-Path: <a@x.org>\nFrom: a@x.org\n\nbody\n", "01hx")
    assert out == b"X-Bounceflow-Id: 01hx\r\nFrom: a@x.org\n\nbody\n"


@given(st.binary(max_size=300))
def test_rewrite_never_loses_the_body(data):
    out = envelope.rewrite_mime(b"Subject: s\r\n\r\n" + data, "id")
    assert out.endswith(data)


_MIME_PIECES = st.lists(st.sampled_from([
    b"Return-Path: <a@x.org>", b"return-path:", b" <b@x.org>", b"X-Bounceflow-Id: forged", b"From: a@x.org",
    b"Subject: s", b"\r\n", b"\n", b"\r", b" ", b"\t", b"body", b"Return-Path: body",
]), max_size=14).map(b"".join)


def _rewrite_by_fields(mime: bytes, message_id: str) -> bytes:
    """The rule spelled out field by field: what the spliced fast path must equal."""
    fields, sep, body = envelope.split_mime(mime)
    kept = [h for h in fields if envelope._field_name(h) not in (b"return-path", b"x-bounceflow-id")]
    return f"X-Bounceflow-Id: {message_id}\r\n".encode() + b"".join(kept) + (sep or b"\r\n") + body


@given(_MIME_PIECES)
def test_rewrite_splice_equals_the_field_by_field_rule(mime):
    assert envelope.rewrite_mime(mime, "01hx") == _rewrite_by_fields(mime, "01hx")


def test_rewrite_without_headers_to_drop_is_our_header_plus_the_message_unchanged():
    mime = b"From: a@x.org\r\nSubject: s\r\n\r\nReturn-Path: body\r\n"
    assert envelope.rewrite_mime(mime, "01hx") == b"X-Bounceflow-Id: 01hx\r\n" + mime


@given(st.text(max_size=40))
def test_xtext_escapes_exactly_plus_equals_and_non_printables(value):
    expected = "".join(c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
                       for c in value)
    assert envelope.xtext(value) == expected


# DSN parameters towards the next hop


def test_no_dsn_parameters_when_the_next_hop_lacks_dsn():
    params = envelope.dsn_parameters(message(dsn=DsnRequest(notify=["SUCCESS"], ret="HDRS")), next_hop_has_dsn=False)
    assert params.mail == [] and params.rcpt == []


@pytest.mark.parametrize("requested, expected", [
    (None, "NOTIFY=FAILURE,DELAY"),
    (["NEVER"], "NOTIFY=FAILURE,DELAY"),
    (["FAILURE"], "NOTIFY=FAILURE,DELAY"),
    (["SUCCESS", "FAILURE"], "NOTIFY=SUCCESS,FAILURE,DELAY"),
    (["SUCCESS"], "NOTIFY=SUCCESS,FAILURE,DELAY"),
])
def test_tracking_always_asks_for_failures_and_delays(requested, expected):
    params = envelope.dsn_parameters(message(dsn=DsnRequest(notify=requested)), next_hop_has_dsn=True)
    assert expected in params.rcpt


def test_tracking_envid_is_our_message_id_and_ret_orcpt_pass_through():
    dsn = DsnRequest(notify=["FAILURE"], ret="HDRS", envid="cust-1", orcpt="rfc822;bob+x=y@example.com")
    params = envelope.dsn_parameters(message(dsn=dsn), next_hop_has_dsn=True)
    assert params.mail == ["RET=HDRS", "ENVID=01hx"]
    assert params.rcpt == ["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;bob+2Bx+3Dy@example.com"]


def test_untracked_passes_the_customers_dsn_request():
    dsn = DsnRequest(notify=["NEVER"], ret="FULL", envid="cust 1")
    params = envelope.dsn_parameters(message(track=False, dsn=dsn), next_hop_has_dsn=True)
    assert params.mail == ["RET=FULL", "ENVID=cust+201"]
    assert params.rcpt == ["NOTIFY=NEVER"]


def test_untracked_without_a_request_sends_no_dsn_parameters():
    params = envelope.dsn_parameters(message(track=False), next_hop_has_dsn=True)
    assert params.mail == [] and params.rcpt == []


def test_malformed_orcpt_is_not_passed():
    params = envelope.dsn_parameters(message(dsn=DsnRequest(orcpt="no-type-here")), next_hop_has_dsn=True)
    assert not any(p.startswith("ORCPT") for p in params.rcpt)


@given(st.text(max_size=40))
def test_xtext_output_is_printable_ascii_without_plus_or_equals_escapes(value):
    encoded = envelope.xtext(value)
    assert encoded.isascii() and all("!" <= c <= "~" for c in encoded) and "=" not in encoded


@pytest.mark.parametrize("address, valid", [
    ("user@example.com", True), ("u.s+tag@sub.example.co.uk", True), ("user@[127.0.0.1]", True),
    ("jörg@bücher.example", True), ("", False), ("no-at-sign", False), ("@example.com", False),
    ("user@", False), ("a b@example.com", False), ("user@exa mple.com", False), ("<user@example.com>", False),
    ("user@-bad.example", False), ("user@example..com", False), ("user\r\n@example.com", False),
    ("x" * 65 + "@example.com", False),
])
def test_address_validation(address, valid):
    assert envelope.is_valid_address(address) is valid

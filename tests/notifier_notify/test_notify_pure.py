"""Pure decisions of the notifier's feedback loops and forwarding (no sockets)."""
from __future__ import annotations

import base64
import email
import email.policy
import json
import random
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook as ReferenceWebhook

from bounceflow.models import DeadLetter, DsnRequest, PendingNotification
from bounceflow_notifier import webhooks
from bounceflow_notifier.dsn_policy import decide_forward, notify_wants
from bounceflow_notifier.forwarding import forwarded_mime
from bounceflow_notifier.notifications import Notification, RetryPolicy, after_failure, plan_bounce, plan_result
from bounceflow_notifier.replay import ReplayFilter, parse_since, requeued, select
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.ssrf import address_refusal, check_url

from notifier_notify.notify_records import SEED_EXAMPLES, account, classified, refusal

CATEGORIES = ["dsn-failure", "dsn-delay", "dsn-success", "autoreply", "nonstandard-bounce", "complaint", "unknown"]

# What each seed example forwards, per category (True = forwarded to the envelope).
EXPECTED_FORWARDS = {
    "notify-never": {"dsn-failure": False, "dsn-delay": False, "dsn-success": False,
                     "autoreply": True, "nonstandard-bounce": True, "complaint": True, "unknown": True},
    "no-envelope": {c: False for c in CATEGORIES},
    "notify-failure": {"dsn-failure": True, "dsn-delay": False, "dsn-success": False,
                       "autoreply": True, "nonstandard-bounce": True, "complaint": True, "unknown": True},
    "dsn-object": {"dsn-failure": True, "dsn-delay": False, "dsn-success": False,
                   "autoreply": True, "nonstandard-bounce": True, "complaint": True, "unknown": True},
}


@pytest.mark.parametrize("example", sorted(EXPECTED_FORWARDS))
@pytest.mark.parametrize("category", CATEGORIES)
def test_seed_examples_forward_what_the_seed_says(example, category):
    bounce = classified(category if category != "unknown" else "autoreply", **SEED_EXAMPLES[example])
    if category == "unknown":
        bounce = bounce.model_copy(update={"classification": bounce.classification.model_copy(update={"category": "unknown"})})
    decision = decide_forward(bounce, account())
    assert decision.forward is EXPECTED_FORWARDS[example][category], decision.why
    if decision.forward:
        assert decision.target == "bounce@yourdomain.com"


def test_notify_default_is_failure_and_delay():
    assert notify_wants(DsnRequest(), "dsn-failure")
    assert notify_wants(DsnRequest(), "dsn-delay")
    assert not notify_wants(DsnRequest(), "dsn-success")
    assert notify_wants(DsnRequest(notify=["SUCCESS"]), "dsn-success")
    assert not notify_wants(DsnRequest(notify=["SUCCESS"]), "dsn-failure")
    assert notify_wants(DsnRequest(notify=["NEVER"]), "autoreply")


def test_forward_address_only_when_the_envelope_is_unknown():
    acct = account(forward_address="bounces@customer.example")
    unknown = classified("dsn-failure", envelope_from=None)
    assert decide_forward(unknown, acct).target == "bounces@customer.example"
    # An explicit <> means "no bounces", even with a forward address.
    assert not decide_forward(classified("autoreply", envelope_from=""), acct).forward
    # The message's own envelope wins over the forward address.
    assert decide_forward(classified("autoreply"), acct).target == "bounce@yourdomain.com"
    assert not decide_forward(classified("autoreply", envelope_from=None), account()).forward


def _dsn_parts(raw: bytes):
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = {p.get_content_type(): p for p in message.get_payload()}
    return message, parts


def test_forwarded_dsn_restores_envid_orcpt_and_cuts_to_headers_for_ret_hdrs():
    bounce = classified("dsn-failure", **SEED_EXAMPLES["dsn-object"])
    raw = forwarded_mime(bounce)
    message, parts = _dsn_parts(raw)
    per_message, per_recipient = parts["message/delivery-status"].get_payload()[:2]
    assert per_message["Original-Envelope-Id"] == "unique-identifier"
    assert per_recipient["Original-Recipient"] == "rfc822;info@example.com"
    assert "message/rfc822" not in parts
    headers = parts["text/rfc822-headers"].get_payload()
    assert "Subject: Our offer" in headers and b"SECRET BODY LINE" not in raw
    assert message["X-Bounceflow-Forwarded"] == bounce.event_id


def test_forwarded_dsn_without_customer_envid_drops_ours_and_keeps_full_message():
    bounce = classified("dsn-failure", envelope_from="bounce@yourdomain.com", dsn=DsnRequest(notify=["FAILURE"]))
    raw = forwarded_mime(bounce)
    _, parts = _dsn_parts(raw)
    per_message = parts["message/delivery-status"].get_payload()[0]
    assert per_message["Original-Envelope-Id"] is None  # ours (the message id) is not the customer's
    assert "message/rfc822" in parts and b"SECRET BODY LINE" in raw


def test_non_dsn_bounces_are_forwarded_unchanged_but_for_the_trace_header():
    bounce = classified("autoreply", dsn=DsnRequest(ret="HDRS"))
    raw = forwarded_mime(bounce)
    first, _, rest = raw.partition(b"\n")
    assert first.rstrip(b"\r") == f"X-Bounceflow-Forwarded: {bounce.event_id}".encode()
    assert rest == base64.b64decode(bounce.mime_b64)


def test_bounce_payload_has_the_seed_fields_and_the_classification():
    bounce = classified("dsn-failure")
    payload = webhooks.bounce_payload(bounce)
    assert payload["id"] == bounce.message_id and payload["recipient"] == "info@example.com"
    assert payload["mailfrom"] == bounce.mail_from and payload["rcptto"] == bounce.rcpt_to
    assert payload["mime"] == base64.b64decode(bounce.mime_b64).decode()
    assert (payload["category"], payload["bounce_type"], payload["reason"], payload["status"], payload["smtp_code"]) == \
        ("dsn-failure", "hard", "userunknown", "5.1.1", 550)


def test_refusal_payload_describes_the_smtp_failure():
    result = refusal()
    payload = webhooks.refusal_payload(result)
    assert payload["source"] == "smtp" and payload["id"] == result.message_id
    assert payload["mailfrom"] == result.mail_from and payload["rcptto"] == result.recipient
    assert payload["diagnostic"] == result.reply_text and payload["smtp_code"] == 550


def test_json_and_form_bodies():
    payload = {"id": "m1", "smtp_code": 550, "matched": True, "reason": None, "mime": "a=b&c\r\n"}
    body, ctype = webhooks.encode_body(payload, "json")
    assert ctype == "application/json" and json.loads(body) == payload
    body, ctype = webhooks.encode_body(payload, "form")
    assert ctype == "application/x-www-form-urlencoded"
    assert dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)) == \
        {"id": "m1", "smtp_code": "550", "matched": "true", "reason": "", "mime": "a=b&c\r\n"}


def test_signature_verifies_with_the_reference_library():
    acct = account(bounce_url="https://hooks.example.com/b")
    secret = acct.bounce_webhook.secret.get_secret_value()
    body, ctype = webhooks.encode_body({"id": "m1"}, "json")
    headers = webhooks.signed_headers(secret, "rb-1:bounce-webhook", datetime.now(timezone.utc), body, ctype)
    assert ReferenceWebhook(secret).verify(body, headers) == {"id": "m1"}
    assert headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception):
        ReferenceWebhook(secret).verify(body + b" ", headers)


@pytest.mark.parametrize("secret", [
    "whsec_" + base64.b64encode(bytes(range(32))).decode(),
    base64.b64encode(b"no prefix, padded").decode(),
    base64.b64encode(b"no prefix, unpadded!").decode().rstrip("="),
])
@pytest.mark.parametrize("body", [b"{}", rb'{"mime":"Gr\u00fc\u00dfe"}', "{\"mime\":\"Grüße \u2028 \ufffd 😀\"}".encode(),
                                  b"id=m1&mime=a%3Db%26c"])
def test_signature_is_the_reference_librarys(secret, body):
    moment = datetime(2025, 3, 10, 12, 0, 0, 999999, tzinfo=timezone.utc)
    headers = webhooks.signed_headers(secret, "rb-1:bounce-webhook", moment, body, "application/json")
    assert headers["webhook-timestamp"] == str(int(moment.timestamp()))
    assert headers["webhook-signature"] == ReferenceWebhook(secret).sign("rb-1:bounce-webhook", moment, body.decode())


def test_json_body_is_compact_utf8_json_as_json_dumps_writes_it():
    bounce = classified("dsn-failure")
    mime = "Grüße\r\n\u2028\x00\x1f\x7f \"q\" \\ </script> \ufffd 😀"
    for payload in (webhooks.bounce_payload(bounce, mime), webhooks.dsn_failure_payload(bounce, mime),
                    webhooks.refusal_payload(refusal()), {"big": 10 ** 20, "none": None, "flag": False}):
        body, _ = webhooks.encode_body(payload, "json")
        assert body == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def test_payloads_are_built_only_for_configured_webhooks(monkeypatch):
    built = []
    monkeypatch.setattr(webhooks, "dsn_failure_payload", lambda *a: built.append("failure") or {})
    plan = plan_bounce(classified("dsn-failure", envelope_from=""), account(bounce_url="https://h.example/b"))
    assert [n.kind for n in plan.notifications] == ["bounce-webhook"] and built == []


def test_plans():
    acct = account(bounce_url="https://h.example/b", failure_url="https://h.example/f")
    dsn = plan_bounce(classified("dsn-failure"), acct)
    assert [n.kind for n in dsn.notifications] == ["bounce-webhook", "failure-webhook", "forward"]
    assert dsn.notifications[0].event_id.endswith(":bounce-webhook")
    auto = plan_bounce(classified("autoreply", envelope_from=""), acct)
    assert [n.kind for n in auto.notifications] == ["bounce-webhook"]
    assert plan_bounce(classified("autoreply", account_name=None, matched=False), None).notifications == []
    assert [n.kind for n in plan_result(refusal(), acct).notifications] == ["failure-webhook"]
    assert plan_result(refusal(status="deferred", final=False), acct).notifications == []
    assert plan_result(refusal(), account()).notifications == []


def test_retry_schedule_covers_a_day_then_dead_letters():
    settings = NotifierSettings()
    policy = RetryPolicy(settings.notification_retry_schedule, 0)
    assert sum(policy.schedule) >= 24 * 3600
    assert list(policy.schedule) == sorted(policy.schedule)  # backoff never shrinks
    now = datetime.now(timezone.utc)
    n = Notification("e:bounce-webhook", "bounce-webhook", "acme", "https://h/b", "m1", b"{}", "application/json")
    step = after_failure(n, "HTTP 503", False, now, policy)
    assert isinstance(step, PendingNotification) and step.attempt == 2
    assert step.not_before == now + timedelta(seconds=30) and step.event_id == n.event_id
    last = Notification.from_pending(step.model_copy(update={"attempt": policy.max_attempts}))
    assert isinstance(after_failure(last, "HTTP 503", False, now, policy), DeadLetter)
    assert isinstance(after_failure(n, "refused", True, now, policy), DeadLetter)


def test_jitter_stays_within_bounds():
    policy = RetryPolicy([100], 0.2)
    rng = random.Random(7)
    assert all(80 <= policy.delay(1, rng) <= 120 for _ in range(200))


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1",
                                     "fe80::1", "224.0.0.1", "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1"])
def test_internal_addresses_are_refused(address):
    assert address_refusal(address)


def test_public_addresses_pass():
    assert address_refusal("93.184.216.34") is None and address_refusal("2606:4700::1111") is None


async def test_url_checks():
    assert not (await check_url("http://127.0.0.1:8080/x", False)).ok
    assert (await check_url("http://127.0.0.1:8080/x", False)).permanent
    assert (await check_url("http://127.0.0.1:8080/x", True)).ok
    assert not (await check_url("ftp://example.com/x", True)).ok
    assert not (await check_url("http://[::1]/x", False)).ok


def test_replay_selection_and_requeue():
    now = datetime.now(timezone.utc)
    n = Notification("e1:bounce-webhook", "bounce-webhook", "acme", "u", "m1", b"{}")
    old = DeadLetter(notification=n.pending(11, now, now, "x"), failed_at=now - timedelta(days=2), reason="old")
    new = DeadLetter(notification=n.pending(11, now, now, "x"), failed_at=now, reason="new")
    other = DeadLetter(notification=n.pending(11, now, now, "x").model_copy(update={"account": "b", "event_id": "e2"}),
                       failed_at=now, reason="b")
    assert [d.reason for d in select([old, new, other], ReplayFilter("acme"))] == ["new"]
    assert [d.reason for d in select([old, other], ReplayFilter(since=parse_since("1d", now)))] == ["b"]
    record = PendingNotification.from_bytes(requeued(new, now))
    assert record.attempt == 2 and record.event_id == "e1:bounce-webhook" and record.not_before == now

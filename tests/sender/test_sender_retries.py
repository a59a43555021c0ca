"""The retry schedule is data; deferrals expire after the max age."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from bounceflow.models import OutgoingMessage
from bounceflow_sender.outcomes import from_reply, network_error
from bounceflow_sender.retries import Job, RetryPolicy, decide

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
POLICY = RetryPolicy([60, 300, 900], max_age=4 * 24 * 3600)
MESSAGE = OutgoingMessage(
    message_id="01hx", account="demo", source="rest", submitted_at=T0, envelope_from="a@example.org",
    recipient="b@example.com", track_bounces=True, mime_b64=base64.b64encode(b"x").decode(),
)


def test_delays_follow_the_schedule_and_the_last_repeats():
    assert [POLICY.delay(n) for n in range(1, 6)] == [60, 300, 900, 900, 900]


def test_delivered_and_failed_are_final():
    for outcome in (from_reply(250, "ok", "data"), from_reply(550, "5.1.1 no", "rcpt")):
        decision = decide(Job(MESSAGE, 1, T0), outcome, T0, POLICY)
        assert decision.final and decision.retry is None and decision.outcome is outcome


def test_deferred_schedules_the_next_attempt():
    now = T0 + timedelta(seconds=70)
    decision = decide(Job(MESSAGE, 2, T0), from_reply(451, "4.7.1 later", "rcpt"), now, POLICY)
    assert not decision.final and decision.outcome.status == "deferred"
    retry = decision.retry
    assert retry.attempt == 3 and retry.not_before == now + timedelta(seconds=300)
    assert retry.first_attempt_at == T0 and retry.message == MESSAGE
    assert retry.last_error == "451 4.7.1 later"


def test_deferral_past_the_max_age_fails_as_expired():
    now = T0 + timedelta(days=4) - timedelta(seconds=100)
    decision = decide(Job(MESSAGE, 9, T0), network_error("connection refused", "connect"), now, POLICY)
    assert decision.final and decision.retry is None
    assert (decision.outcome.status, decision.outcome.reason) == ("failed", "expired")
    assert "connection refused" in decision.outcome.reply_text and "9 attempts" in decision.outcome.reply_text


def test_a_deferral_just_inside_the_max_age_is_retried():
    now = T0 + timedelta(days=4) - timedelta(seconds=900)
    assert decide(Job(MESSAGE, 9, T0), network_error("x", "connect"), now, POLICY).retry is not None

"""`make demo`'s bookkeeping: what it expects back and which webhook calls are this run's."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bounceflow_devkit.demo import expected_bounces, expected_failures, plan, webhooks_since
from bounceflow_devkit.webhook_sink import ReceivedCall


def test_expected_counts_follow_the_mix() -> None:
    pairs = plan(2000)
    # dsn-failure 200, mailboxfull 80, dsn-delay 100, autoreply 140, nonstandard 100, complaint 80
    assert expected_bounces(pairs) == 700
    # refused at RCPT 160 or DATA 60, failure DSNs 200 + 80
    assert expected_failures(pairs) == 500


def test_webhooks_since_counts_only_events_of_this_run() -> None:
    since = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)

    def call(path: str, field: str, moment: datetime) -> ReceivedCall:
        return ReceivedCall(path, {}, json.dumps({field: moment.isoformat()}).encode())

    earlier, later = since - timedelta(minutes=5), since + timedelta(seconds=1)
    calls = [call("/bounces", "received_at", later), call("/bounces", "received_at", earlier),
             call("/failures", "occurred_at", later), call("/failures", "occurred_at", since),
             call("/failures", "occurred_at", earlier)]
    assert webhooks_since(calls, since) == {"/bounces": 1, "/failures": 2}

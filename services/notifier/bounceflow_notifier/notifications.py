"""What to notify for each record, and what happens after a failed attempt (pure).

`plan_result` / `plan_bounce` turn a `delivery-result` or `classified-bounce`
record into `Notification`s: the failure webhook for a final failure, the
bounce webhook for every bounce (plus the failure webhook for a DSN failure),
and a forward when `dsn_policy` says so. Each has a stable id,
`<event id>:<kind>`, that is the webhook idempotency key on every try.

`after_failure` is the retry schedule as data: the wait before attempt 2, 3,
… with jitter; after the last try a `DeadLetter`. Refusals that cannot
succeed later (SSRF, a 5xx from the customer's MX) dead-letter at once.
"""

from __future__ import annotations

import base64
import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bounceflow.accounts import Account
from bounceflow.models import (
    ClassifiedBounce,
    DeadLetter,
    DeliveryResult,
    NotificationKind,
    PendingNotification,
)

from bounceflow_notifier import webhooks
from bounceflow_notifier.dsn_policy import decide_forward
from bounceflow_notifier.forwarding import forwarded_mime


@dataclass(frozen=True)
class Notification:
    """One webhook call or forward to make, exactly as it will be sent."""

    event_id: str
    kind: NotificationKind
    account: str
    target: str
    message_id: str | None
    payload: bytes
    content_type: str | None = None
    mail_from: str | None = None
    attempt: int = 1
    first_attempt_at: datetime | None = None
    not_before: datetime | None = None

    def pending(self, attempt: int, not_before: datetime, first_attempt_at: datetime, error: str | None) -> PendingNotification:
        """The `notification-retry` record for a later attempt."""
        return PendingNotification(
            event_id=self.event_id, kind=self.kind, account=self.account, target=self.target,
            message_id=self.message_id, attempt=attempt, not_before=not_before,
            first_attempt_at=first_attempt_at, last_error=error,
            payload_b64=base64.b64encode(self.payload).decode(), content_type=self.content_type,
            mail_from=self.mail_from,
        )

    @classmethod
    def from_pending(cls, record: PendingNotification) -> "Notification":
        """The notification a retry record schedules."""
        return cls(
            event_id=record.event_id, kind=record.kind, account=record.account, target=record.target,
            message_id=record.message_id, payload=base64.b64decode(record.payload_b64),
            content_type=record.content_type, mail_from=record.mail_from, attempt=record.attempt,
            first_attempt_at=record.first_attempt_at, not_before=record.not_before,
        )


@dataclass(frozen=True)
class Plan:
    """The notifications for one record, and notes on what was left out (for the logs)."""

    notifications: list[Notification] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _webhook(kind: NotificationKind, event_id: str, account: Account, payload: Callable[[], dict],
             message_id: str | None) -> Notification | None:
    """The webhook call of `kind`, or None when the account has none; `payload()` only runs for a configured hook."""
    hook = account.bounce_webhook if kind == "bounce-webhook" else account.failure_webhook
    if hook is None:
        return None
    body, content_type = webhooks.encode_body(payload(), hook.format)
    return Notification(webhooks.webhook_event_id(event_id, kind), kind, account.name, hook.url,
                        message_id, body, content_type)


def plan_result(result: DeliveryResult, account: Account | None) -> Plan:
    """A final failed delivery calls the failure webhook; nothing else does."""
    if result.status != "failed" or not result.final:
        return Plan()
    if account is None:
        return Plan(skipped=[f"unknown account {result.account!r}"])
    hook = _webhook("failure-webhook", result.event_id, account, lambda: webhooks.refusal_payload(result),
                    result.message_id)
    return Plan([hook] if hook else [], [] if hook else ["no failure webhook"])


def plan_bounce(bounce: ClassifiedBounce, account: Account | None) -> Plan:
    """Bounce webhook for every bounce, failure webhook for DSN failures, forward per NOTIFY."""
    if account is None:
        why = f"unknown account {bounce.account!r}" if bounce.account else "bounce not linked to an account"
        return Plan(skipped=[why])
    plan = Plan()
    mime = functools.cache(lambda: webhooks.decode_mime(bounce.mime_b64))  # at most once, for both webhooks
    steps = [_webhook("bounce-webhook", bounce.event_id, account, lambda: webhooks.bounce_payload(bounce, mime()),
                      bounce.message_id)]
    if bounce.classification.category == "dsn-failure":
        steps.append(_webhook("failure-webhook", bounce.event_id, account,
                              lambda: webhooks.dsn_failure_payload(bounce, mime()), bounce.message_id))
    plan.notifications.extend(n for n in steps if n is not None)
    decision = decide_forward(bounce, account)
    if decision.forward:
        plan.notifications.append(Notification(
            webhooks.webhook_event_id(bounce.event_id, "forward"), "forward", account.name,
            decision.target, bounce.message_id, forwarded_mime(bounce), None, ""))
    else:
        plan.skipped.append(f"not forwarded: {decision.why}")
    return plan


@dataclass(frozen=True)
class RetryPolicy:
    """Waits before attempt 2, 3, … (seconds); one try per entry plus the first."""

    schedule: Sequence[float]
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number `attempt` failed."""
        base = self.schedule[attempt - 1]
        if not self.jitter:
            return base
        return base * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)


def after_failure(
    notification: Notification, error: str, permanent: bool, now: datetime, policy: RetryPolicy,
    rng: random.Random | None = None,
) -> PendingNotification | DeadLetter:
    """The next attempt, or the dead letter when out of tries or when retrying cannot help."""
    first = notification.first_attempt_at or now
    attempt = notification.attempt
    if permanent or attempt >= policy.max_attempts:
        pending = notification.pending(max(attempt, 2), now, first, error)
        why = error if permanent else f"gave up after {attempt} attempts: {error}"
        return DeadLetter(notification=pending, failed_at=now, reason=why)
    not_before = now + timedelta(seconds=policy.delay(attempt, rng))
    return notification.pending(attempt + 1, not_before, first, error)

"""When to try again, as data, and what an attempt's outcome means for the message.

The schedule is a list of seconds (`sender_retry_schedule`): the wait before
attempt 2, 3, …; its last value repeats. A deferred message becomes a
`PendingDelivery` on `outgoing-retry`, so the retry lives in Kafka and
survives a restart of the sender. A deferral whose next attempt would fall
after `first attempt + sender_max_age` is final instead: failed, `expired`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bounceflow.models import OutgoingMessage, PendingDelivery

from bounceflow_sender.outcomes import Outcome


@dataclass(frozen=True)
class RetryPolicy:
    schedule: Sequence[float]
    max_age: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait after attempt number `attempt` failed temporarily."""
        return self.schedule[min(attempt, len(self.schedule)) - 1]


@dataclass(frozen=True)
class Job:
    """One attempt to make: the message, which attempt it is, since when we try."""

    message: OutgoingMessage
    attempt: int
    first_attempt_at: datetime


@dataclass(frozen=True)
class Decision:
    """What to publish after an attempt: the (possibly rewritten) outcome and any retry record."""

    outcome: Outcome
    final: bool
    retry: PendingDelivery | None = None


def decide(job: Job, outcome: Outcome, now: datetime, policy: RetryPolicy) -> Decision:
    """Delivered and failed are final; deferred schedules the next attempt or expires."""
    if outcome.status != "deferred":
        return Decision(outcome, final=True)
    not_before = now + timedelta(seconds=policy.delay(job.attempt))
    if not_before > job.first_attempt_at + timedelta(seconds=policy.max_age):
        age = (now - job.first_attempt_at).total_seconds()
        text = f"gave up after {job.attempt} attempts in {age:.0f}s; last error: {outcome.reply_text}"
        return Decision(replace(outcome, status="failed", reason="expired", reply_text=text), final=True)
    retry = PendingDelivery(
        message=job.message,
        attempt=job.attempt + 1,
        not_before=not_before,
        first_attempt_at=job.first_attempt_at,
        last_error=_last_error(outcome),
    )
    return Decision(outcome, final=False, retry=retry)


def _last_error(outcome: Outcome) -> str:
    code = f"{outcome.smtp_code} " if outcome.smtp_code else ""
    return f"{code}{outcome.reply_text or outcome.reason}"

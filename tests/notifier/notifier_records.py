"""Builders for the records the notifier consumes, from the shared models."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from bounceflow.models import Classification, ClassifiedBounce, DeliveryResult

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)
MIME = base64.b64encode(b"From: MAILER-DAEMON@mx.example.net\r\nSubject: failure\r\n\r\nbody\r\n").decode()


def delivery(message_id: str, status: str = "delivered", *, account: str = "acme", attempt: int = 1,
             recipient: str | None = None, smtp_code: int | None = 250, enhanced: str | None = "2.0.0",
             reason: str | None = None, text: str = "250 2.0.0 OK", minutes: int = 0) -> DeliveryResult:
    """A delivery-result record."""
    moment = T0 + timedelta(minutes=minutes)
    return DeliveryResult(
        event_id=f"{message_id}:{attempt}", message_id=message_id, account=account,
        recipient=recipient or f"{message_id}@example.com", envelope_from="news@acme.test",
        mail_from=f"b.{message_id}.sig@bounces.localhost", status=status, final=status != "deferred",
        attempt=attempt, smtp_code=smtp_code, enhanced_status=enhanced, reply_text=text, reason=reason,
        remote_host="mx.example.com", remote_ip="192.0.2.10", started_at=moment - timedelta(seconds=2),
        finished_at=moment,
    )


def refused(message_id: str, **kw) -> DeliveryResult:
    """Refused at SMTP time: 550 5.1.1."""
    return delivery(message_id, "failed", smtp_code=550, enhanced="5.1.1",
                    text="550 5.1.1 <x@example.com>: Recipient address rejected: User unknown", **kw)


def expired(message_id: str, **kw) -> DeliveryResult:
    """Given up after the retry period."""
    return delivery(message_id, "failed", attempt=7, smtp_code=451, enhanced="4.4.1", reason="expired",
                    text="451 4.4.1 temporary failure; retry period exhausted", **kw)


def deferred(message_id: str, **kw) -> DeliveryResult:
    return delivery(message_id, "deferred", smtp_code=421, enhanced="4.7.0", text="421 4.7.0 try later", **kw)


_CLASSIFICATIONS = {
    "dsn-failure": dict(category="dsn-failure", is_bounce=True, bounce_type="hard", reason="userunknown",
                        status="5.1.1", smtp_code=550, diagnostic="smtp; 550 5.1.1 user unknown",
                        remote_mta="dns; mx.example.com", action="failed"),
    "dsn-delay": dict(category="dsn-delay", is_bounce=True, bounce_type="soft", reason="expired",
                      status="4.4.7", action="delayed"),
    "autoreply": dict(category="autoreply", is_bounce=False, reason="vacation"),
    "nonstandard-bounce": dict(category="nonstandard-bounce", is_bounce=True, bounce_type="soft",
                               reason="mailboxfull", diagnostic="mailbox is full"),
    "complaint": dict(category="complaint", is_bounce=False, reason="feedback", feedback_type="abuse"),
    "unknown": dict(category="unknown", is_bounce=False, error="no report found"),
}


def bounce(event_id: str, category: str, message_id: str | None = None, *, account: str | None = "acme",
           recipient: str | None = None, minutes: int = 0, **overrides) -> ClassifiedBounce:
    """A classified-bounce record; `message_id=None` makes it unmatched."""
    moment = T0 + timedelta(minutes=minutes)
    matched = message_id is not None
    return ClassifiedBounce(
        event_id=event_id, message_id=message_id, matched=matched,
        account=account if matched else None,
        recipient=(recipient or f"{message_id}@example.com") if matched else None,
        envelope_from="news@acme.test" if matched else None, track_bounces=True if matched else None,
        mail_from="MAILER-DAEMON@mx.example.com" if category != "autoreply" else "someone@example.com",
        rcpt_to=f"b.{message_id or 'x'}.sig@bounces.localhost", received_at=moment,
        classified_at=moment + timedelta(seconds=1), mime_b64=MIME,
        classification=Classification(**{**_CLASSIFICATIONS[category], **overrides}),
    )

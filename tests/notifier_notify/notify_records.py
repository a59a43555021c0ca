"""Records and accounts for the notification tests, built with the real models.

The bounces are real RFC 3464 / 3834 / prose mails from the devkit's
builders, wrapped in `ClassifiedBounce` the way the classifier publishes
them, with the customer's envelope and DSN request from the seed examples.
"""
from __future__ import annotations

import base64
import itertools
import secrets
from datetime import datetime, timezone

from bounceflow.accounts import Account, Webhook, new_webhook_secret
from bounceflow.models import ClassifiedBounce, Classification, DeliveryResult, DsnRequest
from bounceflow_devkit import bounce_mail

_seq = itertools.count(1)
ORIGINAL = (
    b"Return-Path: <b.m1.sig@bounces.localhost>\r\n"
    b"X-Bounceflow-Id: m1\r\n"
    b"From: Shop <news@yourdomain.com>\r\n"
    b"To: info@example.com\r\n"
    b"Subject: Our offer\r\n"
    b"Message-ID: <offer-1@yourdomain.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"SECRET BODY LINE that RET=HDRS must not return\r\n"
)

# The four REST bodies of smtpeter-bounce-protocol-nl.md, as the ingress records them.
SEED_EXAMPLES = {
    "dsn-object": dict(envelope_from="bounce@yourdomain.com",
                       dsn=DsnRequest(notify=["FAILURE"], ret="HDRS", envid="unique-identifier",
                                      orcpt="rfc822;info@example.com")),
    "notify-never": dict(envelope_from="bounce@yourdomain.com", dsn=DsnRequest(notify=["NEVER"])),
    "no-envelope": dict(envelope_from="", dsn=DsnRequest()),
    "notify-failure": dict(envelope_from="bounce@yourdomain.com", dsn=DsnRequest(notify=["FAILURE"])),
}

# The remote MTA returns the full message even when RET=HDRS was asked (many do),
# quotes our ENVID (the message id) and gives no Original-Recipient.
CATEGORY_MAIL = {
    "dsn-failure": lambda mid: bounce_mail.dsn_failure(ORIGINAL, "info@example.com", envid=mid, ret="FULL"),
    "dsn-delay": lambda mid: bounce_mail.dsn_delay(ORIGINAL, "info@example.com", envid=mid, ret="FULL"),
    "dsn-success": lambda mid: bounce_mail.dsn_success(ORIGINAL, "info@example.com", envid=mid, ret="FULL"),
    "autoreply": lambda mid: bounce_mail.autoreply(ORIGINAL, "info@example.com"),
    "nonstandard-bounce": lambda mid: bounce_mail.nonstandard_bounce(ORIGINAL, "info@example.com"),
    "complaint": lambda mid: bounce_mail.arf_complaint(ORIGINAL, "info@example.com"),
}
CLASSIFICATION = {
    "dsn-failure": dict(is_bounce=True, bounce_type="hard", reason="userunknown", status="5.1.1", smtp_code=550,
                        diagnostic="550 5.1.1 Recipient address rejected: User unknown", remote_mta="mx.sim.test",
                        action="failed"),
    "dsn-delay": dict(is_bounce=True, bounce_type="soft", reason="networkerror", status="4.4.1", smtp_code=451,
                      diagnostic="451 4.4.1 Connection timed out", action="delayed"),
    "dsn-success": dict(is_bounce=False, reason="delivered", status="2.0.0", action="delivered"),
    "autoreply": dict(is_bounce=False, reason="vacation"),
    "nonstandard-bounce": dict(is_bounce=True, bounce_type="hard", reason="userunknown", smtp_code=550,
                               diagnostic="550 5.1.1 Unknown user"),
    "complaint": dict(is_bounce=False, reason="feedback", feedback_type="abuse"),
}


def account(name: str = "acme", *, bounce_url: str | None = None, failure_url: str | None = None,
            fmt: str = "json", forward_address: str | None = None) -> Account:
    """An account with the given webhooks (fresh secrets)."""
    hook = lambda url: Webhook(url=url, format=fmt, secret=new_webhook_secret()) if url else None  # noqa: E731
    return Account(name=name, bounce_webhook=hook(bounce_url), failure_webhook=hook(failure_url),
                   forward_address=forward_address)


def classified(category: str = "dsn-failure", *, account_name: str | None = "acme", envelope_from: str | None = "bounce@yourdomain.com",
               dsn: DsnRequest | None = None, message_id: str | None = None, matched: bool = True) -> ClassifiedBounce:
    """A classified bounce of `category` for message `message_id` (fresh ids by default)."""
    message_id = message_id or f"m{secrets.token_hex(6)}"
    dsn = dsn or DsnRequest()
    mime = CATEGORY_MAIL[category](message_id)
    now = datetime.now(timezone.utc)
    return ClassifiedBounce(
        event_id=f"rb-{secrets.token_hex(6)}-{next(_seq)}", message_id=message_id, matched=matched,
        account=account_name, recipient="info@example.com", envelope_from=envelope_from, track_bounces=True,
        dsn=dsn, mail_from="MAILER-DAEMON@mx.sim.test" if category.startswith("dsn") else "info@example.com",
        rcpt_to=f"b.{message_id}.abcd@bounces.localhost", received_at=now, classified_at=now,
        mime_b64=base64.b64encode(mime).decode(),
        classification=Classification(category=category, recipient="info@example.com", **CLASSIFICATION[category]),
    )


def refusal(account_name: str = "acme", *, status: str = "failed", final: bool = True) -> DeliveryResult:
    """A delivery attempt refused at SMTP time (550 5.1.1)."""
    message_id = f"m{secrets.token_hex(6)}"
    now = datetime.now(timezone.utc)
    return DeliveryResult(
        event_id=f"{message_id}:1", message_id=message_id, account=account_name, recipient="nobody@example.com",
        envelope_from="bounce@yourdomain.com", mail_from=f"b.{message_id}.abcd@bounces.localhost",
        status=status, final=final, attempt=1, smtp_code=550, enhanced_status="5.1.1",
        reply_text="550 5.1.1 <nobody@example.com>: Recipient address rejected", reason="userunknown",
        remote_host="mx.example.com", remote_ip="192.0.2.25", started_at=now, finished_at=now,
    )

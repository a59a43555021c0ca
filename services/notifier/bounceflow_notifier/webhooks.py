"""Feedback-loop webhooks: what is sent, how it is encoded and signed, and the POST.

Payloads follow the seed (`smtpeter-feedback-loops.txt`): `id` (our message
id), `recipient` (the original recipient), `mailfrom` / `rcptto` (of the
incoming bounce, or of our delivery attempt for an SMTP refusal), `mime`
(the bounce as received), plus the classification. The body is JSON, or
form-encoded for SMTPeter-style receivers. Bodies are built once and stored
as they are on `notification-retry`; the signature (Standard Webhooks:
`webhook-id`, `webhook-timestamp`, `webhook-signature`) is made at each
attempt with the account's current secret, which never leaves the notifier.
Everything here but `post` is pure.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook as SigningKey

from bounceflow.models import ClassifiedBounce, DeliveryResult

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"


def webhook_event_id(event_id: str, kind: str) -> str:
    """The stable id of one notification: `webhook-id` header and retry key."""
    return f"{event_id}:{kind}"


def decode_mime(mime_b64: str) -> str:
    """The received bounce as text (undecodable bytes become U+FFFD)."""
    return base64.b64decode(mime_b64).decode("utf-8", errors="replace")


def bounce_payload(bounce: ClassifiedBounce) -> dict[str, Any]:
    """The bounce feedback loop's fields for one incoming bounce (any category)."""
    c = bounce.classification
    return {
        "event": "bounce",
        "event_id": bounce.event_id,
        "id": bounce.message_id,
        "recipient": bounce.recipient,
        "mailfrom": bounce.mail_from,
        "rcptto": bounce.rcpt_to,
        "account": bounce.account,
        "matched": bounce.matched,
        "category": c.category,
        "bounce_type": c.bounce_type,
        "reason": c.reason,
        "status": c.status,
        "smtp_code": c.smtp_code,
        "diagnostic": c.diagnostic,
        "remote_mta": c.remote_mta,
        "feedback_type": c.feedback_type,
        "received_at": bounce.received_at.isoformat(),
        "mime": decode_mime(bounce.mime_b64),
    }


def dsn_failure_payload(bounce: ClassifiedBounce) -> dict[str, Any]:
    """The failure feedback loop's fields for a recognised DSN failure (`source` = dsn)."""
    c = bounce.classification
    return {
        "event": "failure",
        "event_id": bounce.event_id,
        "source": "dsn",
        "id": bounce.message_id,
        "recipient": bounce.recipient,
        "mailfrom": bounce.mail_from,
        "rcptto": bounce.rcpt_to,
        "account": bounce.account,
        "status": c.status,
        "smtp_code": c.smtp_code,
        "diagnostic": c.diagnostic,
        "reason": c.reason,
        "bounce_type": c.bounce_type,
        "remote_mta": c.remote_mta,
        "occurred_at": bounce.received_at.isoformat(),
        "mime": decode_mime(bounce.mime_b64),
    }


def refusal_payload(result: DeliveryResult) -> dict[str, Any]:
    """The failure feedback loop's fields for a final SMTP-time failure (`source` = smtp)."""
    return {
        "event": "failure",
        "event_id": result.event_id,
        "source": "smtp",
        "id": result.message_id,
        "recipient": result.recipient,
        "mailfrom": result.mail_from,
        "rcptto": result.recipient,
        "account": result.account,
        "status": result.enhanced_status,
        "smtp_code": result.smtp_code,
        "diagnostic": result.reply_text,
        "reason": result.reason,
        "bounce_type": "hard" if result.smtp_code and 500 <= result.smtp_code < 600 else "soft",
        "remote_mta": result.remote_host,
        "attempt": result.attempt,
        "occurred_at": result.finished_at.isoformat(),
    }


def _form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_body(payload: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """(body, content type): JSON (nulls kept) or form-encoded (null -> empty)."""
    if fmt == "form":
        pairs = [(key, _form_value(value)) for key, value in payload.items()]
        return urllib.parse.urlencode(pairs).encode(), FORM_TYPE
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), JSON_TYPE


def signed_headers(secret: str, webhook_id: str, timestamp: datetime, body: bytes, content_type: str) -> dict[str, str]:
    """Standard Webhooks headers for one attempt, signed with the reference library."""
    signature = SigningKey(secret).sign(webhook_id, timestamp, body.decode())
    return {
        "content-type": content_type,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "user-agent": "bounceflow-notifier/1",
    }


@dataclass(frozen=True)
class PostResult:
    """What one POST came to; `ok` is a 2xx answer."""

    ok: bool
    status_code: int | None
    error: str | None


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    """POST once; any non-2xx answer or transport error is a failed attempt (retried)."""
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return PostResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code, None)
    return PostResult(False, response.status_code, f"HTTP {response.status_code}")

"""Feedback-loop webhooks: what is sent, how it is encoded and signed, and the POST.

Payloads follow the seed (`smtpeter-feedback-loops.txt`): `id` (our message
id), `recipient` (the original recipient), `mailfrom` / `rcptto` (of the
incoming bounce, or of our delivery attempt for an SMTP refusal), `mime`
(the bounce as received), plus the classification. The body is JSON, or
form-encoded for SMTPeter-style receivers. Bodies are built once and stored
as they are on `notification-retry`; the signature (Standard Webhooks:
`webhook-id`, `webhook-timestamp`, `webhook-signature`) is made at each
attempt with the account's current secret, which never leaves the notifier.
Everything here but `http_session` and `post` is pure.

The POST goes through aiohttp rather than httpx: httpx/httpcore spent about
1 ms of CPU per call (its pool re-checks every idle connection on each
request), aiohttp about 0.1 ms; at 1.5 webhooks per bounce that was most of
the notifier's CPU. aiohttp is already in the stack (faust uses it).
"""

from __future__ import annotations

import base64
import functools
import hmac
import math
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import httpx
import pydantic_core
import yarl

from bounceflow.models import ClassifiedBounce, DeliveryResult

SECRET_PREFIX = "whsec_"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"


def webhook_event_id(event_id: str, kind: str) -> str:
    """The stable id of one notification: `webhook-id` header and retry key."""
    return f"{event_id}:{kind}"


def decode_mime(mime_b64: str) -> str:
    """The received bounce as text (undecodable bytes become U+FFFD)."""
    return base64.b64decode(mime_b64).decode("utf-8", errors="replace")


def bounce_payload(bounce: ClassifiedBounce, mime: str | None = None) -> dict[str, Any]:
    """The bounce feedback loop's fields for one incoming bounce (any category).

    `mime`: the bounce already decoded (`decode_mime`), when the caller has it.
    """
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
        "mime": decode_mime(bounce.mime_b64) if mime is None else mime,
    }


def dsn_failure_payload(bounce: ClassifiedBounce, mime: str | None = None) -> dict[str, Any]:
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
        "mime": decode_mime(bounce.mime_b64) if mime is None else mime,
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
    """(body, content type): JSON (nulls kept) or form-encoded (null -> empty).

    JSON is compact UTF-8, the bytes `json.dumps(ensure_ascii=False,
    separators=(",", ":"))` makes, written by pydantic-core (a third of the
    CPU on a body that carries the MIME).
    """
    if fmt == "form":
        pairs = [(key, _form_value(value)) for key, value in payload.items()]
        return urllib.parse.urlencode(pairs).encode(), FORM_TYPE
    return pydantic_core.to_json(payload), JSON_TYPE


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret, decoded as the reference library does (once per secret)."""
    key = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(key + "==")


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, what `standardwebhooks.Webhook.sign` gives.

    Without the library's per-call key decoding and str round trip of the body;
    tests check every case against the reference library.
    """
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.digest(_signing_key(secret), signed, "sha256")).decode()


def signed_headers(secret: str, webhook_id: str, timestamp: datetime, body: bytes, content_type: str) -> dict[str, str]:
    """Standard Webhooks headers for one attempt."""
    seconds = math.floor(timestamp.timestamp())
    return {
        "content-type": content_type,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signature(secret, webhook_id, seconds, body),
        "user-agent": "bounceflow-notifier/1",
    }


@dataclass(frozen=True)
class PostResult:
    """What one POST came to; `ok` is a 2xx answer."""

    ok: bool
    status_code: int | None
    error: str | None


def http_session() -> aiohttp.ClientSession:
    """The one HTTP client of the process: a keep-alive pool, no cookies, httpx's trust store.

    No limit on connections here (the per-host `HostGate` bounds them); no
    cookie jar, so one customer's endpoint cannot set cookies that go to the
    next call; the TLS context is the one httpx builds (certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR). Proxies come from the environment
    (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), as with httpx, but only when one is
    set: aiohttp's `trust_env` re-reads the environment and ~/.netrc (on a
    thread) at every request, which cost more than the POST itself.
    Call it with the event loop running.
    """
    connector = aiohttp.TCPConnector(limit=0, ssl=httpx.create_ssl_context())
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                 trust_env=bool(urllib.request.getproxies()))


# Parsed once per webhook URL and per timeout, not at every POST.
_parsed_url = functools.lru_cache(maxsize=1024)(yarl.URL)
_client_timeout = functools.lru_cache(maxsize=16)(lambda total: aiohttp.ClientTimeout(total=total))


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
               timeout: float) -> PostResult:
    """POST once (redirects not followed); any non-2xx answer or transport error is a failed attempt (retried)."""
    try:
        async with session.post(_parsed_url(url), data=body, headers=headers, allow_redirects=False,
                                timeout=_client_timeout(timeout)) as response:
            await response.read()  # the whole answer, so the connection goes back to the pool
            status = response.status
    except TimeoutError:
        return PostResult(False, None, f"timed out after {timeout:g} s")
    except (aiohttp.ClientError, ValueError) as exc:
        return PostResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return PostResult(True, status, None)
    return PostResult(False, status, f"HTTP {status}")

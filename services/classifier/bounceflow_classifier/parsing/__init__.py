"""Pure bounce parsing: raw bytes of a returned mail in, a Classification out.

`parse_bounce` reads as its steps: decode the MIME once (bounded), sort the
parts, then try the report forms from most to least structured — ARF
complaint, RFC 3464 delivery status, provider JSON notice, MTA prose,
auto-reply — and fall back to `unknown`. It never raises.
"""

from __future__ import annotations

import re
from email.message import Message

from bounceflow.models import Classification

from . import arf, autoreply, lhosts, mime, nonstandard, providers
from .report import Collected, build, collect, from_dsn, from_text, linked_ids

__all__ = ["parse_bounce"]


def parse_bounce(raw: bytes) -> Classification:
    """Classify one returned mail. Never raises: failures give `unknown` with `error`."""
    try:
        return _parse(raw)
    except Exception as exc:  # hostile input must never take the caller down
        return Classification(category="unknown", is_bounce=False, error=f"{type(exc).__name__}: {exc}"[:300])


_MAX_FORWARD_DEPTH = 3


def _parse(raw: bytes) -> Classification:
    msg = mime.load(raw)
    parts = collect(msg)
    ids = linked_ids(raw, parts)
    result = _classify(msg, parts, 0)
    return result.model_copy(update={k: v for k, v in ids.items() if not getattr(result, k)})


def _classify(msg: Message, parts: Collected, depth: int) -> Classification:
    """Try each report form in turn; descend into a forwarded bounce if needed."""
    for step in (_complaint, _delivery_status):
        result = step(msg, parts)
        if result is not None:
            return result
    inner = parts.returned
    quoted = _quoted_report(parts) if inner is not None and not inner.is_multipart() else None
    if quoted is not None and depth < _MAX_FORWARD_DEPTH:
        result = _classify(quoted, collect(quoted), depth + 1)
        if result.category in ("dsn-failure", "dsn-delay"):  # what arrived is prose quoting a report
            result = result.model_copy(update={"category": "nonstandard-bounce"})
        return result
    if inner is not None and depth < _MAX_FORWARD_DEPTH and _is_report(inner):
        return _classify(inner, collect(inner), depth + 1)
    for step in (_provider_notice, _mta_format, _mta_text, _autoreply):
        result = step(msg, parts)
        if result is not None:
            return result
    return Classification(category="unknown", is_bounce=False)


def _is_report(msg: Message) -> bool:
    """A returned message that is itself a bounce or complaint (forwarded report)."""
    return mime.content_type(msg) == "multipart/report" and msg.is_multipart()


_HEADER_LINE = re.compile(r"^[A-Za-z][\w-]*:[ \t]", re.M)


def _quoted_report(parts: Collected) -> Message | None:
    """A whole report pasted as text below a forwarding note (an ISP forwarding the DSN
    it received, an mbox `From ` line and all): parse the pasted message in full."""
    text = parts.returned_text
    if not text or "multipart/report" not in text[:20_000].lower():
        return None
    m = _HEADER_LINE.search(text)
    if m is None:
        return None
    msg = mime.load(text[m.start():].encode("utf-8", "surrogateescape"))
    return msg if _is_report(msg) else None


def _complaint(msg: Message, parts: Collected) -> Classification | None:
    if not parts.feedback:
        return _informal_complaint(msg, parts)
    fields = arf.parse_report(parts.feedback)
    returned_to = [a.lower() for a in nonstandard.ADDRESS.findall(mime.get_header(parts.returned, "To"))] if parts.returned else []
    rcpts = arf.recipients(fields, returned_to)
    return build("complaint", [{"recipient": r, "reason": "feedback"} for r in rcpts] or [{"reason": "feedback"}],
                 feedback_type=arf.feedback_type(fields))


def _informal_complaint(msg: Message, parts: Collected) -> Classification | None:
    """Complaints without an ARF part: Hotmail JMRP reports, mailto unsubscribe requests."""
    subject = mime.get_header(msg, "Subject")
    rcpt = arf.hotmail_complaint(subject, parts.returned)
    if rcpt is not None:
        return build("complaint", [{"recipient": rcpt or None, "reason": "feedback"}], feedback_type="abuse")
    if arf.is_unsubscribe_request(subject):
        return build("complaint", [{"recipient": parts.sender_address or None, "reason": "feedback"}],
                     feedback_type="unsubscribe")
    return None


def _delivery_status(msg: Message, parts: Collected) -> Classification | None:
    return from_dsn(parts)


def _provider_notice(msg: Message, parts: Collected) -> Classification | None:
    notice = None
    for text in parts.texts[:2]:
        if "notificationType" in text or "eventType" in text:
            notice = providers.parse_json_notice(text)
            if notice:
                break
    if notice is None:
        return None
    if notice.kind == "complaint":
        return build("complaint", [dict(r, reason="feedback") for r in notice.recipients] or [{"reason": "feedback"}],
                     feedback_type=notice.feedback_type)
    category = "dsn-success" if notice.kind == "delivery" else "nonstandard-bounce"
    records = [dict(r, remote_mta=notice.reporting_mta) for r in notice.recipients]
    return build(category, records, diagnose=True)


def _mta_format(msg: Message, parts: Collected) -> Classification | None:
    records = lhosts.recognise(mime.get_header(msg, "Subject"), parts.explanation)
    return build("nonstandard-bounce", records, diagnose=True) if records else None


def _mta_text(msg: Message, parts: Collected) -> Classification | None:
    sender = mime.get_header(msg, "From")
    subject = mime.get_header(msg, "Subject")
    if parts.auto_reply and not nonstandard.looks_like_bounce(sender, subject, ""):
        return None
    if not nonstandard.looks_like_bounce(sender, subject, parts.explanation):
        return None
    return from_text(parts)


def _autoreply(msg: Message, parts: Collected) -> Classification | None:
    if not parts.auto_reply:
        return None
    text = parts.explanation
    if autoreply.says_gone(text):
        rcpt = parts.sender_address or None
        return build("nonstandard-bounce", [{"recipient": rcpt, "action": "failed", "reason": "suspend",
                                            "diagnostic": nonstandard.squeeze(text, 300)}])
    rcpt = parts.sender_address or None
    return build("autoreply", [{"recipient": rcpt, "reason": "vacation", "diagnostic": nonstandard.squeeze(text, 300)}])

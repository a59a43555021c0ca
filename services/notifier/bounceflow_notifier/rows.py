"""Which log rows a Kafka record becomes: pure functions, no I/O.

The rules, per the seeds (`smtpeter-feedback-loops.txt`):
- delivery-result: every attempt -> `delivery_log`; a failed one (refused at
  SMTP time with a 5xx, or given up: `expired`) -> also `failure_log`.
- classified-bounce: every incoming bounce -> `bounce_log` (DSNs,
  auto-replies, unrecognised bounces, complaints, unmatched); a recognised
  DSN failure (category `dsn-failure`) -> also `failure_log`.
- a record that cannot be parsed -> `rejected_records`, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from bounceflow.models import ClassifiedBounce, DeliveryResult

FAILURE_COLUMNS = (
    "event_id", "event_time", "account", "message_id", "recipient", "recipient_domain",
    "source", "category", "bounce_type", "reason", "status", "smtp_code", "diagnostic",
    "remote_mta", "remote_ip", "mail_from", "envelope_from", "attempt",
)
BOUNCE_COLUMNS = (
    "event_id", "event_time", "account", "message_id", "matched", "recipient",
    "recipient_domain", "category", "is_bounce", "bounce_type", "reason", "status",
    "smtp_code", "diagnostic", "remote_mta", "action", "feedback_type", "mail_from",
    "rcpt_to", "envelope_from", "original_envelope_id", "parse_error", "mime_bytes",
    "classified_at",
)
DELIVERY_COLUMNS = (
    "event_id", "event_time", "started_at", "account", "message_id", "recipient",
    "recipient_domain", "outcome", "final", "attempt", "bounce_type", "reason", "status",
    "smtp_code", "diagnostic", "remote_mta", "remote_ip", "mail_from", "envelope_from",
)
REJECTED_COLUMNS = ("topic", "partition", "offset", "record_key", "value", "error", "received_at")

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "failure_log": FAILURE_COLUMNS,
    "bounce_log": BOUNCE_COLUMNS,
    "delivery_log": DELIVERY_COLUMNS,
    "rejected_records": REJECTED_COLUMNS,
}

# Where a failure carries no code at all, these reasons are permanent by nature.
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})

# Enhanced status code -> reason, for refusals the sender did not label.
_STATUS_REASONS = {
    "1.1": "userunknown", "1.2": "hostunknown", "1.3": "userunknown", "1.6": "hasmoved",
    "1.10": "notaccept", "2.1": "suspend", "2.2": "mailboxfull", "2.3": "mesgtoobig",
    "3.4": "mesgtoobig", "4.4": "networkerror", "4.7": "expired", "7.1": "rejected",
    "7.26": "securityerror", "7.27": "securityerror", "7.7": "securityerror",
}


@dataclass(frozen=True)
class Row:
    """One row for one table, as a column -> value mapping."""

    table: str
    values: dict[str, Any]

    def as_sequence(self) -> list[Any]:
        """Values in the table's column order (what the insert wants)."""
        return [self.values[c] for c in TABLE_COLUMNS[self.table]]


def recipient_domain(address: str | None) -> str:
    """Lower-cased domain of an address; '' when there is none."""
    if not address or "@" not in address:
        return ""
    return address.rpartition("@")[2].strip().strip(">").lower()


def reason_for(reason: str | None, status: str | None, smtp_code: int | None) -> str:
    """The given reason, else one derived from the enhanced status, else `undefined`."""
    if reason:
        return reason
    if status and status.count(".") == 2:
        derived = _STATUS_REASONS.get(status.split(".", 1)[1])
        if derived:
            return derived
    return "undefined" if (smtp_code or status) else ""


def bounce_type_for(reason: str, smtp_code: int | None, status: str | None) -> str:
    """`hard`/`soft` for a failure, by the project's rule (docs/classify.md).

    The status class decides (5.x.x hard, 4.x.x soft), else the SMTP reply
    class; only without any code does the reason decide (the permanent ones
    hard, everything else soft, as the remote may still take the mail).
    """
    if status and status[:2] in ("5.", "4."):
        return "hard" if status.startswith("5.") else "soft"
    if smtp_code is not None and 400 <= smtp_code < 600:
        return "hard" if smtp_code >= 500 else "soft"
    return "hard" if reason in HARD_REASONS else "soft"


def utc(moment: datetime) -> datetime:
    """Aware UTC datetime (naive input is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def delivery_rows(result: DeliveryResult) -> list[Row]:
    """delivery_log always; failure_log when the message failed for good."""
    failed = result.status == "failed"
    reason = reason_for(result.reason, result.enhanced_status, result.smtp_code) if failed or result.reason else ""
    bounce_type = bounce_type_for(reason, result.smtp_code, result.enhanced_status) if failed else ""
    common = {
        "event_id": result.event_id,
        "event_time": utc(result.finished_at),
        "account": result.account,
        "message_id": result.message_id,
        "recipient": result.recipient,
        "recipient_domain": recipient_domain(result.recipient),
        "bounce_type": bounce_type,
        "reason": reason,
        "status": result.enhanced_status or "",
        "smtp_code": result.smtp_code,
        "diagnostic": result.reply_text or "",
        "remote_mta": result.remote_host or "",
        "remote_ip": result.remote_ip or "",
        "mail_from": result.mail_from,
        "envelope_from": result.envelope_from,
        "attempt": result.attempt,
    }
    rows = [Row("delivery_log", {
        **{k: v for k, v in common.items() if k in DELIVERY_COLUMNS},
        "started_at": utc(result.started_at),
        "outcome": result.status,
        "final": result.final,
    })]
    if failed:
        rows.append(Row("failure_log", {**common, "source": "delivery", "category": "smtp-failure"}))
    return rows


def bounce_rows(bounce: ClassifiedBounce) -> list[Row]:
    """bounce_log always; failure_log for a recognised DSN failure."""
    c = bounce.classification
    recipient = bounce.recipient or c.recipient or ""
    is_failure = c.category == "dsn-failure"
    reason = reason_for(c.reason, c.status, c.smtp_code) if is_failure else (c.reason or "")
    bounce_type = c.bounce_type or (bounce_type_for(reason, c.smtp_code, c.status) if is_failure else "")
    common = {
        "event_id": bounce.event_id,
        "event_time": utc(bounce.received_at),
        "account": bounce.account or "",
        "message_id": bounce.message_id or "",
        "recipient": recipient,
        "recipient_domain": recipient_domain(recipient),
        "category": c.category,
        "bounce_type": bounce_type,
        "reason": reason,
        "status": c.status or "",
        "smtp_code": c.smtp_code,
        "diagnostic": c.diagnostic or "",
        "remote_mta": c.remote_mta or "",
    }
    rows = [Row("bounce_log", {
        **common,
        "matched": bounce.matched,
        "is_bounce": c.is_bounce,
        "action": c.action or "",
        "feedback_type": c.feedback_type or "",
        "mail_from": bounce.mail_from,
        "rcpt_to": bounce.rcpt_to,
        "envelope_from": bounce.envelope_from or "",
        "original_envelope_id": c.original_envelope_id or "",
        "parse_error": c.error or "",
        "mime_bytes": _decoded_length(bounce.mime_b64),
        "classified_at": utc(bounce.classified_at),
    })]
    if is_failure:
        rows.append(Row("failure_log", {
            **common,
            "source": "dsn",
            "remote_ip": "",
            "mail_from": bounce.mail_from,
            "envelope_from": bounce.envelope_from or "",
            "attempt": 0,
        }))
    return rows


def rejected_row(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
    error: str, timestamp_ms: int,
) -> Row:
    """The row that keeps an unparseable record."""
    return Row("rejected_records", {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "record_key": (key or b"").decode("utf-8", "replace"),
        "value": value or b"",
        "error": error[:2000],
        "received_at": datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc),
    })


def record_rows(
    kind: str, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
    timestamp_ms: int,
) -> list[Row]:
    """Rows for one Kafka record of `kind` (`delivery-result` or `classified-bounce`)."""
    try:
        if value is None:
            raise ValueError("record has no value")
        if kind == "delivery-result":
            return delivery_rows(DeliveryResult.from_bytes(value))
        if kind == "classified-bounce":
            return bounce_rows(ClassifiedBounce.from_bytes(value))
        raise ValueError(f"no log mapping for topic kind {kind!r}")
    except (ValidationError, ValueError) as exc:
        return [rejected_row(topic, partition, offset, key, value, f"{type(exc).__name__}: {exc}", timestamp_ms)]


def _decoded_length(b64: str) -> int:
    """Size of the MIME without decoding it (bounces can be megabytes)."""
    text = b64.strip()
    return max(0, len(text) * 3 // 4 - (len(text) - len(text.rstrip("="))))

"""RFC 3464 delivery-status fields: per-message and per-recipient blocks.

The same field syntax also turns up outside message/delivery-status parts
(text/plain reports, base64-encoded parts, fields pasted into a bounce body),
so this parses plain text and is fed whatever text looks like a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_KNOWN = frozenset(
    (
        "reporting-mta", "received-from-mta", "arrival-date", "original-envelope-id",
        "x-postfix-queue-id", "x-postfix-sender", "dsn-gateway", "x-original-message-id",
        "final-recipient", "original-recipient", "action", "status", "remote-mta",
        "diagnostic-code", "last-attempt-date", "will-retry-until", "x-actual-recipient",
        "final-log-id", "x-supplementary-info", "x-display-name",
    )
)
STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass
class DsnRecipient:
    """One per-recipient block of a delivery-status report."""

    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


@dataclass
class DsnReport:
    """A parsed delivery-status body."""

    message_fields: dict[str, str] = field(default_factory=dict)
    recipients: list[DsnRecipient] = field(default_factory=list)


def parse_fields(text: str) -> DsnReport:
    """Parse delivery-status text into per-message fields and recipient blocks.

    Tolerant: blank lines need not separate blocks (a new Final-Recipient
    starts a new one), folded lines are joined, unknown lines are skipped.
    """
    report = DsnReport()
    current: dict[str, str] | None = None
    last_key: str | None = None
    target: dict[str, str] = report.message_fields
    for line in text.splitlines():
        if not line.strip():
            last_key = None
            continue
        if line[0] in " \t" and last_key:
            target[last_key] = (target[last_key] + " " + line.strip()).strip()
            continue
        m = _FIELD.match(line)
        if not m:
            last_key = None
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        if key not in _KNOWN:
            last_key = None
            continue
        if key in _RECIPIENT_FIELDS and (current is None or key in current or "action" in current
                                         or "status" in current):
            if not (key == "x-actual-recipient" and current is not None):
                current = {}
                report.recipients.append(DsnRecipient(current))
        if key in _RECIPIENT_FIELDS or key in ("action", "status", "remote-mta", "diagnostic-code",
                                              "last-attempt-date", "will-retry-until", "final-log-id",
                                              "x-supplementary-info", "x-display-name"):
            if current is None:
                current = {}
                report.recipients.append(DsnRecipient(current))
            target = current
        else:
            target = report.message_fields if current is None else current
        if key in target and key != "diagnostic-code":
            last_key = None
            continue
        if key == "diagnostic-code" and key in target:
            target[key] += " " + value
        else:
            target[key] = value
        last_key = key
    return report


def strip_type(value: str) -> str:
    """Drop an RFC 3464 type prefix: 'rfc822; bob@x' -> 'bob@x', 'dns; mx' -> 'mx'."""
    if ";" in value:
        head, _, rest = value.partition(";")
        if " " not in head.strip() and len(head) < 20:
            value = rest
    return value.strip().strip("<>").strip()


def normalise_status(value: str) -> str | None:
    """Extract an enhanced status code (class.subject.detail) from a field value."""
    m = STATUS_RE.search(value or "")
    if not m:
        return None
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"

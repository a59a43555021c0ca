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

    Blocks are separated by blank lines (RFC 3464 §2.1). Tolerated: a second
    Final-Recipient without a blank line starts a new block, a block of
    Action/Status without a recipient joins the block before it, folded lines
    are joined, unknown fields are kept only if they look like report fields.
    """
    report = DsnReport()
    for block in _blocks(text):
        if not any(k in block for k in _RECIPIENT_FIELDS):
            if ("action" in block or "status" in block) and report.recipients:
                prev = report.recipients[-1].fields
                for k, v in block.items():
                    prev.setdefault(k, v)
            elif "action" in block or "status" in block or "diagnostic-code" in block:
                report.recipients.append(DsnRecipient(block))
            else:
                for k, v in block.items():
                    report.message_fields.setdefault(k, v)
            continue
        report.recipients.append(DsnRecipient(block))
    return report


def _blocks(text: str):
    """Yield field dicts, one per blank-line separated block (split on repeats)."""
    current: dict[str, str] = {}
    last_key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                yield current
                current = {}
            last_key = None
            continue
        if line[0] in " \t":
            if last_key:
                current[last_key] = (current[last_key] + " " + line.strip()).strip()
            continue
        m = _FIELD.match(line)
        if not m:
            last_key = None
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        if key not in _KNOWN and not key.startswith("x-"):
            last_key = None
            continue
        if key == "final-recipient" and "final-recipient" in current:
            yield current
            current = {}
        if key in current:
            if key == "diagnostic-code":
                current[key] += " " + value
                last_key = key
            else:
                last_key = None
            continue
        current[key] = value
        last_key = key
    if current:
        yield current


def strip_type(value: str) -> str:
    """Drop an RFC 3464 type prefix: 'rfc822; bob@x' -> 'bob@x', 'dns; mx' -> 'mx'."""
    if ";" in value:
        head, _, rest = value.partition(";")
        if " " not in head.strip() and len(head) < 20:
            value = rest
    return value.strip().strip("<>").strip()


def address_of(value: str) -> str:
    """Recipient address of a *-Recipient field: type prefix, brackets and source route removed."""
    addr = strip_type(value or "")
    if addr.startswith("@") and ":" in addr:  # RFC 821 source route: @relay:user@host
        addr = addr.rsplit(":", 1)[1]
    if " " in addr:
        addr = addr.split()[0].strip("<>")
    return addr if "@" in addr[1:] or not addr.startswith("@") else ""


_MAILBOX = re.compile(r"^[^@\s/|]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def is_mailbox(addr: str) -> bool:
    """True for a deliverable mailbox address: local part @ a fully qualified domain (RFC 5321 §2.3.5)."""
    return bool(addr) and _MAILBOX.match(addr) is not None


def normalise_status(value: str) -> str | None:
    """Extract an enhanced status code (class.subject.detail) from a field value."""
    m = STATUS_RE.search(value or "")
    if not m:
        return None
    return f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"


# Status field values that say little about the recipient: "other/undefined" (x.0.0) and the
# reporting MTA's own "delivery time expired" (x.4.7), which hides what the remote answered.
_VAGUE_STATUS = frozenset(("4.0.0", "5.0.0", "4.4.7", "5.4.7"))
_REPLY_PAIR = re.compile(r"^\s*[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b")


def prefer_status(field: str | None, diagnostic: str) -> str | None:
    """The status to report for a recipient: the Status field, or the diagnostic's code.

    The diagnostic's enhanced code (RFC 3463) of the same class wins when the field is
    vague (x.0.0, x.4.7) or when the diagnostic is the remote server's own reply
    ("550 5.7.1 ...": what the server said beats the reporting MTA's transcription).
    A code of another class never replaces the field: the class is the MTA's verdict.
    """
    if not field or not diagnostic:
        return field
    pair = _REPLY_PAIR.match(diagnostic)
    if pair:
        code = normalise_status(pair.group(1))
        if code and code[0] == field[0] and code not in _VAGUE_STATUS:
            return code
    if field not in _VAGUE_STATUS:
        return field
    for m in STATUS_RE.finditer(diagnostic[:2000]):
        code = f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"
        if code[0] == field[0] and code not in _VAGUE_STATUS:
            return code
    return field

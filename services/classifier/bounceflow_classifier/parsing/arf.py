"""RFC 5965 abuse feedback reports (ARF), and the JSON complaint notices some
providers (Amazon SES) mail instead.

A complaint is not a bounce: category `complaint`, reason `feedback`, with
the Feedback-Type and the complained-about recipient.
"""

from __future__ import annotations

import re

from .dsn import strip_type

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(.*)$", re.M)


def parse_report(text: str) -> dict[str, list[str]]:
    """Fields of a message/feedback-report body, each name → list of values."""
    fields: dict[str, list[str]] = {}
    for m in _FIELD.finditer(text):
        fields.setdefault(m.group(1).lower(), []).append(m.group(2).strip())
    return fields


def recipients(fields: dict[str, list[str]], returned_to: list[str]) -> list[str]:
    """Complained-about recipients: Original-Rcpt-To, else Removal-Recipient, else the returned To."""
    found = [strip_type(v) for v in fields.get("original-rcpt-to", []) if v]
    if not found:
        found = [strip_type(v) for v in fields.get("removal-recipient", []) if v]
    return found or returned_to


def feedback_type(fields: dict[str, list[str]]) -> str | None:
    """The Feedback-Type value (abuse, fraud, auth-failure, not-spam, virus, other)."""
    values = fields.get("feedback-type")
    return values[0].lower() if values else None


_SES_COMPLAINT = re.compile(r'"notificationType"\s*:\s*"Complaint"', re.I)
_SES_FEEDBACK = re.compile(r'"complaintFeedbackType"\s*:\s*"([^"]+)"', re.I)
_SES_RECIPIENT = re.compile(r'"complainedRecipients"\s*:\s*\[\s*\{\s*"emailAddress"\s*:\s*"([^"]+)"', re.I)


def json_complaint(text: str) -> tuple[str | None, str | None] | None:
    """(feedback type, recipient) of an Amazon SES JSON complaint notice, else None."""
    if not _SES_COMPLAINT.search(text):
        return None
    fb = _SES_FEEDBACK.search(text)
    rcpt = _SES_RECIPIENT.search(text)
    return (fb.group(1).lower() if fb else "abuse", rcpt.group(1) if rcpt else None)


_JMRP_SUBJECT = re.compile(r"^\s*complaint about message from ", re.I)


def hotmail_complaint(subject: str, returned_headers) -> str | None:
    """Recipient of a Hotmail/Outlook.com JMRP complaint (no ARF part), else None.

    Returns '' when it is a JMRP complaint without a recipient header.
    """
    original = returned_headers.get("X-HmXmrOriginalRecipient") if returned_headers is not None else None
    if original:
        return strip_type(str(original))
    return "" if _JMRP_SUBJECT.match(subject) else None


def is_unsubscribe_request(subject: str) -> bool:
    """An RFC 2369 mailto: List-Unsubscribe request (subject `unsubscribe`)."""
    return subject.strip().lower() == "unsubscribe"

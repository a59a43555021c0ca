"""JSON notices that mail providers send instead of a bounce (Amazon SES).

SES can deliver its Bounce/Complaint/Delivery notifications by mail with a
JSON body (optionally wrapped in an SNS envelope whose `Message` is itself a
JSON string). This turns them into the same per-recipient shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class JsonNotice:
    """A provider notice: kind is 'bounce', 'complaint' or 'delivery'."""

    kind: str
    recipients: list[dict] = field(default_factory=list)
    feedback_type: str | None = None
    reporting_mta: str | None = None


def parse_json_notice(text: str) -> JsonNotice | None:
    """Parse an SES notification mailed as JSON; None if `text` is not one."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start or "notificationType" not in text and "eventType" not in text:
        return None
    try:
        data = json.loads(text[start : end + 1].replace("\r", "").replace("\n", ""), strict=False)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):  # SNS envelope
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "bounce":
        return _bounce(data.get("bounce") or {})
    if kind == "complaint":
        body = data.get("complaint") or {}
        rcpts = [{"recipient": r.get("emailAddress")} for r in body.get("complainedRecipients") or [] if isinstance(r, dict)]
        return JsonNotice("complaint", rcpts, str(body.get("complaintFeedbackType") or "abuse").lower())
    if kind == "delivery":
        body = data.get("delivery") or {}
        rcpts = [{"recipient": r, "action": "delivered", "diagnostic": body.get("smtpResponse")}
                 for r in body.get("recipients") or [] if isinstance(r, str)]
        return JsonNotice("delivery", rcpts, reporting_mta=body.get("reportingMTA"))
    return None


def _bounce(body: dict) -> JsonNotice:
    transient = str(body.get("bounceType", "")).lower() == "transient"
    rcpts = []
    for r in body.get("bouncedRecipients") or []:
        if not isinstance(r, dict):
            continue
        rcpts.append({
            "recipient": r.get("emailAddress"),
            "action": r.get("action") or ("delayed" if transient else "failed"),
            "status": r.get("status"),
            "diagnostic": r.get("diagnosticCode"),
        })
    return JsonNotice("bounce", rcpts, reporting_mta=body.get("reportingMTA"))

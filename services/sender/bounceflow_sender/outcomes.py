"""What one delivery attempt came to, as an explicit result object.

Postal's `send_result.rb` in Python: every path through the SMTP client ends
in an `Outcome` (delivered / deferred / failed, the reply, a Sisimai-style
reason, where it happened). The mapping from replies and exceptions is pure
so the rules can be read and tested without sockets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Status = Literal["delivered", "deferred", "failed"]
Stage = Literal["route", "connect", "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "local"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt to deliver one message."""

    status: Status
    reason: str | None = None
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply_text: str | None = None
    stage: Stage | None = None
    remote_host: str | None = None
    remote_ip: str | None = None

    @property
    def retry(self) -> bool:
        return self.status == "deferred"

    def at(self, remote_host: str | None, remote_ip: str | None) -> Outcome:
        """The same outcome, tagged with the host it came from."""
        # Spelled out: dataclasses.replace() re-reads the fields on every call (once per message).
        return Outcome(self.status, self.reason, self.smtp_code, self.enhanced_status, self.reply_text, self.stage,
                       remote_host, remote_ip)


def enhanced_status(text: str) -> str | None:
    """The RFC 3463 code at the start of a reply text (`5.1.1 No such user` -> `5.1.1`)."""
    match = _ENHANCED.match(text or "")
    return ".".join(match.groups()) if match else None


# Enhanced status -> reason; an exact code first, then its `class.subject.` prefix.
_BY_STATUS = {
    "5.1.1": "userunknown", "5.1.0": "userunknown", "5.1.6": "hasmoved", "5.1.10": "userunknown",
    "5.1.2": "hostunknown", "5.1.3": "userunknown", "5.1.8": "rejected",
    "5.2.1": "suspend", "5.2.2": "mailboxfull", "4.2.2": "mailboxfull", "5.2.3": "mesgtoobig",
    "5.3.4": "mesgtoobig", "5.4.4": "hostunknown", "5.4.6": "systemerror", "4.4.7": "expired",
    "5.5.": "syntaxerror", "5.6.": "contenterror", "5.7.1": "rejected", "5.7.0": "securityerror",
    "5.7.26": "policyviolation", "5.7.25": "blocked", "5.7.27": "notaccept", "5.7.": "policyviolation",
    "4.7.": "blocked", "4.3.": "systemerror", "4.4.": "networkerror",
}

# (pattern in the reply text, reason); checked before the status table because
# remote servers often use a generic status with a telling text.
_BY_TEXT = [
    (re.compile(r"user (unknown|not found)|no such (user|mailbox)|unknown (user|recipient)|"
                r"mailbox (unavailable|not found)|does not exist|recipient rejected", re.I), "userunknown"),
    (re.compile(r"mailbox (is )?full|over ?quota|quota exceeded|insufficient storage", re.I), "mailboxfull"),
    (re.compile(r"blocked|block ?list|blacklist|listed (at|on|in)|rbl|spamhaus", re.I), "blocked"),
    (re.compile(r"\bspam\b|junk|bulk mail", re.I), "spamdetected"),
    (re.compile(r"too many (connections|sessions)|connection limit|rate limit", re.I), "toomanyconn"),
    (re.compile(r"relay(ing)? (access )?denied|not permitted to relay|unable to relay", re.I), "norelaying"),
    (re.compile(r"message (size|too (big|large))|too large|size limit", re.I), "mesgtoobig"),
    (re.compile(r"(account|mailbox) (disabled|suspended|inactive)", re.I), "suspend"),
]


def reason_for(code: int | None, status: str | None, text: str | None) -> str:
    """Sisimai-style reason for an SMTP refusal."""
    for pattern, reason in _BY_TEXT:
        if text and pattern.search(text):
            return reason
    if status:
        subject = status.rsplit(".", 1)[0] + "."
        for key in (status, subject):
            if key in _BY_STATUS:
                return _BY_STATUS[key]
    if code in (421, 450, 451, 452):
        return {421: "toomanyconn", 452: "mailboxfull"}.get(code, "systemerror")
    if code in (550, 551, 553):
        return "rejected"
    if code == 552:
        return "mesgtoobig"
    return "undefined"


def from_reply(code: int, text: str, stage: Stage) -> Outcome:
    """Outcome of an SMTP reply: 2xx delivered (after DATA), 4xx deferred, 5xx failed.

    Codes outside 2xx-5xx are a protocol error of the remote: deferred.
    """
    text = (text or "").strip()
    status = enhanced_status(text)
    if 200 <= code < 400:
        return Outcome("delivered", "delivered", code, status, text, stage)
    if 500 <= code < 600:
        return Outcome("failed", reason_for(code, status, text), code, status, text, stage)
    if not 400 <= code < 500:
        return Outcome("deferred", "systemerror", code, status, f"unexpected reply: {text}", stage)
    return Outcome("deferred", reason_for(code, status, text), code, status, text, stage)


def network_error(text: str, stage: Stage) -> Outcome:
    """Connection refused, reset, dropped mid-session or timed out: try again later."""
    return Outcome("deferred", "networkerror", None, None, text, stage)


def tls_error(text: str, *, fatal: bool = False) -> Outcome:
    """STARTTLS failed (handshake, verification, or not offered where required)."""
    return Outcome("failed" if fatal else "deferred", "securityerror", None, None, text, "starttls")


def local_failure(reason: str, text: str, stage: Stage = "local") -> Outcome:
    """We refuse to try at all (bad record, invalid address, null MX, …)."""
    return Outcome("failed", reason, None, None, text, stage)

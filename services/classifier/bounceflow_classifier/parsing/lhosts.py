"""Bounce formats of particular MTAs that the generic prose reader misses.

Sisimai keeps one module per MTA ("Lhost"); here each format is one small
recogniser in a table: a cheap marker (a literal the body must contain) and a
function from (subject, text) to per-recipient records, or None. Only the
recognisers whose marker occurs run, so the table costs almost nothing on
other mail. Add a format by adding a function and a row.
"""

from __future__ import annotations

import re
from typing import Callable

from .nonstandard import ADDRESS, squeeze

Recogniser = Callable[[str, str], "list[dict] | None"]

_DETAILS = re.compile(r"^error:\s*(?P<what>.+)\n\s*error message below:\s*\n(?P<reply>(?:.+\n){1,5}?)\s*message details:",
                      re.I | re.M)
_RCPT_TO = re.compile(r"^\s*rcpt to:\s*<?(" + ADDRESS.pattern + r")>?", re.I | re.M)


def message_details(subject: str, text: str) -> list[dict] | None:
    """Apache James' bounce mailet (also used by carrier gateways such as Verizon's):
    `Error: <summary>` / `Error message below:` / the remote reply / `Message details:`
    with the envelope (`RCPT TO: addr`)."""
    m = _DETAILS.search(text)
    if not m:
        return None
    rcpts = [a.lower() for a in _RCPT_TO.findall(text[m.end():])] or [None]
    diag = squeeze(f"{m.group('what')} {m.group('reply')}")
    return [{"recipient": r, "action": "failed", "diagnostic": diag} for r in rcpts]


_LOOP = re.compile(r"duplicated message-id in <(" + ADDRESS.pattern + r")>", re.I)


def list_loop_alert(subject: str, text: str) -> list[dict] | None:
    """fml mailing-list manager: `Loop Alert: Duplicated Message-ID` — the list refused a
    message it had already seen (a system-side refusal for that list address)."""
    m = _LOOP.search(text)
    if not m or "loop alert" not in subject.lower():
        return None
    return [{"recipient": m.group(1).lower(), "action": "failed", "diagnostic": squeeze(m.group(0)),
             "fixed_reason": "systemerror"}]


_INTERSCAN = re.compile(r"unable to deliver message to <(" + ADDRESS.pattern + r")>(.*)$", re.I | re.M)


def interscan_mss(subject: str, text: str) -> list[dict] | None:
    """Trend Micro InterScan Messaging Security Suite: `Unable to deliver message to <addr>
    (and other recipients in the same domain).` is its wording for a recipient address the
    next hop refused (Sisimai reads it as `userunknown`)."""
    if "interscan messaging security suite" not in text[:2000].lower():
        return None
    return [{"recipient": m.group(1).lower(), "action": "failed", "diagnostic": squeeze(m.group(0)),
             "fixed_reason": "userunknown"} for m in _INTERSCAN.finditer(text)] or None


# `addr Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <addr>... User Unknown` or
# `[Status: Error, Address: <addr>, ResponseCode 421, , Host not reachable.]`
_ZOHO_LINE = re.compile(r"^\s*(?P<a>" + ADDRESS.pattern + r")\s+(?P<what>[^,\n]*),\s*ERROR_CODE\s*:\s*(?P<code>\d{3})?,"
                        r"\s*ERROR_CODE\s*:\s*(?P<text>.*)$|^\[Status: [^,]*, Address: <(?P<a2>" + ADDRESS.pattern +
                        r")>, ResponseCode (?P<code2>\d{3})?,[ ,]*(?P<text2>.*?)\]?$", re.M)


def zoho_mail(subject: str, text: str) -> list[dict] | None:
    """Zoho Mail's own bounce: one `addr summary, ERROR_CODE :NNN, ERROR_CODE :reply` line (or a
    `[Status: ..., ResponseCode NNN, ...]` line) per recipient. `Host not reachable` is what Zoho
    writes when it gave up on a host it could never reach: the message expired."""
    records = []
    for m in _ZOHO_LINE.finditer(text):
        code = m.group("code") or m.group("code2") or ""
        reply = (m.group("text") if m.group("a") else m.group("text2")).strip(" ,")
        diag = squeeze(f"{code} {reply}" if code and not reply.startswith(code) else reply) or squeeze(m.group(0))
        records.append({"recipient": (m.group("a") or m.group("a2")).lower(), "action": "failed", "diagnostic": diag,
                        "smtp_code": int(code) if code else None,
                        "fixed_reason": "expired" if "host not reachable" in reply.lower() else None})
    return records or None


# PowerMTA's own verdict, `X-PowerMTA-BounceCategory:` in each recipient block of its DSN
# (its bounce-category classifier has already read the remote's reply).
_POWERMTA_CATEGORIES = {
    "bad-mailbox": "userunknown", "bad-domain": "hostunknown", "inactive-mailbox": "suspend",
    "quota-issues": "mailboxfull", "message-expired": "expired", "no-answer-from-host": "networkerror",
    "policy-related": "policyviolation", "spam-related": "spamdetected", "routing-errors": "systemerror",
}


def powermta_category(value: str | None) -> str | None:
    """The reason PowerMTA's bounce category names, or None (absent, or `other`/unknown)."""
    return _POWERMTA_CATEGORIES.get((value or "").strip().lower()) if value else None


# (literal the lower-cased text must contain, recogniser)
RECOGNISERS: list[tuple[str, Recogniser]] = [
    ("error message below:", message_details),
    ("duplicated message-id", list_loop_alert),
    ("unable to deliver message to <", interscan_mss),
    ("error_code :", zoho_mail),
    ("responsecode ", zoho_mail),
]


def recognise(subject: str, text: str) -> list[dict] | None:
    """Records from the first MTA format in the table that recognises this bounce, else None."""
    low = text[:20_000].lower()
    for marker, recogniser in RECOGNISERS:
        if marker in low:
            records = recogniser(subject, text)
            if records:
                return records
    return None

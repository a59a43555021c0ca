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


# (literal the lower-cased text must contain, recogniser)
RECOGNISERS: list[tuple[str, Recogniser]] = [
    ("error message below:", message_details),
    ("duplicated message-id", list_loop_alert),
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

"""Reasons fixed by the receiving provider's own reply codes ("Rhost" tables).

Some providers answer every refusal with the same generic words ("Service
refused, please try later", "sender rejected", "Unknown user") and put the
real cause in a code of their own: Orange / La Poste's `LPN007_416`,
Spectrum's `AUP#In-1310`, Exchange Online's three-digit enhanced details
(`5.4.316`). Their published code tables name the reason better than any
phrase table can, so — as Sisimai's Rhost modules do — a reply in one of these
formats, or from one of these hosts, is read with that provider's table
first. Each provider is one small function behind a cheap test; `find`
returns None when no table decides, and the generic rules take over.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

# --- Orange / La Poste (orange.fr, wanadoo.fr, laposte.net) ------------------
# Code format: LPN007_416, OFR005_505, OFR_506, OUK_513, LPNAAA_101; the last
# three digits name the cause (postmaster tables of Orange and La Poste).
_FRANCE_CODE = re.compile(r"\b(?:LPN|LPNAAA|OFR|OUK)(?:_\d{3}|\d{3}[-_]\d{3})\b")
_FRANCE_TABLE = {
    "101": "blocked",        # sending IP listed (Spamhaus)
    "102": "blocked",        # source IP blocked for spam incidents
    "103": "blocked",        # service refused to this client
    "104": "toomanyconn",    # too many connections, slow down
    "305": "securityerror",  # invalid authentication code
    "401": "authfailure",    # SPF: not allowed to send mail
    "402": "securityerror",  # authentication required
    "403": "rejected", "405": "rejected", "415": "rejected",  # invalid sender
    "416": "userunknown",    # invalid recipient
    "417": "mailboxfull",    # recipient over quota
    "420": "suspend",        # recipient mailbox archived
    "421": "rejected",       # MAIL FROM not owned by the user
    "426": "suspend",        # recipient account blocked
    "505": "systemerror",    # service refused (server side), try later
    "506": "spamdetected",   # mail rejected as spam
    "510": "blocked",        # service refused to this client
    "514": "mesgtoobig",     # message size limit reached
    "517": "authfailure",    # DMARC verification failed
    "630": "policyviolation",  # client host rejected by policy
    "999": "blocked",        # service refused
}


def _france_ptt(reply: Reply) -> str | None:
    m = _FRANCE_CODE.search(reply.diagnostic)
    return _FRANCE_TABLE.get(m.group(0)[-3:]) if m else None


# --- Spectrum / Charter (charter.net, spectrum.net, rr.com) -------------------
# Code format: AUP#In-1310 (incoming) / AUP#Out-1000; ranges from Spectrum's
# "understanding email error codes" page.
_SPECTRUM_CODE = re.compile(r"AUP#[A-Za-z-]*(\d{4})")
_SPECTRUM_RANGES = (
    (1000, 1000, "blocked"), (1010, 1080, "rejected"), (1090, 1090, "systemerror"),
    (1100, 1150, "requireptr"), (1160, 1190, "policyviolation"), (1200, 1250, "blocked"),
    (1260, 1260, "networkerror"), (1300, 1340, "toomanyconn"), (1350, 1490, "speeding"),
    (1500, 1520, "rejected"), (1530, 1530, "mesgtoobig"), (1540, 1550, "speeding"),
    (1560, 1560, "policyviolation"), (1580, 1580, "speeding"),
)


def _spectrum(reply: Reply) -> str | None:
    m = _SPECTRUM_CODE.search(reply.diagnostic)
    if not m:
        return None
    code = int(m.group(1))
    return next((reason for low, high, reason in _SPECTRUM_RANGES if low <= code <= high), None)


# --- Microsoft Exchange Online / Office 365 ------------------------------------
# Three-digit enhanced-status details are Exchange's own (RFC 3463's registry
# stops at two digits); Microsoft's NDR reference names each.
_MICROSOFT_CODES = {
    "4.4.312": "networkerror", "5.4.312": "networkerror",  # DNS query for the destination failed
    "4.4.316": "expired", "5.4.316": "expired",  # connection refused until the message expired
    "5.4.300": "expired",                        # message expired
    "4.4.317": "securityerror", "5.4.317": "securityerror",  # STARTTLS required / TLS failed
    "5.7.509": "authfailure",                    # sending domain fails DMARC
    "5.7.506": "blocked", "5.7.507": "blocked", "5.7.511": "blocked", "5.7.513": "blocked",
    "5.2.121": "speeding", "5.2.122": "speeding",  # recipient's per-hour receive limit
}
_MICROSOFT_RANGES = (("5.7.", 606, 649, "blocked"), ("4.7.", 850, 899, "blocked"),
                     ("5.7.", 900, 999, "policyviolation"))  # banned IP, temp. restricted IP, mail flow rule


def _microsoft(reply: Reply) -> str | None:
    status = reply.status or ""
    reason = _MICROSOFT_CODES.get(status)
    if reason:
        return reason
    head, _, detail = status.rpartition(".")
    for prefix, low, high, reason in _MICROSOFT_RANGES:
        if head + "." == prefix and low <= int(detail) <= high:
            return reason
    return None


# --- NTT docomo (docomo.ne.jp) -----------------------------------------------
# docomo answers "550 Unknown user" both when the mailbox does not exist (at
# RCPT) and when the recipient's own reception settings refuse the sender —
# then at the end of DATA, with a generic Status 5.0.0: the sender was refused.
_DOCOMO_UNKNOWN = re.compile(r"\b550 unknown user\b", re.I)


def _docomo(reply: Reply) -> str | None:
    if reply.command == "DATA" and reply.status in (None, "5.0.0") and _DOCOMO_UNKNOWN.search(reply.diagnostic):
        return "rejected"
    return None


# --- Zoho Mail (zoho.com, zoho.eu, zohomail.com) --------------------------------
# Zoho's documented replies; "flagged as Spam" at RCPT refuses the sender, not content.
_ZOHO_PHRASES = (
    ("email rejected per dmarc policy", "authfailure"),
    ("email cannot be delivered. reason: email flagged as spam", "rejected"),
    ("mail rejected by destination domain", "rejected"),
    ("email policy violation detected", "policyviolation"),
    ("mailbox delivery restricted by policy error", "policyviolation"),
    ("greylisted, try again after some time", "blocked"),
    ("temporary system error", "systemerror"),
    ("user does not exist", "userunknown"),
)


def _zoho(reply: Reply) -> str | None:
    low = reply.diagnostic.lower()
    return next((reason for phrase, reason in _ZOHO_PHRASES if phrase in low), None)


class Reply(NamedTuple):
    """What one recipient's bounce says: remote host, reply text, status, SMTP command."""

    host: str
    diagnostic: str
    status: str | None
    command: str | None


class Provider(NamedTuple):
    """A provider table: host suffixes, literals of its own code format, and the lookup."""

    hosts: tuple[str, ...]
    code_markers: tuple[str, ...]
    lookup: Callable[[Reply], "str | None"]


PROVIDERS: tuple[Provider, ...] = (
    Provider(("orange.fr", "wanadoo.fr", "laposte.net"), ("LPN", "OFR", "OUK_"), _france_ptt),
    Provider(("charter.net", "spectrum.net", "rr.com"), ("AUP#",), _spectrum),
    Provider(("outlook.com", "hotmail.com"), (), _microsoft),
    Provider(("docomo.ne.jp",), (), _docomo),
    Provider(("zoho.com", "zoho.eu", "zohomail.com"), (), _zoho),
)
_THREE_DIGIT_DETAIL = re.compile(r"^[45]\.\d{1,3}\.\d{3}$")


def find(remote_mta: str | None, diagnostic: str, status: str | None, command: str | None) -> str | None:
    """The reason a provider's own table gives for this reply, or None.

    A table applies when the remote host is the provider's, or when the reply
    carries the provider's code format (checked by a literal first, so other
    mail pays one substring test per provider); Exchange Online's
    three-digit status details select Microsoft's table on their own.
    """
    dotted = "." + (remote_mta or "").split(" ", 1)[0].strip("[]()<>.").lower()
    text = diagnostic or ""
    microsoft_code = bool(status) and _THREE_DIGIT_DETAIL.match(status) is not None
    reply = None
    for provider, suffixes in _DISPATCH:
        if not (dotted.endswith(suffixes) or (microsoft_code and provider.lookup is _microsoft)
                or any(marker in text for marker in provider.code_markers)):
            continue
        reply = reply or Reply(dotted[1:], text, status, command)
        reason = provider.lookup(reply)
        if reason:
            return reason
    return None


# Each provider with its host suffixes dotted, for one str.endswith per provider.
_DISPATCH = tuple((p, tuple("." + h for h in p.hosts)) for p in PROVIDERS)

"""Why a mail bounced, in Sisimai's vocabulary, and whether that is hard or soft.

Inputs are what a bounce tells us about one recipient: the enhanced status
code (RFC 3463), the SMTP reply code, the diagnostic text and, if known, the
SMTP command that failed. Order of evidence:

1. a success status or Action is `delivered`;
2. the diagnostic text, matched against per-reason phrase tables (what MTAs
   actually say; the tables are checked in a fixed order, most specific
   first) — text beats codes because codes are often generic (5.0.0, 5.7.1,
   550) or plainly wrong, except where a specific code is more reliable than
   the text (see _CODE_WINS);
3. the enhanced status code (RFC 3463 subjects/details, plus the widely used
   5.7.2x authentication codes);
3b. generic phrases ("rejected", "refused", "policy") that only decide when
   the code did not;
4. the failed SMTP command (refused at connect/HELO → blocked, at MAIL FROM →
   rejected);
5. `expired` for delays, else `undefined`.

Hard/soft: the status class decides (5 → hard, 4 → soft); without a status
the SMTP reply class decides; without either, the action decides (a
`failed` report means the reporting MTA gave up: hard; `delayed`: soft —
Sisimai's 5.0.9xx pseudo codes encode the same rule); failing that, the
reason decides: reasons that retrying will not fix (HARD_REASONS) are hard.
"""

from __future__ import annotations

import re

from .dsn import normalise_status
from .phrases import LOCAL_LOOKUP, TEXT_TABLE, WEAK_TABLE
from .phrasescan import PhraseScan, Substrings


_META = set("\\.^$*+?{}[]|()")


class _PhraseTable:
    """Reasons with their phrases, in table order; `first_reason` names the first reason
    with a phrase in a text.

    The plain phrases and the literals that gate the regex phrases (see PhraseScan) of
    all reasons are found in one pass (`Substrings`), not with ~370 `in` tests; then a
    reason's regex phrases run only if one of their gates occurs and the reason comes
    before the first one with a plain phrase in the text.
    """

    def __init__(self, table: list[tuple[str, tuple[str, ...]]]):
        self.reasons = [reason for reason, _ in table]
        self.scans: list[PhraseScan | None] = []
        self.literal_owner: dict[str, int] = {}  # plain phrase -> the first reason that lists it
        gated: dict[str, list[int]] = {}  # gate literal -> the reasons whose regex phrases it gates
        always = []
        for i, (reason, phrases) in enumerate(table):
            for phrase in phrases:
                if not _META & set(phrase):
                    self.literal_owner.setdefault(phrase, i)
            patterns = [(reason, p) for p in phrases if _META & set(p)]
            scan = PhraseScan(patterns) if patterns else None
            self.scans.append(scan)
            if scan is not None:
                for gate, _ in scan.gates:
                    gated.setdefault(gate, []).append(i)
                if scan.always:
                    always.append(i)
        self.gated = {gate: tuple(owners) for gate, owners in gated.items()}
        self.always = tuple(always)
        self.substrings = Substrings(list(self.literal_owner) + list(self.gated))

    def first_reason(self, low: str) -> str | None:
        """The first reason whose phrases occur in the prepared text, else None."""
        present = self.substrings.found_in(low)
        first = len(self.reasons)  # the first reason with a plain phrase in the text
        candidates = set(self.always)  # reasons whose regex phrases may occur
        for s in present:
            first = min(first, self.literal_owner.get(s, first))
            candidates.update(self.gated.get(s, ()))
        for i in sorted(candidates):
            if i >= first:
                break
            if self.scans[i].occurs(low, present):
                return self.reasons[i]
        return self.reasons[first] if first < len(self.reasons) else None


_STRONG = _PhraseTable(TEXT_TABLE)
_WEAK = _PhraseTable(WEAK_TABLE)
MAX_EVIDENCE_CHARS = 4000
# An address names who, never why ("filtered@", "spam-reports@"): blank it before matching.
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# A multi-line reply repeats its codes on every line ("550-5.7.1 ... 550 5.7.1 ..."), splitting phrases.
_REPLY_CODES = re.compile(r"\b([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\s+")

# RFC 3463 status → reason where the code alone is specific enough.
_STATUS_TABLE: dict[str, str] = {
    "1.1": "userunknown", "1.2": "hostunknown", "1.3": "userunknown", "1.4": "userunknown",
    "1.5": "userunknown", "1.6": "hasmoved", "1.7": "rejected", "1.8": "rejected",
    "1.10": "notaccept",
    "2.0": "filtered", "2.1": "suspend", "2.2": "mailboxfull", "2.3": "exceedlimit", "2.4": "systemerror",
    "3.0": "systemerror", "3.1": "systemfull", "3.2": "notaccept", "3.3": "systemerror", "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.0": "networkerror", "4.1": "networkerror", "4.2": "networkerror", "4.3": "systemerror", "4.4": "hostunknown",
    "4.5": "networkerror", "4.6": "networkerror", "4.7": "expired",
    "5.0": "mailererror", "5.1": "mailererror", "5.2": "syntaxerror", "5.3": "exceedlimit", "5.4": "syntaxerror",
    "5.5": "syntaxerror",
    "6.0": "contenterror", "6.1": "contenterror", "6.2": "contenterror", "6.3": "contenterror", "6.4": "contenterror",
    "6.5": "contenterror",
    "7.0": "securityerror", "7.2": "securityerror", "7.3": "securityerror",
    "7.4": "securityerror", "7.5": "securityerror", "7.6": "securityerror", "7.7": "securityerror",
    "7.8": "securityerror", "7.9": "policyviolation", "7.10": "securityerror", "7.11": "securityerror",
    "7.13": "suspend", "7.14": "securityerror", "7.15": "securityerror", "7.16": "mailboxfull",
    "7.17": "suspend", "7.18": "suspend", "7.19": "suspend", "7.20": "authfailure", "7.21": "authfailure",
    "7.22": "authfailure", "7.23": "authfailure", "7.24": "authfailure", "7.25": "requireptr",
    "7.26": "authfailure", "7.27": "notaccept", "7.28": "speeding", "7.29": "authfailure", "7.30": "authfailure",
}

HARD_REASONS = frozenset(("userunknown", "hostunknown", "hasmoved", "notaccept", "suspend", "norelaying",
                          "mesgtoobig", "rejected", "filtered", "blocked", "policyviolation", "authfailure",
                          "requireptr", "notcompliantrfc", "syntaxerror", "virusdetected", "spamdetected"))

# SMTP command → reason when nothing else decides (refusals before the message).
_COMMAND_REASON = {"CONN": "blocked", "HELO": "blocked", "EHLO": "blocked", "MAIL": "rejected", "RCPT": "userunknown"}


def evidence_text(text: str) -> str:
    """Lower-cased, bounded text for phrase matching: addresses blanked, repeated reply codes removed."""
    low = text[:MAX_EVIDENCE_CHARS].lower()
    if "@" in low:
        low = _ADDRESS.sub("<@>", low)
    first = _REPLY_CODES.search(low)
    if first and low.count(first.group(2)) > 1:
        repeat = re.compile(r"\s%s[ -]%s\s+" % (first.group(1), re.escape(first.group(2))))
        low = low[: first.end()] + repeat.sub(" ", low[first.end():])
    return low


def match_text(text: str, weak: bool = False) -> str | None:
    """The first reason (in table order) whose phrases occur in `text` (any case), else None.

    With weak=True, the generic-phrase tier is searched instead.
    """
    if not text:
        return None
    return match_prepared(evidence_text(text), weak)


def match_prepared(low: str, weak: bool = False) -> str | None:
    """`match_text` on text already passed through `evidence_text`."""
    return (_WEAK if weak else _STRONG).first_reason(low)


def from_status(status: str | None) -> str | None:
    """Reason implied by an enhanced status code alone, or None if too generic."""
    if not status:
        return None
    cls, _, rest = status.partition(".")
    if cls == "2":
        return "delivered"
    return _STATUS_TABLE.get(rest)


def classify(status: str | None, smtp_code: int | None, diagnostic: str | None,
             action: str | None = None, command: str | None = None,
             evidence_reason: str | None = None, weak_reason: str | None = None,
             mailbox_lookup: bool | None = None) -> str:
    """Decide the reason for one recipient; see the module docstring for the order."""
    status = normalise_status(status or "") if status else None
    if (action or "").lower() in ("delivered", "relayed", "expanded", "deliverable") or (status or "").startswith("2."):
        return "delivered"
    if mailbox_lookup is None:
        mailbox_lookup = is_mailbox_lookup(diagnostic or "")
    reason = (match_text(diagnostic or "") if evidence_reason is None else evidence_reason) or None
    coded = from_status(status)
    if reason and coded and coded in _CODE_WINS and reason not in _CODE_WINS.get(coded, ()):
        reason = coded
    if reason is None and coded and not (command in _COMMAND_REASON and coded == "securityerror"):
        reason = coded
    if reason is None:
        generic = (weak_reason if weak_reason is not None else match_text(diagnostic or "", weak=True)) or None
        # A refusal before RCPT is about the sender or its host, whatever the wording.
        reason = _COMMAND_REASON.get(command) if command in ("CONN", "HELO", "EHLO", "MAIL") else generic
    if reason in _RECIPIENT_REASONS and command in ("CONN", "HELO", "EHLO"):
        reason = "blocked"  # refused before any recipient was named: about our host, not the recipient
    if reason in ("hostunknown", "userunknown") and command == "MAIL":
        reason = "rejected"  # the address that does not exist is our sender's
    if reason == "userunknown" and _refused_after_rcpt(command, status, mailbox_lookup):
        reason = "filtered"
    if reason is None and command:
        reason = _COMMAND_REASON.get(command)
    if reason is None:
        reason = coded
    if reason is None:
        if (action or "").lower() == "delayed":
            reason = "expired"
        else:  # something was said, but nothing we can name: Sisimai's `onhold`
            reason = "onhold" if (diagnostic or "").strip() else "undefined"
    return reason


_RECIPIENT_REASONS = frozenset(("userunknown", "hostunknown", "filtered", "mailboxfull", "suspend"))
_LOOKUP_RX = re.compile("|".join(f"(?:{p})" for p in LOCAL_LOOKUP))


def is_mailbox_lookup(text: str) -> bool:
    """True when the text is an MTA's own directory/local-delivery verdict that the mailbox does not exist."""
    return bool(text) and _LOOKUP_RX.search(text[:MAX_EVIDENCE_CHARS].lower()) is not None


def _refused_after_rcpt(command: str | None, status: str | None, mailbox_lookup: bool) -> bool:
    """An "unknown user" answer that is really a filter (Sisimai's `filtered`).

    A recipient refused at RCPT (or by a x.1.x address status, or by the MTA's
    own mailbox lookup) does not exist; the same words at another stage — after
    DATA, or where the stage is unknown and no address status backs them — come
    from a filter on the recipient's side.
    """
    if command in ("RCPT", "MAIL") or mailbox_lookup:
        return False
    return not (status and status.split(".")[1] == "1")


# A specific status code beats the text unless the text names one of these.
_CODE_WINS: dict[str, tuple[str, ...]] = {
    "mailboxfull": (), "requireptr": (), "authfailure": (), "hasmoved": (),
    "userunknown": ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept", "suspend",
                    "authfailure", "requireptr", "spamdetected", "toomanyconn", "speeding", "policyviolation"), "mesgtoobig": ("exceedlimit",), "exceedlimit": (),
    "rejected": (), "contenterror": ("spamdetected", "virusdetected"), "suspend": ("mailboxfull", "userunknown", "filtered", "speeding"),
}


def bounce_type(status: str | None, smtp_code: int | None, reason: str | None,
                action: str | None = None) -> str | None:
    """'hard' or 'soft': by status class, else SMTP reply class, else the action
    (a `failed` report without codes means the MTA gave up: hard; `delayed`:
    soft), else the reason (HARD_REASONS)."""
    if reason in ("delivered", "feedback", "vacation"):
        return None
    if status and status[0] in "45":
        return "hard" if status[0] == "5" else "soft"
    if smtp_code and 400 <= smtp_code < 600:
        return "hard" if smtp_code >= 500 else "soft"
    if action == "failed":
        return "hard"
    if action == "delayed":
        return "soft"
    if reason is None:
        return None
    return "hard" if reason in HARD_REASONS else "soft"

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

# Reason → phrases (regex fragments, matched against lower-cased text).
_TEXT_TABLE: list[tuple[str, tuple[str, ...]]] = [
    ("mailboxfull", (
        r"mailbox (?:is )?full", r"mail ?box full", r"mailbox (?:is )?over ?quota", r"over ?quota",
        r"quota (?:exceeded|violation|full|limit)", r"exceeded (?:storage|quota|the quota)",
        r"user'?s? (?:mail)?(?:box|folder) is full", r"mailfolder is full", r"insufficient (?:disk|storage) space",
        r"not enough (?:disk )?space", r"disk ?quota", r"mailbox (?:has exceeded|exceeds)", r"mailbox size limit",
        r"exceeds? (?:his|her|their|the user'?s?|the recipient'?s?) (?:mailbox|storage|quota)",
        r"account is full", r"inbox is full", r"is over (?:the )?(?:storage|quota)", r"storage (?:limit|allocation) exceeded",
        r"boîte (?:aux lettres )?pleine", r"mailbox is overloaded", r"too much mail data", r"no space left",
        r"would exceed (?:the )?(?:maximum )?(?:mailbox )?quota", r"user over limit", r"exceeding its mailbox quota",
    )),
    ("exceedlimit", (r"recipsizelimit", r"message too large for this recipient", r"exceeds? (?:the )?size limit",)),
    ("mesgtoobig", (
        r"message (?:file )?too (?:big|large)", r"message size exceeds", r"message exceeds .{0,40}size",
        r"size (?:limit )?exceeded", r"exceeds? (?:the )?(?:fixed )?(?:maximum|max) (?:allowed |message )?size",
        r"message is too large", r"mail too large", r"message length exceeds", r"exceeded maximum (?:inbound )?message size",
        r"taille maximale",
    )),
    ("suspend", (
        r"account (?:has been |is )?(?:disabled|suspended|deactivated|inactive|locked|frozen)",
        r"(?:mailbox|address|user|recipient|e-?mail account|account|inbox) (?:\S+ )?(?:is |has been )?(?:disabled|suspended|deactivated|inactive|not active|frozen|temporar(?:y|ily) (?:disabled|locked)|currently suspended)",
        r"email account that you tried to reach is (?:disabled|inactive)", r"is no longer in use",
        r"boite du destinataire archivee", r"user suspended", r"recipient suspended", r"account expired",
        r"has been disabled", r"this account has been (?:blocked|closed)",
    )),
    ("hasmoved", (r"has been replaced by", r"no longer available at this address and has moved", r"user has moved",)),
    ("norelaying", (
        r"relay(?:ing)? (?:access )?denied", r"relay(?:ing)? not (?:permitted|allowed)", r"not permitted to relay",
        r"unable to relay", r"no relaying", r"relaying (?:mail )?(?:to .{1,60} )?(?:is )?not allowed", r"we do not relay",
        r"mail for .{1,80} loops back to myself", r"(?:is|isn'?t) (?:not )?in my list of allowed rcpthosts",
        r"relay not authorized", r"not authorized to relay", r"email address is not verified",
    )),
    ("authfailure", (
        r"\bspf\b.{0,80}\b(?:fail|failure|failed|check)", r"\bdkim\b.{0,60}(?:fail|invalid|missing|required)",
        r"\bdmarc\b.{0,80}(?:fail|reject|policy|verification|check)", r"sender policy framework", r"authentication (?:check(?:s)? )?fail",
        r"unauthenticated (?:e-?)?mail from", r"does not have authentication information", r"fails? to pass (?:authentication|spf|dkim|dmarc)",
        r"5\.7\.(?:2[0-4]|26|509|510)\b",
    )),
    ("requireptr", (
        r"(?:no|cannot find your|can'?t find your|missing|without|does not have a?) (?:valid )?(?:ptr|reverse dns|rdns|reverse lookup|reverse hostname)",
        r"reverse (?:dns|lookup|resolution) (?:failed|failure|error|mismatch|not)", r"ptr record", r"\brdns\b",
        r"(?:ip|client) (?:address )?(?:name )?lookup failed", r"cannot resolve your (?:address|hostname|ip)",
        r"no reverse", r"reverse ?dns", r"unresolvable (?:ip|address|host)", r"not resolve your (?:ip|address|hostname)",
        r"sender ip must resolve", r"5\.7\.25\b", r"cannot find your hostname", r"invalid ptr", r"fcrdns", r"unverifyable sending ip",
    )),
    ("notcompliantrfc", (
        r"not rfc ?5322 compliant", r"not (?:rfc|rfc5322|rfc 5322)[- ]compliant", r"rfc ?(?:5322|2822|822) (?:violation|compliance)",
        r"multiple (?:addresses in from|from|subject|date|message-id|to) (?:header|headers|fields)", r"duplicate header",
        r"messages with multiple addresses in from", r"missing (?:from|date|message-id) header",
    )),
    ("badreputation", (r"bad reputation", r"poor reputation", r"sender reputation", r"low reputation",
                       r"ip reputation", r"reputation (?:is )?too low", r"4\.7\.650\b",)),
    ("securityerror", (r"unauthenticated senders?", r"authentication required", r"\bauth(?:entication)? (?:is )?required",
                       r"tls required", r"must (?:use|issue) (?:a )?starttls", r"encryption required", r"authrequired",
                       r"insufficient permission", r"not authenticated",)),
    ("rejected", (
        r"sender (?:address )?(?:was )?(?:rejected|denied|blocked|refused|not allowed)", r"(?:mail|envelope) from .{0,60}(?:rejected|refused|denied)",
        r"domain of sender address", r"sender domain", r"sender verify failed", r"sender (?:address )?verification",
        r"you are sending to/from", r"purported responsible address", r"bad sender", r"invalid sender", r"senders? (?:is )?not permitted",
    )),
    ("toomanyconn", (r"too many (?:connections|concurrent|simultaneous|sessions|recipients)", r"connection (?:rate|frequency) limit",
                     r"frequency limited", r"connection limit", r"max(?:imum)? (?:number of )?connections",)),
    ("speeding", (r"rate limit", r"rate(?:-| )limited", r"too many (?:messages|emails|mails) (?:sent|from|in)", r"sending too fast",
                  r"throttl", r"receiving mail at a rate",)),
    ("spamdetected", (
        r"\bspam\b", r"junk mail", r"unsolicited", r"bulk mail", r"message content rejected", r"content (?:is |was )?(?:considered|classified|identified) as",
        r"rejected (?:as|by) (?:spam|content filter)", r"message (?:is|was|has been) (?:considered|classified|identified|flagged) as",
        r"scored too high", r"score (?:is )?too high", r"appears to be (?:spam|unsolicited)", r"blacklisted url",
        r"suspicious (?:content|url|link)", r"looks like (?:spam|junk)", r"high probability of being", r"phish",
    )),
    ("virusdetected", (r"\bvirus", r"malware", r"infected", r"trojan", r"malicious",)),
    ("notaccept", (r"does not accept (?:e-?)?mail", r"accepts no mail", r"null mx", r"no mx record", r"not accepting (?:any )?mail",
                   r"host does not receive any mail", r"no smtp service", r"couldn'?t find a mail exchanger",)),
    ("hostunknown", (
        r"host (?:or domain name )?(?:is )?(?:unknown|not found)", r"unknown host", r"domain (?:name )?not found", r"no such domain",
        r"domain (?:does not|doesn'?t) exist", r"unrouteable (?:mail )?(?:domain|address)", r"unroutable address", r"name or service not known",
        r"domain (?:is )?(?:invalid|unknown)", r"unknown domain", r"recipient domain (?:is )?(?:invalid|unknown)",
        r"nxdomain", r"domain .{0,60}could(?:n'?t| not) be found", r"cannot find (?:the )?(?:mail )?server for",
        r"illegal host/domain name", r"invalid domain", r"the account or domain may not exist", r"no (?:valid )?a records?",
    )),
    ("userunknown", (
        r"user ?unknown", r"unknown (?:local )?(?:user|recipient|mailbox|address|email address|account)", r"no such (?:user|mailbox|recipient|address|account|person|local user|email)",
        r"(?:user|mailbox|recipient|address|account|addressee|e-?mail account|e-?mail address|destination address) (?:\S+ )?(?:does not|doesn'?t|did not|not) exists?",
        r"(?:user|mailbox|recipient|address|addressee) (?:\S+ )?(?:was |is )?not (?:found|known|listed|valid)",
        r"(?:invalid|bad|unknown|nonexistent|non-existent|inexistent) (?:destination |recipient |e-?mail )?(?:user|mailbox|recipient|address|account)",
        r"mailbox (?:unavailable|not (?:found|present|available)|invalid)", r"recipient (?:is )?(?:unknown|invalid|not (?:ok|exist))",
        r"address (?:is )?(?:unknown|invalid)", r"not a valid (?:user|recipient|mailbox|address)",
        r"no mailbox (?:here )?(?:by that name|found|available)", r"no (?:account|user) (?:by that name|here)", r"not listed in",
        r"recipnotfound", r"recipientnotfound", r"recipient not found", r"resolver\.adr\.", r"doesn'?t have an? .{0,40}account",
        r"badrcptto", r"validrcptto", r"there is no one at this address", r"email account that you tried to reach does not exist",
        r"utilisateur inconnu", r"destinataire (?:inconnu|invalide)", r"adresse (?:destinataire )?invalide", r"unbekannt",
        r"usuario (?:desconocido|no existe)", r"no existe", r"inesistente", r"non esiste", r"couldn'?t be found",
        r"address not found", r"addressee unknown", r"is not a known user", r"user not found", r"user doesn'?t exist",
        r"unknown or illegal alias", r"invalid address", r"address (?:does not|doesn'?t) exist", r"no valid recipients?",
        r"mailbox name not allowed", r"not our customer", r"recipient address rejected: access denied", r"could not be found", r"inactive email address",
    )),
    ("filtered", (
        r"(?:rejected|blocked|denied) by (?:the )?(?:recipient|user|domain|address)'?s? (?:filter|settings|preferences)",
        r"filter", r"because of (?:the )?recipient'?s? (?:settings|preferences)", r"email preferences", r"refused by (?:the )?recipient",
        r"delivery not authorized", r"user refuses", r"user reject",
    )),
    ("networkerror", (
        r"routing loop", r"mail (?:forwarding )?loop", r"loops? (?:back|detected)", r"hop count exceeded", r"too many hops",
        r"network (?:is )?unreachable", r"no route to host", r"connection (?:reset|closed|lost)", r"unable to resolve route",
        r"could not connect", r"couldn'?t connect", r"unable to connect", r"host name lookup failure", r"host not found, try again",
        r"name server reply", r"name server failure", r"temporary (?:dns|lookup|network) failure", r"host is unreachable",
        r"lost connection", r"dns records for the destination computer could not be found", r"message looping",
    )),
    ("policyviolation", (r"(?:for|by|our|due to|violat\w*|against) (?:local |our |the |security |content )?policy",
                         r"policy (?:reason|violation|rejection)", r"prohibited", r"header error",
                         r"administrative prohibition", r"violat", r"message not allowed", r"security issue",)),
    ("blocked", (
        r"blacklist", r"black list", r"blocklist", r"block list", r"\bdnsbl\b", r"\brbl\b", r"spamhaus", r"spamcop", r"sorbs",
        r"listed (?:at|on|in) ", r"client host (?:\[.{1,60}\] )?(?:rejected|blocked)", r"(?:ip|host|client|server|address|connection) (?:\S+ )?(?:is |has been |was )?(?:blocked|banned|denied|refused|blacklisted)",
        r"refused to talk to me", r"connection refused", r"no access from", r"not allowed to send",
        r"sending ip", r"banned", r"service refuse", r"invalid ip for sending", r"dynamic ip", r"dial-?up",
        r"ip address (?:\S+ )?(?:is )?blocked", r"connection refused",
        r"you are not allowed", r"my name was rejected",
    )),

    ("expired", (
        r"retry timeout exceeded", r"retry time not reached", r"giving up", r"could not be delivered for",
        r"message (?:has been )?(?:expired|timed out)", r"delivery time expired", r"too long in (?:the )?queue", r"in the queue too long",
        r"queue time", r"undelivered (?:for|after)", r"has been delayed", r"will be retried", r"unable to deliver (?:this message )?after",
        r"all hosts have been failing", r"delivery attempts will continue", r"no further attempts", r"connection timed out",
        r"for the last \d+ ", r"delivery failed \d+ attempts", r"did not accept our requests to connect", r"message expired",
        r"server did not respond", r"envelope expired", r"operation timed out", r"have been failing for a long time", r"could not find a gateway for",
    )),
    ("systemfull", (r"system (?:is )?full", r"insufficient system storage", r"disk full", r"out of disk", r"queue full",)),
    ("systemerror", (
        r"system error", r"internal (?:server )?error", r"server (?:configuration )?error",
        r"local error", r"service (?:not available|temporarily unavailable)", r"resources temporarily unavailable",
        r"mail system (?:error|problem)", r"misconfigur", r"duplicated message-id", r"operating system error", r"i/o error",
        r"error in processing", r"unable to (?:handle|process)", r"server is busy", r"processing error", r"unable to contact ldap",
    )),
    ("contenterror", (r"content error", r"headers? too large", r"invalid (?:mime|content)", r"malformed", r"media error",
                      r"illegal characters",)),
    ("mailererror", (r"mailer error", r"pipe to \|", r"command (?:died|failed|output)", r"procmail", r"x-unix;", r"exit (?:code|status)",
                     r"error in program",)),
    ("syntaxerror", (r"syntax error", r"command unrecognized", r"bad sequence", r"unrecognized command", r"command not implemented",
                     r"command parameter not implemented", r"line too long",)),
    ("onhold", (r"on hold", r"hold this message",)),
]

# Generic phrases: they only decide when the status code names no reason.
_WEAK_TABLE: list[tuple[str, tuple[str, ...]]] = [
    ("userunknown", (r"recipient address rejected(?:\.|\s*$)",)),
    ("systemerror", (r"temporary (?:failure|error|local problem)", r"try again later",)),
    ("policyviolation", (r"policy", r"not allowed",)),
    ("blocked", (r"refused", r"access denied", r"blocked",)),
    ("rejected", (r"rejected", r"denied",)),
]

_WEAK = [(reason, re.compile("|".join(f"(?:{p})" for p in pats))) for reason, pats in _WEAK_TABLE]
_COMPILED = [(reason, re.compile("|".join(f"(?:{p})" for p in pats))) for reason, pats in _TEXT_TABLE]
MAX_EVIDENCE_CHARS = 4000

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


def match_text(text: str, weak: bool = False) -> str | None:
    """The first reason whose phrase table matches `text` (any case), else None.

    With weak=True, the generic-phrase tier is searched instead.
    """
    if not text:
        return None
    low = text[:MAX_EVIDENCE_CHARS].lower()
    for reason, rx in (_WEAK if weak else _COMPILED):
        if rx.search(low):
            return reason
    return None


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
             evidence_reason: str | None = None, weak_reason: str | None = None) -> str:
    """Decide the reason for one recipient; see the module docstring for the order."""
    status = normalise_status(status or "") if status else None
    if (action or "").lower() in ("delivered", "relayed", "expanded", "deliverable") or (status or "").startswith("2."):
        return "delivered"
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
    if reason == "userunknown" and command == "DATA" and coded != "userunknown":
        reason = "filtered"
    if reason is None and command:
        reason = _COMMAND_REASON.get(command)
    if reason is None:
        reason = coded
    if reason is None:
        reason = "expired" if (action or "").lower() == "delayed" else "undefined"
    return reason


# A specific status code beats the text unless the text names one of these.
_CODE_WINS: dict[str, tuple[str, ...]] = {
    "mailboxfull": (), "requireptr": (), "authfailure": (), "hasmoved": (),
    "userunknown": ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept", "suspend",
                    "authfailure", "requireptr", "spamdetected", "toomanyconn", "speeding", "policyviolation"), "mesgtoobig": ("exceedlimit",), "exceedlimit": (),
    "rejected": (), "contenterror": (), "suspend": ("mailboxfull", "userunknown", "filtered"),
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

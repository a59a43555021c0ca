"""RFC 3834 automatic responses and the usual out-of-office forms.

An auto-reply is not a bounce (category `autoreply`, reason `vacation`),
but some auto-replies say the mailbox is gone; those are reported as
non-standard bounces by the caller using `says_gone`.
"""

from __future__ import annotations

import re
from email.message import Message

from .mime import get_header

_VACATION_SUBJECT = re.compile(
    r"out of (?:the )?office|auto(?:matic)?[ -]?(?:reply|response|respons|antwort|answer)|autoreply|"
    r"\bvacation\b|\bon leave\b|away from (?:the |my )?office|\babsent\b|\babsence\b|"
    r"abwesenheit|abwesend|nicht im (?:haus|b[uü]ro)|urlaub|"  # de
    r"absent|absence|r[ée]ponse automatique|en cong[ée]s?|"  # fr
    r"fuera de la oficina|respuesta autom[aá]tica|ausencia|vacaciones|"  # es
    r"fuori (?:sede|ufficio)|risposta automatica|assenza|"  # it
    r"afwezig|automatisch antwoord|buiten kantoor|"  # nl
    r"resposta autom[aá]tica|fora do escrit[oó]rio|f[ée]rias|"  # pt
    r"fr[aå]nvaro|automatiskt svar|autosvar|frav[æe]r|poza biurem|automatyczna odpowied[zź]|"  # sv/da/no/pl
    r"不在|自動返信|自动回复|休假|부재|自動回覆|отпуск|автоответ|нет на месте",
    re.I,
)
_GONE = re.compile(
    r"(?:inbox|mailbox|address|account)(?: \(?[^\s)]+\)?)? is no longer (?:in use|active|monitored|valid)|"
    r"no longer (?:works|employed|with (?:the company|us))|(?:account|mailbox) (?:has been )?(?:closed|deleted|deactivated)",
    re.I,
)


def detect(msg: Message) -> bool:
    """True when the headers mark `msg` as an automatic reply (not a bounce)."""
    auto = get_header(msg, "Auto-Submitted").lower()
    if auto.startswith("auto-replied"):
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Autoresponse") or msg.get("X-Vacation"):
        return True
    precedence = get_header(msg, "Precedence").lower()
    if precedence in ("auto_reply", "auto-reply"):
        return True
    if get_header(msg, "X-Auto-Response-Suppress") and _VACATION_SUBJECT.search(get_header(msg, "Subject")):
        return True
    if "oof" in get_header(msg, "X-MS-Exchange-Inbox-Rules-Loop").lower():
        return True
    subject = get_header(msg, "Subject")
    return bool(subject and _VACATION_SUBJECT.search(subject))


def says_gone(text: str) -> bool:
    """True when an auto-reply body says the mailbox no longer exists or is unused."""
    return bool(_GONE.search(text[:5000]))

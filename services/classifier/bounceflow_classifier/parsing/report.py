"""Turning a decoded mail into per-recipient records and a Classification.

`collect` sorts the parts of a bounce once (explanation text, delivery
status, feedback report, returned message); `from_dsn` and `from_text` build
recipient records from the structured report or the prose; `build` fills in
reason, hard/soft and the top-level fields from those records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from bounceflow.models import MESSAGE_ID_HEADER, Classification, RecipientStatus

from . import autoreply, dsn, lhosts, mime, nonstandard, reasons, rhosts, transcript

_RETURNED_TYPES = frozenset(("message/rfc822", "message/global", "text/rfc822-headers",
                             "message/rfc822-headers", "message/global-headers", "message/partial"))
_DSN_TYPES = frozenset(("message/delivery-status", "message/global-delivery-status"))
_FEEDBACK_TYPES = frozenset(("message/feedback-report",))
_MAX_TEXT_PARTS = 4
_SUCCESS_ACTIONS = ("delivered", "relayed", "expanded", "deliverable")
_LINK_RE = re.compile(rb"^" + MESSAGE_ID_HEADER.encode() + rb":[ \t]*<?([^\s>]+)", re.I | re.M)
_LINK_NAME = MESSAGE_ID_HEADER.lower().encode() + b":"
_MSGID_RE = re.compile(r"^Message-I[Dd]:[ \t]*\n?[ \t]*(<[^>\s]+>)", re.M)


@dataclass
class Collected:
    """The parts of a bounce, sorted once."""

    texts: list[str] = field(default_factory=list)
    delivery_status: str = ""
    feedback: str = ""
    returned: Message | None = None
    returned_text: str = ""
    explanation: str = ""
    exclude: set[str] = field(default_factory=set)
    sender_address: str = ""
    auto_reply: bool = False
    failed_recipients: list[str] = field(default_factory=list)
    is_dsn_report: bool = False


def collect(msg: Message) -> Collected:
    """Walk the (bounded) MIME tree once and sort what it holds."""
    c = Collected()
    html: list[str] = []
    dsn_texts: list[str] = []
    for part, depth in mime.walk(msg):
        ctype = mime.content_type(part)
        if ctype in _DSN_TYPES:
            dsn_texts.append(mime.part_text(part))
        elif ctype in _FEEDBACK_TYPES:
            c.feedback = c.feedback or mime.part_text(part)
        elif ctype in _RETURNED_TYPES:
            if c.returned is None:
                c.returned = mime.embedded_message(part)
        elif part.is_multipart():
            continue
        elif ctype.startswith("multipart/") and c.returned is None:  # boundary missing: read as text
            c.texts.append(mime.part_text(part))
        elif ctype == "text/html" and c.returned is None:
            html.append(mime.part_text(part))
        elif (ctype.startswith("text/") or ctype == "application/octet-stream" and not dsn_texts) and c.returned is None:
            if len(c.texts) < _MAX_TEXT_PARTS:
                c.texts.append(mime.part_text(part))
    if not c.texts and html:
        c.texts = html[:1]
    c.delivery_status = "\n\n".join(dsn_texts)
    body = "\n".join(c.texts)
    c.explanation, c.returned_text = nonstandard.cut_returned(body)
    c.sender_address = _first_address(mime.get_header(msg, "From"))
    c.exclude = {a for a in (c.sender_address, _first_address(mime.get_header(msg, "To"))) if a}
    if c.returned is not None:
        c.exclude.add(_first_address(mime.get_header(c.returned, "From")))
    elif c.returned_text:
        m = re.search(r"^From:.*$", c.returned_text, re.M)
        if m:
            c.exclude.add(_first_address(m.group(0)))
    if c.returned is None and c.returned_text:
        c.returned = _headers_of(c.returned_text)
    c.auto_reply = autoreply.detect(msg)
    c.failed_recipients = [a.lower() for a in nonstandard.ADDRESS.findall(mime.get_header(msg, "X-Failed-Recipients"))]
    c.is_dsn_report = mime.content_type(msg) == "multipart/report" and "delivery-status" in str(
        msg.get_param("report-type", "") or "").lower()
    return c


def _headers_of(text: str) -> Message | None:
    """Headers of a returned message quoted as text (after a cut marker)."""
    m = re.search(r"^[A-Za-z][\w-]*: ", text, re.M)
    if not m:
        return None
    head = text[m.start(): m.start() + 30_000]
    end = head.find("\n\n")
    return mime.parse_headers(head if end < 0 else head[:end])


def _first_address(value: str) -> str:
    m = nonstandard.ADDRESS.search(value or "")
    return m.group(0).lower() if m else ""


def linked_ids(raw: bytes, parts: Collected) -> dict:
    """original_message_id and linked_message_id from the returned message."""
    ids: dict = {}
    body_start = raw.find(b"\n\n")
    m = None
    if _LINK_NAME in raw.lower():  # cheap test before the line-anchored, case-blind search
        m = _LINK_RE.search(raw, body_start if body_start > 0 else 0, mime.MAX_INPUT_BYTES)
    if m:
        ids["linked_message_id"] = m.group(1).decode("ascii", "replace")
    if parts.returned is not None:
        mid = mime.get_header(parts.returned, "Message-ID")
        if mid:
            ids["original_message_id"] = mid
    elif parts.returned_text:
        m2 = _MSGID_RE.search(parts.returned_text)
        if m2:
            ids["original_message_id"] = m2.group(1)
    return ids


def from_dsn(parts: Collected) -> Classification | None:
    """Records from an RFC 3464 report (a real part, or report fields in the text)."""
    report = dsn.parse_fields(parts.delivery_status) if parts.delivery_status else None
    structured = bool(parts.delivery_status) or parts.is_dsn_report
    if report is None or not report.recipients:
        if "final-recipient:" in parts.explanation.lower():
            report = dsn.parse_fields(parts.explanation)
        if report is None or not report.recipients:
            return from_text(parts, dsn_category=True) if structured else None
    prose = nonstandard.find_recipients(parts.explanation, parts.exclude)
    prose_by_addr = {p.address: p for p in prose}
    records = []
    for i, r in enumerate(report.recipients[:100]):
        addr = dsn.address_of(r.get("final-recipient") or r.get("original-recipient") or r.get("x-actual-recipient"))
        if addr and not dsn.is_mailbox(addr):
            addr = dsn.mailbox_for(r, i, parts.failed_recipients, parts.explanation) or addr
        diag = dsn.strip_type(r.get("diagnostic-code")) if r.get("diagnostic-code") else ""
        unix_mailer = r.get("diagnostic-code").lower().startswith("x-unix")
        para = prose_by_addr.get(addr.lower())
        records.append({
            "recipient": addr or None,
            "original_recipient": dsn.address_of(r.get("original-recipient")) or None,
            "action": r.get("action").lower().split()[0] if r.get("action") else None,
            "status": dsn.normalise_status(r.get("status")),
            "diagnostic": diag or (para.diagnostic if para else None),
            "remote_mta": dsn.strip_type(r.get("remote-mta")) or None,
            "context": [para.diagnostic if para else "", parts.explanation],
            "unix_mailer": unix_mailer,
            "fixed_reason": lhosts.powermta_category(r.get("x-powermta-bouncecategory")),
        })
    if not any(rec["recipient"] for rec in records) and prose:
        records[0]["recipient"] = prose[0].address
    oeid = report.message_fields.get("original-envelope-id")
    cls = build(_dsn_category(records) if structured else "nonstandard-bounce", records, diagnose=True)
    if oeid:
        cls = cls.model_copy(update={"original_envelope_id": oeid})
    if cls.category == "nonstandard-bounce" and not cls.is_bounce:
        return None
    return cls


def _dsn_category(records: list[dict]) -> str:
    actions = []
    for rec in records:
        action = rec.get("action")
        if not action and rec.get("status"):
            action = {"5": "failed", "4": "delayed", "2": "delivered"}.get(rec["status"][0])
            rec["action"] = action
        actions.append(action)
    if "failed" in actions:
        return "dsn-failure"
    if "delayed" in actions:
        return "dsn-delay"
    if any(a in _SUCCESS_ACTIONS for a in actions):
        return "dsn-success"
    return "dsn-failure"


def from_text(parts: Collected, dsn_category: bool = False) -> Classification:
    """Records from an MTA's prose bounce (or a report whose status part is unusable)."""
    text = parts.explanation
    found = nonstandard.find_recipients(text, parts.exclude)
    if not found and parts.failed_recipients:  # Exim, Google: the header names them
        found = [nonstandard.TextRecipient(a, "") for a in parts.failed_recipients]
    if not found and parts.returned is not None:
        to = _first_address(mime.get_header(parts.returned, "To"))
        if to:
            found = [nonstandard.TextRecipient(to, nonstandard.squeeze(text))]
    if not found:
        found = [nonstandard.TextRecipient("", nonstandard.squeeze(text))]
    delayed = nonstandard.is_delay(text)
    fixed_reason = nonstandard.provider_reason(text)
    records = []
    for f in found[:100]:
        diag = f.diagnostic or nonstandard.squeeze(text)
        records.append({
            "recipient": f.address or None,
            "action": "delayed" if delayed else "failed",
            "diagnostic": diag,
            "context": [text],
            "fixed_reason": fixed_reason,
        })
    if dsn_category:
        return build("dsn-delay" if delayed else "dsn-failure", records, diagnose=True)
    return build("nonstandard-bounce", records, diagnose=True)


def build(category: str, records: list[dict], diagnose: bool = False, feedback_type: str | None = None) -> Classification:
    """Fill in codes, reason and hard/soft per record; lift the first failure to the top."""
    statuses = []
    for rec in records:
        context = rec.pop("context", [])
        if diagnose:
            _diagnose(rec, context)
        statuses.append(RecipientStatus(**rec))
    top = _pick_top(statuses)
    is_bounce = category in ("dsn-failure", "dsn-delay", "nonstandard-bounce")
    return Classification(
        category=category,
        is_bounce=is_bounce,
        bounce_type=top.bounce_type if top and is_bounce else None,
        reason=top.reason if top else None,
        status=top.status if top else None,
        smtp_code=top.smtp_code if top else None,
        recipient=top.recipient if top else None,
        diagnostic=top.diagnostic if top else None,
        remote_mta=top.remote_mta if top else None,
        action=top.action if top else None,
        feedback_type=feedback_type,
        recipients=statuses,
    )


def _pick_top(statuses: list[RecipientStatus]) -> RecipientStatus | None:
    for wanted in ("failed", "delayed"):
        for s in statuses:
            if s.action == wanted:
                return s
    return statuses[0] if statuses else None


def _diagnose(rec: dict, context: list[str]) -> None:
    """Codes, command, remote MTA, reason and hard/soft of one record, in place."""
    fixed_reason = rec.pop("fixed_reason", None)
    diag = rec.get("diagnostic") or ""
    texts = [nonstandard.remote_reply(diag), diag] + [c for c in context if c]
    if rec.get("status"):
        rec["status"] = dsn.prefer_status(rec["status"], diag)
        if rec.get("unix_mailer") and diag.strip().isdigit() and rec["status"][1:] == ".0.0":
            rec["status"] = rec["status"][0] + ".3.0"  # X-Unix; <exit status>: a mail system (mailer) failure, RFC 3463 X.3.0
    else:
        for t in texts[:3]:
            status = dsn.normalise_status(t)
            if status:
                rec["status"] = status
                break
    if rec.get("smtp_code") is None:
        for t in texts[:3]:
            code = nonstandard.smtp_code_of(t)
            if code:
                rec["smtp_code"] = code
                break
    if not rec.get("remote_mta"):
        rec["remote_mta"] = nonstandard.remote_mta_of(diag) or None
    if transcript.is_result(diag):  # a transcript result: other sessions' commands are not its stage
        command = nonstandard.command_of(diag)
    else:
        command = nonstandard.command_of(" ".join(texts[1:3])) or (
            nonstandard.command_of(texts[3]) if len(texts) > 3 else None)
    prepared: list[str] = []  # texts are prepared lazily: the first one or two usually decide
    evidence = weak = None
    evidence_at = len(texts)
    for i, t in enumerate(texts):
        if t:
            prepared.append(reasons.evidence_text(t))
            evidence = reasons.match_prepared(prepared[-1])
            if evidence:
                evidence_at = i
                break
    own_paragraph = 2 if context and context[0] else 1  # texts: remote reply, diagnostic, [own paragraph], ...
    if rec.pop("unix_mailer", False) and evidence_at > own_paragraph:
        # Diagnostic-Code: X-Unix; <exit status>: the local mailer program failed, unless the
        # diagnostic or the recipient's own paragraph of the prose says why
        evidence = "mailererror"
    if not evidence:
        for low in prepared:
            weak = reasons.match_prepared(low, weak=True)
            if weak:
                break
    lookup = reasons.is_mailbox_lookup(" ".join(texts[1:3]))
    reason = reasons.classify(rec.get("status"), rec.get("smtp_code"), diag, rec.get("action"), command,
                              evidence_reason=evidence or "", weak_reason=weak or "", mailbox_lookup=lookup)
    provider = None if reason == "delivered" else rhosts.find(rec.get("remote_mta"), diag, rec.get("status"), command)
    rec["reason"] = fixed_reason or provider or reason
    if rec.get("action") in _SUCCESS_ACTIONS or reason == "delivered":
        rec["bounce_type"] = None
    else:
        rec["bounce_type"] = reasons.bounce_type(rec.get("status"), rec.get("smtp_code"), reason, rec.get("action"))
    if rec.get("diagnostic"):
        rec["diagnostic"] = nonstandard.squeeze(rec["diagnostic"])

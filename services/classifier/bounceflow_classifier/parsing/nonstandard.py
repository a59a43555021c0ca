"""Bounce texts that are no RFC 3464 report: what MTAs write for humans.

Postfix, Exim, Sendmail, qmail, Exchange, Gmail, Yahoo, Courier, Domino,
GroupWise, mobile carriers' gateways and many others explain a failure in
prose. They share a few shapes — an address on its own line followed by the
remote server's reply, `addr... reason`, `<addr>: reason`, `Recipient:` or
`To:` labels — so this module finds the bounce text, cuts off the returned
message, and pulls (recipient, diagnostic, command, remote MTA) out of it.
Provider JSON notices (Amazon SES) are handled in `providers.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import transcript
from .phrasescan import PhraseScan

ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+")

_BOUNCE_FROM = re.compile(
    r"mailer-daemon|postmaster|mail delivery (?:subsystem|system)|mail ?administrator|"
    r"\bmaildelivery\b|\bmdaemon\b|bounce|\bnoreply-dsn|\bdaemon\b|returned|notification|failure|"
    r"mail ?(?:delivery|system|server)|smtp|ms ?exchange|\bmta\b|\bmailer\b",
    re.I,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status )?(?:notification|notice|report|failure|failed|problem|has failed|incomplete)|"
    r"failure notice|returned mail|mail delivery fail|delivery fail|could not (?:be )?(?:send|deliver)|"
    r"non[- ]?deliver|not (?:be )?delivered|message (?:not|could not be) delivered|rejected|bounce|"
    r"mail system error|delivery error|warning: (?:could not|message)|returned to sender|delayed mail|"
    r"delivery delay|unable to deliver|unzustellbar|non remis|no entregado|non recapitabile|"
    r"niet afgeleverd|nondeliverable|error sending|failed delivery|mail failure|sending failed|"
    r"mail could not|delivery notification|permanent error|undelivery|unknown user|user unknown|"
    r"系统退信|不達|エラー|配送失敗|返送",
    re.I,
)
_BOUNCE_BODY = re.compile(
    r"this is the (?:qmail-send program|mail system at host|mail delivery agent)|"
    r"this message was created automatically by mail delivery software|"
    r"the original message was received at|i'?m afraid i wasn'?t able to deliver|"
    r"could not be delivered to (?:one or more|the following)|delivery to the following recipients? (?:failed|has been delayed)|"
    r"following (?:address(?:es)? had|recipients? (?:could not|was|were))|"
    r"(?:message|mail) (?:could not|couldn'?t|was not|wasn'?t|cannot) (?:be )?delivered|"
    r"(?:unable|not able|failed) to deliver|undeliverable|permanent(?:ly)? (?:error|fatal|failure|failed)|"
    r"transcript of (?:the )?session|smtp error from remote|delivery has failed|has been (?:rejected|blocked|returned)|"
    r"rejected by (?:a )?remote|error occurred while trying to deliver|your message (?:to|was|has)|"
    r"delivery (?:failed|failure)|retry timeout exceeded|did not like our|not (?:be )?delivered|"
    r"returned to you|was not relayed",
    re.I,
)

# Where the returned message starts inside a bounce's text.
_CUT = re.compile(
    r"^[ \t]*(?:-{2,}.{0,15}(?:below this line is a copy of the message|this is a copy of the message|"
    r"original message|returned message|the header of the original message|undelivered message|"
    r"message headers follow|original message headers|message header follows|included message|"
    r"copy of (?:your|the) message|forwarded message|unsent message)|"
    r"(?:original|returned|unsent|undelivered) message (?:headers?|follows)\b|"
    r"-{3,} ?original message ?-{3,}|content-type: message/rfc822|"
    r"the (?:header|headers|text) of the original message|"
    r"\*{3,}.{0,20}(?:original message|message headers)|"
    r"message headers? follows?|-+ ?the (?:header|body) of the (?:original )?message)",
    re.M,
)  # lower-case phrases, searched in lower-cased text (twice as fast as re.I)
_CUT_ANY_CASE = re.compile(_CUT.pattern, re.I | re.M)
_HEADERS_START = re.compile(r"^(?:Return-Path|Received|Message-I[dD]|DKIM-Signature|X-Original-To|Delivered-To|MIME-Version): .*\n(?:[ \t].*\n)*[A-Za-z][\w-]*: ", re.M)

# Where a diagnostic names the refused SMTP command: (command, phrase) in priority order.
_COMMANDS = PhraseScan([
    *(("DATA", p) for p in (r"end of data", r"data command", r"\[data\]", r"smtp:data", r">>> data", r"final data",
                            r"'data'", r"(?:after|in|our) data\b")),
    *(("RCPT", p) for p in (r"rcpt[ _]to\b", r"does not like recipient", r"\[rcpt_?to\]", r"smtp:rcpt", r">>> rcpt",
                            r"rcpt command")),
    *(("MAIL", p) for p in (r"mail[ _]from\b", r"sender was rejected", r"\[mail_?from\]", r"smtp:mail", r">>> mail",
                            r"mail command")),
    *(("CONN", p) for p in (r"after initial connection", r"refused to talk to me", r"greeting", r"banner",
                            r"connection rejected", r"smtp:conn", r"\[conn\]")),
    *(("HELO", p) for p in (r"(?:after|in reply to|like our) helo\b", r"(?:after|in reply to|like our) ehlo\b",
                            r"my name was rejected", r"\[helo\]", r"\[ehlo\]", r"smtp:(?:helo|ehlo)", r">>> (?:helo|ehlo)")),
])
_REMOTE = re.compile(r"\bhost ([A-Za-z0-9][A-Za-z0-9.-]+\.[A-Za-z]{2,})\s*\[|remote (?:host|server|mta)[: ]+([A-Za-z0-9][A-Za-z0-9.-]+)|"
                     r"^([A-Za-z0-9][A-Za-z0-9.-]+\.[A-Za-z]{2,}) \[[\d.:a-fA-F]+\] (?:did not like|said)", re.I | re.M)
# A reply code: not inside a number, an enhanced code or a "#550"-style label, and not the
# first part of one ("550 5.1.1" counts; "550.1" does not). Written to start with the
# digits so the regex engine can skip ahead to candidate characters.
_SMTP_CODE = re.compile(r"([245][0-5]\d)(?:(?<![\d.#-]...)(?:[ -]|$)(?![\d]*\.\d+\.\d)|(?<![\d.]...)(?=[ -][245]\.\d{1,3}\.\d))", re.M)
_DELAY = PhraseScan([("delay", p) for p in (
    r"this is a warning only", r"will be retried", r"will (?:continue|keep) (?:trying|to try)", r"has been delayed",
    r"delivery (?:is )?delayed", r"still trying", r"delay reason", r"not yet been delivered",
    r"temporar(?:y|ily) (?:failure|problem|error)", r"will retry", r"retrying", r"delivery incomplete")])


@dataclass
class TextRecipient:
    """One recipient found in a human-readable bounce text."""

    address: str
    diagnostic: str
    command: str | None = None
    remote_mta: str | None = None


def looks_like_bounce(sender: str, subject: str, text: str) -> bool:
    """True when headers or text carry the marks of a bounce (not an ordinary mail)."""
    if _BOUNCE_SUBJECT.search(subject):
        return True
    head = text[:4000]
    if _BOUNCE_FROM.search(sender) and (_BOUNCE_BODY.search(head) or ADDRESS.search(head)):
        return True
    return bool(_BOUNCE_BODY.search(head))


def cut_returned(text: str) -> tuple[str, str]:
    """Split a bounce text into (explanation, returned message or '')."""
    low = text.lower()
    m = _CUT.search(low) if len(low) == len(text) else _CUT_ANY_CASE.search(text)
    h = _HEADERS_START.search(text)
    pos = min(x.start() for x in (m, h) if x) if (m or h) else None
    if pos is None or pos < 20:
        if m and m.start() < 20 and h and h.start() >= 20:
            pos = h.start()
        elif pos is None or (pos < 20 and not h):
            return text, ""
    return text[:pos], text[pos:]


def command_of(text: str) -> str | None:
    """The SMTP command a diagnostic says was refused (CONN, HELO, MAIL, RCPT, DATA): the first named."""
    found = _COMMANDS.search(text[:3000].lower())
    return found[0] if found else None


_REPLY = re.compile(
    r"(?:\bsaid|returned(?: was)?|error (?:that the other server returned was|message below)|responded|"
    r"response (?:was|from remote server)|reason for the problem|remote server replied)\s*:?\s*(.{8,400})",
    re.I | re.S,
)


def remote_reply(text: str) -> str:
    """What the remote server answered, quoted in a bounce text ('' if not found)."""
    m = _REPLY.search(text)
    return squeeze(m.group(1), 400) if m else ""


def remote_mta_of(text: str) -> str | None:
    """Remote host named in a diagnostic, if any."""
    m = _REMOTE.search(text)
    if not m:
        return None
    return next(g for g in m.groups() if g).rstrip(".")


def smtp_code_of(text: str) -> int | None:
    """First SMTP reply code (4xx/5xx/2xx) in a diagnostic."""
    for m in _SMTP_CODE.finditer(text):
        value = int(m.group(1))
        if value >= 400 or value in (250, 251):
            return value
    return None


def is_delay(text: str) -> bool:
    """True when a bounce text reports a delay rather than a failure."""
    return _DELAY.search(text.lower()) is not None


def squeeze(text: str, limit: int = 1000) -> str:
    """Collapse whitespace and bound the length of a diagnostic."""
    return " ".join(text.split())[:limit]


# An address standing where MTAs put the failed recipient: alone on its line,
# as `<addr>:` / `addr...` at the start of a line, or after a label.
_STRONG = re.compile(
    r"^\s*(?:(?:final-|original-|failed |invalid |unknown )?(?:recipient|addressee|destinataire|empfänger|rcpt to|"
    r"recipient address|address|e-?mail|user)s?(?:\(s\))?\s*[:=]\s*)?[\"']?<?(?P<a>[^\s<>@\"']+@[^\s<>\"']+?)>?[\"']?"
    r"(?:\s*(?:$|:|\.\.\.|,|\s\(|\s+(?:on|\[|<|-)))",
    re.I,
)


def find_recipients(text: str, exclude: set[str]) -> list[TextRecipient]:
    """Recipients with their diagnostic paragraphs, in order of appearance.

    Addresses in the places MTAs put failed recipients win; other addresses
    in the text count only if none of those exist and they are not the
    bounce's own sender/recipient or the returned message's sender.
    """
    lines = text.splitlines()[:2000]
    strong: dict[str, TextRecipient] = {}
    weak: dict[str, TextRecipient] = {}
    for i, line in enumerate(lines):
        if "@" not in line:
            continue
        sm = _STRONG.match(line)
        if sm and ADDRESS.fullmatch(sm.group("a").rstrip(".")):
            addr = sm.group("a").rstrip(".").lower()
            if addr not in strong and not _is_noise(line, sm, addr):
                strong[addr] = TextRecipient(addr, _paragraph(lines, i, sm.end("a")))
            continue
        rm = transcript.RECIPIENT_LINE.match(line)
        if rm and strong:  # a transcript's result line says more than the address list above it
            am = ADDRESS.search(line, 0, rm.end())
            if am and am.group(0).lower() in strong:
                strong[am.group(0).lower()] = TextRecipient(am.group(0).lower(), _paragraph(lines, i, am.end()))
        if strong:
            continue
        for m in ADDRESS.finditer(line):
            addr = m.group(0).strip(".'\"").lower()
            if addr in exclude or addr in weak or _is_noise(line, m, addr):
                continue
            weak[addr] = TextRecipient(addr, _paragraph(lines, i, m.end()))
    return list((strong or weak).values())


_NOISE = re.compile(r"(?:^|\W)(?:from|sender|return-path|reply-to|mail from|envelope-from|sent by|message-id|"
                    r"references|in-reply-to|posted by|x-[\w-]+)\s*:?\s*<?$|(?:ultimately generated from|was sent by)\s*<?$|"
                    r"https?://\S*$|mailto:$|postmaster.*$", re.I)


def _is_noise(line: str, m: re.Match, addr: str) -> bool:
    before = line[: m.start()]
    if _NOISE.search(before[-60:]):
        return True
    local = addr.split("@", 1)[0]
    return local in ("mailer-daemon", "postmaster", "mail-daemon", "root", "noreply", "no-reply", "abuse")


def _paragraph(lines: list[str], i: int, col: int) -> str:
    """The diagnostic for an address on line i: rest of the line plus its block.

    In a session transcript the command line is kept (it names the SMTP stage),
    the exchange a result line reports on is put first, and the text stops where
    the next recipient's or session's text begins (see transcript.py).
    """
    in_transcript = transcript.is_command(lines[i]) or transcript.RECIPIENT_LINE.match(lines[i]) is not None
    rest = lines[i].strip() if in_transcript else lines[i][col:].strip(" >:,;\t")
    out = [x for x in (transcript.exchange_before(lines, i), rest) if x]
    j = i + 1
    blank = 0
    while j < len(lines) and j < i + 25:
        line = lines[j]
        if not line.strip():
            blank += 1
            if out and blank >= 1:
                if sum(len(x) for x in out) > 30:
                    break
            j += 1
            continue
        blank = 0
        if in_transcript and out and transcript.ends_paragraph(line):
            break
        if ADDRESS.search(line) and out and re.match(r"^\s*<?[^\s@]+@[^\s]+>?:?\s*$", line):
            break
        out.append(line.strip())
        j += 1
    return squeeze("\n".join(out))


# Provider bounces whose meaning is fixed by who sends them, whatever the
# language of the text: (marker in the bounce text, reason).
_PROVIDER_REASONS = (
    # Google Groups: the group does not exist or does not accept your posts.
    (re.compile(r"groups\.google\.com/support|support\.google\.com/groups", re.I), "rejected"),
)


def provider_reason(text: str) -> str | None:
    """Reason implied by the provider that wrote this bounce text, if it fixes one."""
    for rx, reason in _PROVIDER_REASONS:
        if rx.search(text):
            return reason
    return None

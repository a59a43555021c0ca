"""From an accepted submission to `outgoing` records, without I/O.

Both interfaces end here: SMTP with the DATA bytes, REST with a `mime`
string or the parts to compose one. A message for N recipients becomes N
records, each with its own message id (also its VERP id) and its own copy of
the MIME carrying that id in `X-Bounceflow-Id`, so a bounce that lost its
envelope can still be linked. The customer's bytes are otherwise kept as
they are (headers are only prepended, which keeps DKIM signatures valid);
a Message-ID is added when the message has none.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from bounceflow.models import MESSAGE_ID_HEADER, DsnRequest, OutgoingMessage
from bounceflow.smtp_addresses import DOT_ATOM
from bounceflow.verp import new_message_id


class SubmissionError(ValueError):
    """The submission cannot be accepted; `field` names the culprit (REST 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# `local@domain`, ASCII dot-atom local part, LDH domain labels of 1-63 characters:
# the everyday address, which email_validator accepts unless its domain is too
# long, has a `--` (R-LDH / Punycode rules) or is special-use. Those and every
# other form go to email_validator (tests compare both).
_LDH_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"{DOT_ATOM}@({_LDH_LABEL}(?:\.{_LDH_LABEL})*)")
_SPECIAL_USE_SUFFIXES = tuple(f".{d}" for d in SPECIAL_USE_DOMAIN_NAMES)
_MAX_ADDRESS = 254  # RFC 5321 4.5.3.1.3 as email_validator applies it
_MAX_DOMAIN = 253


def address_problem(address: str) -> str | None:
    """Why `address` is no usable mailbox (None when it is); special-use domains such as .localhost are refused.

    The everyday form is answered by a regular expression: email_validator
    costs ~40 µs per address and every RCPT is checked (the recipients of
    bulk mail rarely repeat, so a cache does not help them).
    """
    match = _PLAIN_ADDRESS.fullmatch(address)
    if match is not None and len(address) <= _MAX_ADDRESS:
        domain = match.group(1)
        lower = "." + domain.lower()
        if len(domain) <= _MAX_DOMAIN and "--" not in domain and not lower.endswith(_SPECIAL_USE_SUFFIXES):
            return None
    return _validator_problem(address)


@functools.lru_cache(maxsize=4096)
def _validator_problem(address: str) -> str | None:
    """email_validator's verdict, cached (pure, no DNS)."""
    try:
        validate_email(
            address, check_deliverability=False, globally_deliverable=False,
            allow_quoted_local=True, allow_domain_literal=True,
        )
    except EmailNotValidError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class RecipientRequest:
    """One envelope recipient and what it asked for with DSN."""

    address: str
    dsn: DsnRequest = field(default_factory=DsnRequest)


@dataclass(frozen=True)
class Submission:
    """A message handed to us, normalised across SMTP and REST."""

    account: str
    source: str  # "smtp" | "rest"
    envelope_from: str  # "" for <> / no envelope
    recipients: tuple[RecipientRequest, ...]
    track_bounces: bool
    mime: bytes


def _line_ending(mime: bytes) -> bytes:
    end = mime.find(b"\n")
    return b"\r\n" if end > 0 and mime[end - 1 : end] == b"\r" else b"\n"


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _split_header_block(mime: bytes) -> tuple[bytes, bytes]:
    """(header block incl. its last line ending, rest incl. the blank line)."""
    match = _BLANK_LINE.search(mime)
    if match is None:
        return mime, b""
    cut = match.start() + (2 if mime[match.start() : match.start() + 1] == b"\r" else 1)
    return mime[:cut], mime[cut:]


def header_values(mime: bytes, name: str) -> list[str]:
    """All values of header `name` in the message's header block (as email's compat32 parser gives them)."""
    return _values_in_head(_split_header_block(mime)[0], name)


def _values_in_head(head: bytes, name: str) -> list[str]:
    if name.lower().encode() + b":" not in head.lower():
        return []  # the parser names a header by the text before the line's first colon
    values = _simple_header_values(head, name)
    if values is None:
        headers = BytesHeaderParser().parsebytes(head + b"\r\n")
        values = [str(v) for v in headers.get_all(name, [])]
    return values


_SIMPLE_HEADER_LINE = re.compile(r"[\x21-\x39\x3b-\x7e]+:|[ \t]")


def _simple_header_values(head: bytes, name: str) -> list[str] | None:
    """`header_values` without the parser for a plain block (ASCII, CRLF only, every line a header
    or a continuation, no `From ` line); None for anything else, which the parser reads."""
    crlf = head.count(b"\r\n")
    if not head.isascii() or not head.endswith(b"\r\n") or head.count(b"\r") != crlf or head.count(b"\n") != crlf:
        return None
    if head[:1] in (b" ", b"\t"):
        return None  # a continuation line first: the parser records a defect
    wanted = name.lower()
    values: list[str] = []
    current: list[str] | None = None  # source lines of the header being read, when it is `name`
    for line in head.decode("ascii").split("\r\n")[:-1]:
        line += "\r\n"
        if not _SIMPLE_HEADER_LINE.match(line) or line.startswith("From "):
            return None
        if line[0] in " \t":
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            values.append(_header_value(current))
        field_name, _, _ = line.partition(":")
        current = [line] if field_name.lower() == wanted else None
    if current is not None:
        values.append(_header_value(current))
    return values


def _header_value(lines: list[str]) -> str:
    """compat32's `header_source_parse`: the value with its folding kept."""
    value = lines[0].split(":", 1)[1].lstrip(" \t") + "".join(lines[1:])
    return value.rstrip("\r\n")


def _drop_header(header_block: bytes, name: str) -> bytes:
    """Remove every occurrence of `name` (with its folded continuation lines)."""
    prefix = name.lower().encode() + b":"
    if prefix not in header_block.lower():
        return header_block
    lines = header_block.splitlines(keepends=True)
    kept, dropping = [], False
    for line in lines:
        if line[:1] in (b" ", b"\t") and dropping:
            continue
        dropping = line.lower().startswith(prefix)
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def stamp(mime: bytes, message_id: str, message_id_header: str | None) -> bytes:
    """Our id header on top (any copy of it in the input removed); Message-ID when given."""
    return _stamped(_line_ending(mime), *_split_header_block(mime), message_id, message_id_header)


def _stamped(eol: bytes, head: bytes, rest: bytes, message_id: str, message_id_header: str | None) -> bytes:
    head = _drop_header(head, MESSAGE_ID_HEADER)
    added = f"{MESSAGE_ID_HEADER}: {message_id}".encode() + eol
    if message_id_header is not None:
        added += f"Message-ID: {message_id_header}".encode() + eol
    return added + head + rest


def make_message_id_header(hostname: str) -> str:
    """A fresh RFC 5322 Message-ID on our host name."""
    return f"<{new_message_id()}@{hostname}>"


def build_records(submission: Submission, hostname: str, now: datetime | None = None) -> list[OutgoingMessage]:
    """One `outgoing` record per recipient, each with a new message id."""
    if not submission.recipients:
        raise SubmissionError("recipients", "at least one recipient is required")
    now = now or datetime.now(timezone.utc)
    eol = _line_ending(submission.mime)
    head, rest = _split_header_block(submission.mime)  # once, not once per recipient
    missing_message_id = not _values_in_head(head, "Message-ID")
    message_id_header = make_message_id_header(hostname) if missing_message_id else None
    records = []
    for recipient in submission.recipients:
        message_id = new_message_id()
        copy = _stamped(eol, head, rest, message_id, message_id_header)
        records.append(
            OutgoingMessage(
                message_id=message_id,
                account=submission.account,
                source=submission.source,
                submitted_at=now,
                envelope_from=submission.envelope_from,
                recipient=recipient.address,
                track_bounces=submission.track_bounces,
                dsn=recipient.dsn,
                mime_b64=base64.b64encode(copy).decode(),
            )
        )
    return records


def normalise_line_endings(text: str) -> bytes:
    """REST `mime` strings may use LF; SMTP wants CRLF."""
    return re.sub(r"\r?\n", "\r\n", text).encode("utf-8", errors="surrogateescape")


def compose_mime(
    *,
    from_: str,
    to: list[str],
    subject: str | None,
    html: str | None,
    text: str | None,
    hostname: str,
    now: datetime | None = None,
) -> bytes:
    """A complete MIME message from REST parts (text and/or html; both: multipart/alternative)."""
    if html is None and text is None:
        raise SubmissionError("html", "give html, text or a complete mime")
    try:
        return _compose(from_, to, subject, html, text, hostname, now)
    except (ValueError, UnicodeError) as exc:
        raise SubmissionError("body", f"cannot compose a message from these parts: {exc}") from None


class _HeaderClasses(HeaderRegistry):
    """email's header factory, building each header's class once instead of once per header made."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


_COMPOSE_POLICY = SMTP_POLICY.clone(header_factory=_HeaderClasses())


def _compose(from_, to, subject, html, text, hostname, now) -> bytes:
    msg = EmailMessage(policy=_COMPOSE_POLICY)
    msg["From"] = from_
    msg["To"] = ", ".join(to) if to else "undisclosed-recipients:;"
    if subject is not None:
        msg["Subject"] = subject
    msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    msg["Message-ID"] = make_message_id_header(hostname)
    if text is not None:
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html, subtype="html")
    return msg.as_bytes()

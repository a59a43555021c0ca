"""The envelope and DSN parameters we give the next hop, per DESIGN.md.

Pure functions over an `OutgoingMessage`:

- tracking on: MAIL FROM is our signed VERP address (also for a customer
  envelope of `<>`: we record failures, the notifier forwards nothing);
- tracking off: the MIME's `Return-Path` header if it has one, else the
  submitted envelope; `<>` stays `<>`;
- either way the `Return-Path` header leaves the MIME (the final MTA writes
  it from our MAIL FROM) and our `X-Bounceflow-Id` header is set, so a bounce
  that lost its envelope can still be linked;
- DSN parameters only when the next hop advertises DSN: NOTIFY=FAILURE,DELAY
  (+SUCCESS when the customer asked) while tracking, the customer's NOTIFY
  otherwise; RET and ORCPT as given; ENVID = our message id while tracking
  (the customer's is restored when a DSN is forwarded), the customer's otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from bounceflow.models import MESSAGE_ID_HEADER, DsnRequest, OutgoingMessage
from bounceflow.verp import VerpCodec

_HEADER_END = re.compile(rb"\r?\n(\r?\n)")
_ANGLE = re.compile(r"<\s*([^<>]*?)\s*>")
_LOCAL_FORBIDDEN = re.compile(r"[\s<>()\[\],;:\\\"@\x00-\x1f\x7f]")
_DOMAIN_LITERAL = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
_XTEXT_SAFE = re.compile(r"[!-*,-<>-~]*")  # printable ASCII but '+' and '='


@lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> bool:
    if _DOMAIN_LITERAL.match(domain):
        return True
    labels = domain.rstrip(".").split(".")
    return len(labels) >= 1 and all(
        label and len(label) <= 63 and label[0] != "-" and label[-1] != "-"
        and all(c.isalnum() or c == "-" for c in label)
        for label in labels
    )


def is_valid_address(address: str) -> bool:
    """A plain `local@domain` usable in an SMTP path (no quoted local parts, no source routes)."""
    if not address or len(address) > 320:
        return False
    local, sep, domain = address.rpartition("@")
    return (
        bool(sep) and 0 < len(local) <= 64 and 0 < len(domain) <= 255
        and not _LOCAL_FORBIDDEN.search(local) and _valid_domain(domain)
    )


def recipient_domain(address: str) -> str:
    """Lower-case domain of an address (the routing key)."""
    return address.rpartition("@")[2].rstrip(".").lower()


def split_mime(mime: bytes) -> tuple[list[bytes], bytes, bytes]:
    """Header fields (each with its folded continuation lines), the separator, the body."""
    match = _HEADER_END.search(mime)
    if match is None:
        head, sep, body = mime, b"", b""
    else:
        head, sep, body = mime[: match.start(1)], match.group(1), mime[match.end() :]
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    if fields and not fields[-1].endswith(b"\n"):
        fields[-1] += b"\r\n"
    return fields, sep, body


def _field_name(header: bytes) -> bytes:
    return header.split(b":", 1)[0].strip().lower()


def return_path(mime: bytes) -> str | None:
    """The address of the first `Return-Path` header ('' for `<>`), None when absent or unusable."""
    fields, _, _ = split_mime(mime)
    for header in fields:
        if _field_name(header) == b"return-path":
            value = header.split(b":", 1)[1].decode("utf-8", "replace")
            value = " ".join(value.split())
            match = _ANGLE.search(value)
            address = match.group(1) if match else value.strip()
            if address == "" and match:
                return ""
            return address if is_valid_address(address) else None
    return None


_DROPPED = (b"return-path", MESSAGE_ID_HEADER.lower().encode())


def rewrite_mime(mime: bytes, message_id: str) -> bytes:
    """Drop every `Return-Path` and `X-Bounceflow-Id` header, then prepend ours."""
    ours = f"{MESSAGE_ID_HEADER}: {message_id}\r\n".encode()
    end = _HEADER_END.search(mime)
    if end is not None:
        head = mime[: end.start(1)].lower()
        if not any(name in head for name in _DROPPED):  # the usual case: splice, no field splitting
            return ours + mime
    fields, sep, body = split_mime(mime)
    kept = [h for h in fields if _field_name(h) not in _DROPPED]
    if not sep:
        sep = b"\r\n"
    return ours + b"".join(kept) + sep + body


def mail_from(message: OutgoingMessage, codec: VerpCodec, bounce_domain: str, mime: bytes | None = None) -> str:
    """The MAIL FROM address ('' for `<>`); `mime` is the decoded message if the caller has it."""
    if message.track_bounces:
        return codec.address(message.message_id, bounce_domain)
    header = return_path(message.mime if mime is None else mime)
    if header is not None:
        return header
    return message.envelope_from


def xtext(value: str) -> str:
    """RFC 3461 xtext: `+XX` for '+', '=' and anything outside printable ASCII."""
    if _XTEXT_SAFE.fullmatch(value):  # ids and most addresses: nothing to escape
        return value
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


@dataclass(frozen=True)
class DsnParameters:
    """ESMTP parameters for MAIL FROM and RCPT TO (empty when the hop lacks DSN)."""

    mail: list[str] = field(default_factory=list)
    rcpt: list[str] = field(default_factory=list)


def dsn_parameters(message: OutgoingMessage, next_hop_has_dsn: bool) -> DsnParameters:
    """What we ask of the next hop (RFC 3461), given whether it advertised DSN."""
    if not next_hop_has_dsn:
        return DsnParameters()
    dsn: DsnRequest = message.dsn
    notify = _notify(message.track_bounces, dsn.notify)
    mail, rcpt = [], []
    if dsn.ret:
        mail.append(f"RET={dsn.ret}")
    envid = message.message_id if message.track_bounces else dsn.envid
    if envid:
        mail.append(f"ENVID={xtext(envid)}")
    if notify:
        rcpt.append("NOTIFY=" + ",".join(notify))
    if dsn.orcpt:
        addr_type, sep, address = dsn.orcpt.partition(";")
        if sep and addr_type.strip() and address.strip():
            rcpt.append(f"ORCPT={addr_type.strip()};{xtext(address.strip())}")
    return DsnParameters(mail, rcpt)


def _notify(tracking: bool, requested: list[str] | None) -> list[str]:
    if not tracking:
        return list(requested or [])
    wanted = ["SUCCESS"] if requested and "SUCCESS" in requested else []
    return [*wanted, "FAILURE", "DELAY"]

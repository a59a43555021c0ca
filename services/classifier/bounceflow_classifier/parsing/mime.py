"""Safe, bounded decoding around the stdlib `email` package.

Bounces are hostile input: broken MIME, lying charsets, 8-bit headers, huge
attachments. Everything that turns bytes into text goes through here, so the
limits (bytes read, parts walked, nesting depth, text kept) live in one place.
"""

from __future__ import annotations

import email.header
import quopri
import re
import binascii
from email.message import Message

from . import mimetree

# Bounds: the part of a bounce that says why it bounced is at its start; a
# returned 50 MB attachment only needs its headers.
MAX_INPUT_BYTES = 1_000_000
MAX_PARTS = 64
MAX_DEPTH = 6
MAX_TEXT_CHARS = 200_000
MAX_LINE_CHARS = 20_000

_CHARSET_ALIASES = {
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "us-ascii": "ascii",
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "iso-2022-jp-ms": "iso-2022-jp",
    "cp932": "cp932",
}


def load(raw: bytes) -> Message:
    """Parse raw bytes (capped at MAX_INPUT_BYTES) into a compat32 Message tree (see mimetree)."""
    if len(raw) > MAX_INPUT_BYTES:
        raw = raw[:MAX_INPUT_BYTES]
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")
    return mimetree.parse(raw.decode("ascii", "surrogateescape"))


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, falling back to UTF-8, then Latin-1."""
    if charset:
        cs = charset.strip().strip('"').lower()
        cs = _CHARSET_ALIASES.get(cs, cs)
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def header_text(value: object) -> str:
    """Return a header value as text, decoding RFC 2047 words; never raises."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):  # compat32 wraps 8-bit header bytes in a Header
        try:
            value = "".join(decode_bytes(b, None if cs in (None, "unknown-8bit") else cs) if isinstance(b, bytes) else b
                            for b, cs in email.header.decode_header(value))
        except Exception:
            value = str(value)
    text = str(value)
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS]
    if not text.isascii():  # 8-bit header bytes arrive as surrogate escapes
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if "=?" in text:
        try:
            pieces = email.header.decode_header(text)
            out = []
            for chunk, cs in pieces:
                out.append(decode_bytes(chunk, cs) if isinstance(chunk, bytes) else chunk)
            text = "".join(out)
        except (ValueError, LookupError, AssertionError, binascii.Error):
            pass
    return " ".join(text.split())


def get_header(msg: Message, name: str) -> str:
    """Decoded value of the first `name` header of msg, or ''."""
    try:
        return header_text(msg.get(name))
    except Exception:  # a malformed header must not sink the whole parse
        return ""


def content_type(part: Message) -> str:
    """Lower-cased content type, tolerant of garbage."""
    if isinstance(part, mimetree.Part):
        return part.ctype
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def part_text(part: Message, limit: int = MAX_TEXT_CHARS) -> str:
    """Decoded text of a non-multipart part, bounded to `limit` characters."""
    payload = part.get_payload()
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if isinstance(payload, list):  # message/delivery-status: compat32 parsed it as header blocks
        text = "\n\n".join(fields_text(p) for p in payload[:MAX_PARTS] if isinstance(p, Message))
        if cte not in ("base64", "quoted-printable"):
            return text[:limit]
        payload = text
    if not isinstance(payload, str):
        return ""
    raw = payload[: limit * 2]
    if cte == "base64":
        data = _b64decode(raw)
    elif cte == "quoted-printable":
        data = quopri.decodestring(_to_bytes(raw))
    else:
        data = _to_bytes(raw)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(data, charset)
    if "<" in text and content_type(part) == "text/html":
        text = html_to_text(text)
    return text[:limit]


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # text that was parsed from str, not bytes
        return text.encode("utf-8", "surrogateescape")


def _b64decode(text: str) -> bytes:
    clean = re.sub(r"[^A-Za-z0-9+/]", "", text)
    clean = clean[: len(clean) - len(clean) % 4]
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:
        return b""


def _raw_header(value: object) -> str:
    text = str(value)[:MAX_LINE_CHARS]
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def fields_text(block: Message) -> str:
    """Render a parsed header block (e.g. of message/delivery-status) as text."""
    lines = [f"{k}: {_raw_header(v)}" for k, v in block.items()]
    body = block.get_payload()
    if isinstance(body, str) and body.strip():
        lines.append(body)
    return "\n".join(lines)


_TAG = re.compile(r"<(script|style)\b.*?</\1>|<br\s*/?>|</?(p|div|tr|li|h\d)\b[^>]*>|<[^>]+>", re.I | re.S)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def html_to_text(html: str) -> str:
    """Crude HTML to text: good enough to read a bounce message out of it."""
    def repl(m: re.Match) -> str:
        tag = m.group(0).lower()
        if tag.startswith(("<br", "<p", "</p", "<div", "</div", "<tr", "</tr", "<li", "<h", "</h")):
            return "\n"
        return ""

    text = _TAG.sub(repl, html)
    for ent, ch in _ENTITIES.items():
        text = text.replace(ent, ch)
    return text


def walk(msg: Message, max_parts: int = MAX_PARTS, max_depth: int = MAX_DEPTH):
    """Yield (part, depth) depth-first, bounded in parts and nesting depth.

    message/rfc822 parts are yielded but not descended into (depth counts
    them), so a returned message's own attachments are not mistaken for the
    bounce's parts.
    """
    stack = [(msg, 0)]
    count = 0
    while stack and count < max_parts:
        part, depth = stack.pop()
        count += 1
        yield part, depth
        if depth >= max_depth or not part.is_multipart():
            continue
        if content_type(part) in ("message/rfc822", "message/global"):
            continue
        children = part.get_payload()
        if isinstance(children, list):
            stack.extend((c, depth + 1) for c in reversed(children[:max_parts]) if isinstance(c, Message))


def parse_headers(text: str) -> Message:
    """A header-only Message from text (used for returned headers quoted in prose)."""
    return mimetree.parse(text + "\n\n")


def embedded_message(part: Message) -> Message | None:
    """The Message inside a message/rfc822 part, or parsed from text/rfc822-headers."""
    payload = part.get_payload()
    if isinstance(payload, list):
        for p in payload:
            if isinstance(p, Message):
                return p
        return None
    if isinstance(payload, str):
        text = part_text(part, 100_000)
        return mimetree.parse(text.lstrip().replace("\r\n", "\n"))
    return None

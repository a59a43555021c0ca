"""A fast, bounded MIME tree builder producing compat32 `Message` objects.

The stdlib feed parser reads a mail line by line in Python and was the
largest single cost of classifying a bounce. This builder finds header ends
and boundary lines with string and regex searches over the whole text
instead, and returns the tree the rest of the parser reads through the
ordinary `Message` API (headers, content type and params, payload as text
or as a list of parts). It follows the feed parser's rules:

* headers end at the first blank line, or before the first line that is no
  header (that line starts the body); a leading `From ` line is the unix
  envelope line; a continuation line without a header is dropped;
* a multipart's parts lie between `--boundary` lines (the newline before a
  boundary line belongs to it); the close boundary `--boundary--` ends them,
  end of input ends them too; a multipart without boundary parameter or
  without any boundary line is kept as text;
* `message/*` bodies are parsed as a message, except delivery-status
  reports, which stay text (their fields are read by `dsn.py`);
* parts of a multipart/digest default to message/rfc822.

Nesting depth and the number of parts are bounded, so hostile input costs
bounded time; what lies beyond the bounds stays unparsed text.
"""

from __future__ import annotations

import re
from email.message import Message

MAX_NESTING = 8
MAX_PARTS_TOTAL = 256

# Header lines (as the feed parser's headerRE accepts them) up to the first other line.
_HEADER_BLOCK = re.compile(r"(?:From .*(?:\n|\Z))?(?:(?:[\041-\071\073-\176]*:|[ \t]).*(?:\n|\Z))*")
# One field: name, colon, value with its continuation lines (folding kept, as compat32 keeps it).
_FIELD = re.compile(r"^([\041-\071\073-\176]+):[ \t]*(.*(?:\n[ \t].*)*)", re.M)
_TEXT_MESSAGES = frozenset(("message/delivery-status", "message/global-delivery-status"))


class Part(Message):
    """A compat32 Message that remembers its content type, indexes its headers by
    lower-cased name on the first lookup (a bounce reads the same few headers many times)
    and parses each header's parameters once (see `_get_params_preserve`)."""

    ctype = "text/plain"
    _index: dict[str, str] | None = None
    _params: dict[str, list | None] | None = None

    def get(self, name, failobj=None):
        """Message.get through the index: the first header of that name, or failobj."""
        value = self._header_index().get(name.lower())
        return failobj if value is None else self.policy.header_fetch_parse(name, value)

    def __contains__(self, name):
        """Message.__contains__ through the index (get_param asks it first)."""
        return name.lower() in self._header_index()

    def _header_index(self) -> dict[str, str]:
        index = self._index
        if index is None:
            index = self._index = {}
            for key, value in self._headers:
                index.setdefault(key.lower(), value)
        return index

    def _get_params_preserve(self, failobj, header):
        """The stdlib's parameter list of `header` (behind get_param, get_params,
        get_boundary and get_content_charset), parsed once: the stdlib re-parses the
        header on each of those calls, and a bounce makes several per part."""
        cache = self._params
        if cache is None:
            cache = self._params = {}
        key = header.lower()
        if key in cache:
            params = cache[key]
        else:
            params = simple_params(self.get(header))
            if params is None:
                params = super()._get_params_preserve(None, header)  # None when the header is missing
            cache[key] = params
        return failobj if params is None else list(params)  # a copy: get_params(unquote=False) hands it out

    def _headers_changed(self):
        """Drop what was read from the headers (after the change: some setters read params first)."""
        self._index = None
        self._params = None

    def set_raw(self, name, value):
        super().set_raw(name, value)
        self._headers_changed()

    def __setitem__(self, name, val):
        super().__setitem__(name, val)
        self._headers_changed()

    def __delitem__(self, name):
        super().__delitem__(name)
        self._headers_changed()

    def replace_header(self, _name, _value):
        super().replace_header(_name, _value)
        self._headers_changed()

    def set_boundary(self, boundary):
        super().set_boundary(boundary)
        self._headers_changed()


def simple_params(value) -> list[tuple[str, str]] | None:
    """Message._get_params_preserve of a header value with plain parameters, or None.

    Plain: ASCII, no backslash, no RFC 2231 `*`, and quotes only around a whole
    parameter value. For such values the stdlib's quote-aware split is a split on
    `;` and its unquoting and re-quoting (`"value"`) change nothing else, so this
    gives the same list at a fraction of the cost; anything else is None (ask the
    stdlib). tests/classifier_parsing/test_parsing_params.py holds it to the stdlib.
    """
    if not isinstance(value, str) or not value.isascii() or "\\" in value or "*" in value:
        return None
    params = []
    for piece in value.split(";"):
        name, eq, val = piece.partition("=")
        if not eq:
            name = piece.strip()
        else:
            name, val = name.strip().lower(), val.strip()
        if '"' in name:
            return None
        if '"' in val:
            if len(val) < 2 or val[0] != '"' or val[-1] != '"' or '"' in val[1:-1]:
                return None
        if not params:
            params.append((name, val))  # the content type itself, kept as it is
            continue
        if len(val) > 1 and (val[0] == '"' and val[-1] == '"' or val[0] == "<" and val[-1] == ">"):
            val = val[1:-1]  # email.utils.unquote
        params.append((name, f'"{val}"'))
    return params


def parse(text: str) -> Part:
    """Build the MIME tree of a whole mail (text with LF line ends, surrogate-escaped 8-bit)."""
    return _entity(text, 0, len(text), 0, "text/plain", [MAX_PARTS_TOTAL])


def _entity(text: str, start: int, end: int, depth: int, default_type: str, budget: list[int]) -> Part:
    """One entity (headers and body) from text[start:end]."""
    msg = Part()
    if default_type != "text/plain":
        msg.set_default_type(default_type)
    body = _read_headers(msg, text, start, end)
    ctype = msg.ctype = _content_type(msg)
    if depth < MAX_NESTING and budget[0] > 0:
        if ctype.startswith("multipart/"):
            boundary = msg.get_boundary()
            spans = _split(text, body, end, boundary) if boundary else None
            if spans is not None:
                child_type = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
                children = []
                for s, e in spans:
                    if budget[0] <= 0:
                        break
                    budget[0] -= 1
                    children.append(_entity(text, s, e, depth + 1, child_type, budget))
                msg.set_payload(children)
                return msg
        elif ctype.startswith("message/") and ctype not in _TEXT_MESSAGES:
            budget[0] -= 1
            msg.set_payload([_entity(text, body, end, depth + 1, "text/plain", budget)])
            return msg
    msg.set_payload(text[body:end])
    return msg


def _read_headers(msg: Message, text: str, start: int, end: int) -> int:
    """Set msg's headers from the top of text[start:end]; return where the body starts."""
    m = _HEADER_BLOCK.match(text, start, end)
    block_end = m.end()
    if block_end > start:
        block = text[start:block_end]
        if block.startswith("From "):
            msg.set_unixfrom(block.partition("\n")[0])
        msg._headers = _FIELD.findall(block)  # (name, raw value) as compat32's header_source_parse keeps them
    if block_end < end and text[block_end] == "\n":
        return block_end + 1  # the blank line
    return block_end


def _content_type(msg: Part) -> str:
    """Message.get_content_type, reading the raw header list once."""
    for name, value in msg._headers:
        if name.lower() == "content-type":
            ctype = value.partition(";")[0].strip().lower()
            return ctype if ctype.count("/") == 1 else "text/plain"
    return msg.get_default_type()


def _split(text: str, start: int, end: int, boundary: str) -> list[tuple[int, int]] | None:
    """Spans of a multipart's parts between boundary lines, or None without any boundary line."""
    spans: list[tuple[int, int]] = []
    cur = None
    for line_start, line_end, close in _boundary_lines(text, start, end, "--" + boundary):
        if cur is not None:
            e = line_start - 1 if line_start > cur and text[line_start - 1] == "\n" else line_start
            spans.append((cur, max(e, cur)))
        if close:
            return spans if cur is not None else None
        cur = min(line_end + 1, end)
        if len(spans) >= MAX_PARTS_TOTAL:
            return spans
    if cur is None:
        return None
    spans.append((cur, end))
    return spans


def _boundary_lines(text: str, start: int, end: int, sep: str):
    """Yield (line start, line end, is close) for each line that is `sep` or `sep--`, plus blanks."""
    i = text.find(sep, start, end)
    while i >= 0:
        j = i + len(sep)
        eol = text.find("\n", j, end)
        if eol < 0:
            eol = end
        if i == start or text[i - 1] == "\n":
            close = text.startswith("--", j, eol)
            if not text[j + 2 * close: eol].strip(" \t"):
                yield i, eol, close
        i = text.find(sep, eol, end)

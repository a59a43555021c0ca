"""`mimetree.Part` reads header parameters (get_param, get_params, get_boundary,
get_content_charset) through a cache and a fast path for plain values; it must
answer exactly as the stdlib's compat32 `Message` does, before and after the
headers change."""

from __future__ import annotations

from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bounceflow_classifier.parsing import mimetree

_MISSING = object()


def _answers(msg: Message, header: str = "content-type") -> list:
    """Everything the parser (or anyone) can ask about a header's parameters,
    or the exception the question raises (the stdlib fails on some odd RFC 2231 values)."""
    names = _outcome(lambda: {k.lower() for k, _ in msg.get_params([], header=header, unquote=False)})
    names = (names if isinstance(names, set) else set()) | {"boundary", "charset", "report-type", "nosuch"}
    out = [_outcome(lambda: msg.get_params(_MISSING, header=header)),
           _outcome(lambda: msg.get_params(_MISSING, header=header, unquote=False))]
    for name in sorted(names):
        out.append((name, _outcome(lambda: msg.get_param(name, _MISSING, header=header)),
                    _outcome(lambda: msg.get_param(name.upper(), _MISSING, header=header, unquote=False))))
    if header == "content-type":
        out += [_outcome(lambda: msg.get_boundary(_MISSING)), _outcome(lambda: msg.get_content_charset(_MISSING))]
    return out


def _outcome(question):
    try:
        return question()
    except Exception as exc:
        return ("raised", type(exc), str(exc))


def _both(value: str, header: str = "Content-Type") -> tuple[Message, mimetree.Part]:
    stdlib, part = Message(), mimetree.Part()
    for msg in (stdlib, part):
        msg[header] = value
    return stdlib, part


def _assert_same(value: str) -> None:
    stdlib, part = _both(value)
    want = _answers(stdlib)
    assert _answers(part) == want
    assert _answers(part) == want  # again, from the cache
    fast = mimetree.simple_params(value)
    if fast is not None:
        assert fast == stdlib._get_params_preserve(None, "content-type")


@pytest.mark.parametrize("value", [
    "text/plain",
    "text/plain; charset=us-ascii",
    'text/plain; charset="UTF-8"',
    'multipart/report; report-type="delivery-status";\n boundary="===============1406913159332729875=="',
    "multipart/mixed; boundary=----=_Part_0_123.456",
    "multipart/mixed;boundary=abc;charset=x",
    "MULTIPART/Mixed; BOUNDARY=\"Abc\"; Charset=ISO-8859-1",
    "text/plain; charset=utf-8; charset=latin-1",  # duplicates: the first wins
    "text/plain; charset",  # no `=`
    "text/plain; charset=",
    'text/plain; charset=""',
    "text/plain; ; ;charset = utf-8 ;",
    "  text/plain  ;\tcharset\t=\t utf-8 \t",
    "text/plain; x=<angle>; y=\"<quoted angle>\"; z=<>",
    'multipart/mixed; boundary="a;b"; charset=x',  # `;` inside quotes
    'multipart/mixed; boundary="a\\"b"; charset=x',  # backslash escape
    'multipart/mixed; boundary=a"b',
    'multipart/mixed; boundary="unterminated',
    'multipart/mixed; boundary="a""b"',
    'text/plain; "charset"=utf-8',
    "text/plain; charset=utf-8 (a comment); format=flowed",
    "text/plain; charset*=utf-8''%e2%82%ac",  # RFC 2231 charset
    "text/plain; charset*=''us-ascii",
    "application/x; name*0=\"long \"; name*1=\"name.txt\"",  # RFC 2231 continuations
    "application/x; name*0*=utf-8'en'%c3%a9t%c3%a9; name*1=.txt",
    "application/x; name*=bad-charset'en'%ff",
    "text/plain=odd; charset=x",
    "; charset=x",
    "",
    "text/plain; charset=\udcff\udcfe",  # 8-bit header bytes, surrogate-escaped
    "text/plain; name=caf\u00e9",
])
def test_hand_written_values_match_the_stdlib(value):
    _assert_same(value)


_CHARS = st.sampled_from(list(' \t\n;=";\\*\'%<>()/-_.aAbBcCzZ09') + ["charset", "boundary", "\u00e9", "\udcff"])
_TOKEN = st.text(st.sampled_from(list("aBc09-_./=+")), min_size=0, max_size=8)


@st.composite
def _structured(draw) -> str:
    """A content type and parameters in the shapes mail uses, with odd spacing and quoting."""
    ctype = draw(st.sampled_from(["text/plain", "multipart/report", "Multipart/Mixed", "", "x"]))
    pieces = [ctype]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(["charset", "boundary", "Report-Type", "name", "name*", "name*0", "name*1*"]))
        value = draw(_TOKEN)
        style = draw(st.sampled_from(["plain", "quoted", "angle", "bare", "spaced", "escaped"]))
        pieces.append({"plain": f"{name}={value}", "quoted": f'{name}="{value}"', "angle": f"{name}=<{value}>",
                       "bare": name, "spaced": f" {name} = {value} ", "escaped": f'{name}="{value}\\"x"'}[style])
    sep = draw(st.sampled_from([";", "; ", ";\n ", " ;\t"]))
    return sep.join(pieces) + draw(st.sampled_from(["", ";", " "]))


@settings(max_examples=400, deadline=None)
@given(st.one_of(_structured(), st.lists(_CHARS, max_size=30).map("".join)))
def test_generated_values_match_the_stdlib(value):
    _assert_same(value)


def test_changed_headers_are_read_afresh():
    stdlib, part = _both('multipart/mixed; boundary="one"; charset=x')
    for msg in (stdlib, part):
        msg.get_boundary()  # fills the cache
    edits = [
        lambda m: m.set_boundary("two"),
        lambda m: m.set_param("charset", "utf-8"),
        lambda m: m.del_param("charset"),
        lambda m: m.replace_header("Content-Type", "text/plain; charset=latin-1"),
        lambda m: m.add_header("X-Params", "a", b="c"),
        lambda m: m.__delitem__("Content-Type"),
        lambda m: m.__setitem__("Content-Type", "text/html; charset=koi8-r"),
        lambda m: m.set_raw("Content-Type", "text/html; charset=ascii"),
    ]
    for edit in edits:
        for msg in (stdlib, part):
            edit(msg)
        assert _answers(part) == _answers(stdlib)
        assert _answers(part, "x-params") == _answers(stdlib, "x-params")

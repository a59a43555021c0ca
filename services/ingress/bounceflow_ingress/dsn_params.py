"""RFC 3461 DSN parameters: parsing and validation, without sockets.

SMTP gives them as ESMTP parameters (`RET=HDRS ENVID=a+2Bb` on MAIL,
`NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.com` on RCPT), xtext-encoded
where the RFC says so; REST gives the same four in a `dsn` object as plain
JSON strings. Both end up as one `bounceflow.models.DsnRequest` per
recipient. Every error is a `DsnParamError` whose text is the reason the
client sees (SMTP `501 5.5.4 <reason>`, REST 422).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bounceflow.models import DsnRequest

NOTIFY_VALUES = ("SUCCESS", "FAILURE", "DELAY")
NEVER = "NEVER"
RET_VALUES = ("FULL", "HDRS")
MAIL_KEYWORDS = ("RET", "ENVID")
RCPT_KEYWORDS = ("NOTIFY", "ORCPT")
ENVID_MAX = 100  # RFC 3461 4.4: at most 100 characters (as sent, i.e. xtext)
ORCPT_MAX = 500  # RFC 3461 4.2: at most 500 characters
_ADDR_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_HEX = "0123456789ABCDEF"


class DsnParamError(ValueError):
    """A DSN parameter the client must fix; `str(error)` is the reason."""


@dataclass(frozen=True)
class MailDsn:
    """The DSN parameters of MAIL FROM."""

    ret: str | None = None
    envid: str | None = None


@dataclass(frozen=True)
class RcptDsn:
    """The DSN parameters of one RCPT TO."""

    notify: tuple[str, ...] | None = None
    orcpt: str | None = None


def xtext_decode(value: str, name: str) -> str:
    """Decode RFC 3461 xtext (`+XX` escapes, printable ASCII except `+` and `=`)."""
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "+":
            pair = value[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in _HEX for c in pair):
                raise DsnParamError(f"{name}: bad xtext escape at position {i + 1} (expected +XX, upper-case hex)")
            out.append(chr(int(pair, 16)))
            i += 3
            continue
        if not 33 <= ord(ch) <= 126 or ch == "=":
            raise DsnParamError(f"{name}: character {ch!r} is not allowed in xtext")
        out.append(ch)
        i += 1
    return "".join(out)


def xtext_encode(value: str) -> str:
    """Encode `value` as xtext (the inverse of `xtext_decode`)."""
    return "".join(ch if 33 <= ord(ch) <= 126 and ch not in "+=" else f"+{ord(ch):02X}" for ch in value)


def split_params(options: Iterable[str]) -> dict[str, str]:
    """`["RET=HDRS", "envid=x"]` -> `{"RET": "HDRS", "ENVID": "x"}` (keyword upper, value as sent)."""
    result: dict[str, str] = {}
    for option in options:
        keyword, _, value = option.partition("=")
        keyword = keyword.upper()
        if keyword in result:
            raise DsnParamError(f"{keyword} given twice")
        result[keyword] = value
    return result


def parse_ret(value: str) -> str:
    ret = value.upper()
    if ret not in RET_VALUES:
        raise DsnParamError(f"RET must be FULL or HDRS, not {value!r}")
    return ret


def parse_notify(value: str | Sequence[str]) -> tuple[str, ...]:
    """`NEVER`, or a comma list of SUCCESS/FAILURE/DELAY (also as a JSON list)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    notify = tuple(item.strip().upper() for item in items)
    if not notify or any(not item for item in notify):
        raise DsnParamError("NOTIFY needs a value: NEVER or a list of SUCCESS, FAILURE, DELAY")
    unknown = [item for item in notify if item not in (*NOTIFY_VALUES, NEVER)]
    if unknown:
        raise DsnParamError(f"unknown NOTIFY value {unknown[0]!r}; use NEVER, SUCCESS, FAILURE or DELAY")
    if NEVER in notify and len(notify) > 1:
        raise DsnParamError("NOTIFY=NEVER cannot be combined with other values")
    if len(set(notify)) != len(notify):
        raise DsnParamError("NOTIFY lists a value twice")
    return notify


def _check_envid(envid: str) -> str:
    if not envid:
        raise DsnParamError("ENVID is empty")
    if any(not 32 <= ord(ch) <= 126 for ch in envid):
        raise DsnParamError("ENVID must be printable US-ASCII")
    return envid


def _check_orcpt(addr_type: str, address: str) -> str:
    if not _ADDR_TYPE.match(addr_type):
        raise DsnParamError(f"ORCPT address type {addr_type!r} is not an atom (e.g. rfc822)")
    if not address:
        raise DsnParamError("ORCPT has no address")
    if addr_type.lower() == "rfc822" and "@" not in address:
        raise DsnParamError(f"ORCPT rfc822 address {address!r} has no @")
    return f"{addr_type};{address}"


def parse_mail_params(options: Iterable[str]) -> MailDsn:
    """RET and ENVID from MAIL FROM's parameters; other keywords are ignored here."""
    params = split_params(options)
    ret = parse_ret(params["RET"]) if "RET" in params else None
    envid = None
    if "ENVID" in params:
        raw = params["ENVID"]
        if len(raw) > ENVID_MAX:
            raise DsnParamError(f"ENVID longer than {ENVID_MAX} characters")
        envid = _check_envid(xtext_decode(raw, "ENVID"))
    return MailDsn(ret=ret, envid=envid)


def parse_rcpt_params(options: Iterable[str]) -> RcptDsn:
    """NOTIFY and ORCPT from RCPT TO's parameters; other keywords are ignored here."""
    params = split_params(options)
    notify = parse_notify(params["NOTIFY"]) if "NOTIFY" in params else None
    orcpt = None
    if "ORCPT" in params:
        raw = params["ORCPT"]
        if len(raw) > ORCPT_MAX:
            raise DsnParamError(f"ORCPT longer than {ORCPT_MAX} characters")
        addr_type, sep, address = raw.partition(";")
        if not sep:
            raise DsnParamError("ORCPT must be addr-type;address, e.g. rfc822;bob@example.com")
        orcpt = _check_orcpt(addr_type, xtext_decode(address, "ORCPT"))
    return RcptDsn(notify=notify, orcpt=orcpt)


_NO_MAIL_DSN, _NO_RCPT_DSN, _NO_DSN = MailDsn(), RcptDsn(), DsnRequest()


def combine(mail: MailDsn, rcpt: RcptDsn) -> DsnRequest:
    """The per-recipient DSN request of an SMTP transaction."""
    if mail == _NO_MAIL_DSN and rcpt == _NO_RCPT_DSN:
        return _NO_DSN  # the usual case; the model is frozen, so one instance serves every record
    return DsnRequest(
        notify=list(rcpt.notify) if rcpt.notify is not None else None,
        ret=mail.ret,
        envid=mail.envid,
        orcpt=rcpt.orcpt,
    )


def from_rest(
    notify: str | Sequence[str] | None = None,
    ret: str | None = None,
    envid: str | None = None,
    orcpt: str | None = None,
) -> DsnRequest:
    """The REST `dsn` object: plain strings, no xtext; a bare ORCPT address means rfc822."""
    if envid is not None and len(envid) > ENVID_MAX:
        raise DsnParamError(f"envid longer than {ENVID_MAX} characters")
    if orcpt is not None:
        if len(orcpt) > ORCPT_MAX:
            raise DsnParamError(f"orcpt longer than {ORCPT_MAX} characters")
        addr_type, sep, address = orcpt.partition(";")
        orcpt = _check_orcpt(addr_type, address) if sep else _check_orcpt("rfc822", orcpt)
    return DsnRequest(
        notify=list(parse_notify(notify)) if notify is not None else None,
        ret=parse_ret(ret) if ret is not None else None,
        envid=_check_envid(envid) if envid is not None else None,
        orcpt=orcpt,
    )

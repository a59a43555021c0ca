"""aiosmtpd's MAIL/RCPT address parsing, with the everyday forms answered cheaply.

aiosmtpd 1.4 builds a class and runs the email package's full address parser
on every MAIL and RCPT: more CPU than the rest of a small mail. The ingress
and the devkit's SMTP servers mix this in; `<a@b.c>` and `<>` are answered
here exactly as aiosmtpd would (tests compare the two on fixed and generated
input), everything else goes to aiosmtpd.
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# RFC 5322 dot-atom in ASCII (a plain local part); the ingress's address check uses it too.
DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_SIMPLE_ANGLE_ADDR = re.compile(rf"<({DOT_ATOM}@{DOT_ATOM})>[ \t]*")


class FastAddressParsing:
    """Mixin for an `aiosmtpd.smtp.SMTP` subclass; list it before `SMTP` in the bases."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        if arg.startswith("<>"):
            return "<>", arg[2:]
        match = _SIMPLE_ANGLE_ADDR.match(arg)
        if match is None:
            return super()._getaddr(arg)
        rest = arg[match.end():]
        if rest[:1] == "(" or rest[:1].isspace():
            return super()._getaddr(arg)  # a comment, or whitespace the parser treats its own way
        address = match.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

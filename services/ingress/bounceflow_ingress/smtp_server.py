"""aiosmtpd's `SMTP`, taught RFC 3461 DSN and enhanced status codes.

aiosmtpd 1.4 answers `555` to any MAIL/RCPT parameter other than SIZE, BODY
and SMTPUTF8 before a handler hook runs, and upper-cases every parameter,
which corrupts ENVID and ORCPT (both case-sensitive). `DsnSMTP` takes the
DSN parameters out of the command before aiosmtpd parses it and hands them,
case intact, to the handler hook at the end of the option list (so
`handle_MAIL`/`handle_RCPT` see `["SIZE=100", "RET=HDRS", "ENVID=AbC"]`).
Everything else (auth checks, SIZE, BODY, SMTPUTF8, nested MAIL) stays
aiosmtpd's.

It also adds the enhanced status code (RFC 2034) to aiosmtpd's own replies
that lack one, and decides per connection whether AUTH may be used without
TLS (only from loopback, and only when the setting allows it). Replies to
pipelined commands go out together in one write (`PipelinedReplies`, RFC 2920).
"""

from __future__ import annotations

import ipaddress
import re

from aiosmtpd.smtp import SMTP

from bounceflow.smtp_addresses import FastAddressParsing
from bounceflow.smtp_data import FastDataReading
from bounceflow.smtp_replies import PipelinedReplies
from bounceflow_ingress.dsn_params import MAIL_KEYWORDS, RCPT_KEYWORDS

# Class-level defaults for aiosmtpd's replies without an enhanced code.
DEFAULT_ENHANCED = {
    "221": "2.0.0",
    "250": "2.0.0",
    "252": "2.0.0",
    "421": "4.4.2",
    "451": "4.3.0",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
_REPLY = re.compile(r"^(\d{3})([ -])(.*)$", re.S)
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}( |$)")
# `<local@domain>` with dot-atom ASCII parts: the common case, whose result
# aiosmtpd's parser (email's get_angle_addr) is known to give; all else goes to it.


def with_enhanced_code(status: str) -> str:
    """`"503 Error: need MAIL command"` -> `"503 5.5.1 Error: need MAIL command"`."""
    match = _REPLY.match(status)
    if match is None:
        return status
    code, sep, text = match.groups()
    enhanced = DEFAULT_ENHANCED.get(code)
    if enhanced is None or _ENHANCED.match(text):
        return status
    return f"{code}{sep}{enhanced} {text}" if text else f"{code}{sep}{enhanced}"


def split_dsn_params(params: str, keywords: tuple[str, ...]) -> tuple[str, list[str]]:
    """(the other parameters, the DSN ones as sent) from a MAIL/RCPT parameter string."""
    others, dsn = [], []
    for token in params.split():
        keyword = token.partition("=")[0].upper()
        (dsn if keyword in keywords else others).append(token)
    return " ".join(others), dsn


def is_loopback(peer) -> bool:
    """Whether the peer address (host, port, ...) is 127.0.0.0/8 or ::1."""
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


class DsnSMTP(FastAddressParsing, FastDataReading, PipelinedReplies, SMTP):
    """`SMTP` with RFC 3461 parameters passed through, case preserved."""

    def __init__(self, handler, *, auth_plaintext_loopback: bool = False, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self._auth_plaintext_loopback = auth_plaintext_loopback
        self._pending_dsn: list[str] = []
        self._in_greeting = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self._auth_plaintext_loopback and is_loopback(transport.get_extra_info("peername")):
            self._auth_require_tls = False

    async def push(self, status) -> None:
        if isinstance(status, str) and not self._in_greeting:
            status = with_enhanced_code(status)
        await super().push(status)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_greeting = True  # RFC 2034: no enhanced codes on EHLO/HELO replies
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_greeting = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._in_greeting = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._in_greeting = False

    async def smtp_MAIL(self, arg: str | None) -> None:
        await super().smtp_MAIL(self._take_dsn(arg, "FROM:", MAIL_KEYWORDS))

    async def smtp_RCPT(self, arg: str | None) -> None:
        await super().smtp_RCPT(self._take_dsn(arg, "TO:", RCPT_KEYWORDS))

    def _take_dsn(self, arg: str | None, keyword: str, dsn_keywords: tuple[str, ...]) -> str | None:
        """Remove the DSN parameters from `arg` and keep them for the handler hook."""
        self._pending_dsn = []
        if arg is None or self.session is None or not self.session.extended_smtp:
            return arg  # let aiosmtpd answer the syntax error as it does
        upper = arg.upper()
        if not any(k in upper for k in dsn_keywords):
            return arg  # no DSN parameter can be in there: aiosmtpd parses it alone
        rest = self._strip_command_keyword(keyword, arg)
        if rest is None:
            return arg
        address, params = self._getaddr(rest)
        if not address or not params:
            return arg
        others, self._pending_dsn = split_dsn_params(params, dsn_keywords)
        head = rest[: len(rest) - len(params)].rstrip()
        return f"{keyword}{head} {others}".rstrip()

    async def _call_handler_hook(self, command: str, *args):
        if command in ("MAIL", "RCPT") and self._pending_dsn:
            # args = (address, options); aiosmtpd stores this same list in the
            # envelope when the hook accepts, so the DSN options land there too.
            args[1].extend(self._pending_dsn)
            self._pending_dsn = []
        return await super()._call_handler_hook(command, *args)

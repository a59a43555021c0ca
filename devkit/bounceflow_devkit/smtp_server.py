"""The SMTP server every devkit mail server shares: aiosmtpd plus RFC 3461 DSN.

aiosmtpd 1.4 refuses every MAIL/RCPT parameter it does not know with 555
before a handler hook runs, and upper-cases the ones it knows. A remote MX
that speaks DSN must take NOTIFY/ORCPT (RCPT) and RET/ENVID (MAIL) and keep
their case (ENVID and ORCPT are case-sensitive), so `DsnSMTP` lifts those out
of the command first and hands them to the handler. Without DSN they are left
in place and aiosmtpd answers 555, as an MTA without the extension does.

PIPELINING (RFC 2920) is advertised by default, as real MTAs do: aiosmtpd
does not list it, but it reads commands from a buffered stream one after the
other and answers each in order, so MAIL, RCPT and DATA sent in one write
get their three replies (tested). Like Postfix, `DsnSMTP` holds a reply while
the next pipelined command is already waiting and sends the group in one
write (RFC 2920 §3.2; `bounceflow.smtp_replies`, shared with the ingress and
the bounce-receiver). `pipelining=False` plays an MTA without it.

`RecordingHandler` records accepted mails as `ReceivedMail`; `SmtpServer`
runs one on loopback inside the caller's event loop with `wait_for` for tests.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from bounceflow.smtp_addresses import FastAddressParsing
from bounceflow.smtp_data import FastDataReading
from bounceflow.smtp_replies import PipelinedReplies
from bounceflow_devkit import replies

log = logging.getLogger(__name__)

# `<local@domain>` with dot-atom ASCII parts: the common case, whose result
# aiosmtpd's parser (email's get_angle_addr) is known to give; all else goes to it.

DSN_MAIL_PARAMS = frozenset({"RET", "ENVID"})
DSN_RCPT_PARAMS = frozenset({"NOTIFY", "ORCPT"})
_NOTIFY_VALUES = frozenset({"NEVER", "SUCCESS", "FAILURE", "DELAY"})


@dataclass(frozen=True)
class ReceivedMail:
    """One mail a devkit server accepted (250 after DATA).

    `mail_from` is `<>` for the null sender (aiosmtpd's convention).
    `mail_options` holds the MAIL parameters (DSN ones in their original
    case); `rcpt_options[i]` those of `rcpt_tos[i]`.
    """

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[list[str]]
    data: bytes
    peer: tuple | None
    tls: bool
    helo: str | None = None

    @property
    def mail_params(self) -> dict[str, str]:
        """MAIL parameters as a dict, keys upper-case (`{"RET": "HDRS"}`)."""
        return _as_params(self.mail_options)

    def rcpt_params(self, rcpt: str) -> dict[str, str]:
        """RCPT parameters of one recipient as a dict, keys upper-case."""
        return _as_params(self.rcpt_options[self.rcpt_tos.index(rcpt)])


def _as_params(options: list[str]) -> dict[str, str]:
    params = {}
    for option in options:
        key, _, value = option.partition("=")
        params[key.upper()] = value
    return params


def dsn_param_error(params: dict[str, str]) -> str | None:
    """The reply for malformed DSN parameters (RFC 3461 §4), or None if fine."""
    if "RET" in params and params["RET"].upper() not in ("FULL", "HDRS"):
        return replies.DSN_PARAM_INVALID
    if "NOTIFY" in params:
        values = set(params["NOTIFY"].upper().split(","))
        if not values <= _NOTIFY_VALUES or ("NEVER" in values and len(values) > 1):
            return replies.DSN_PARAM_INVALID
    if "ORCPT" in params and ";" not in params["ORCPT"]:
        return replies.DSN_PARAM_INVALID
    return None


class DsnEnvelope(Envelope):
    """aiosmtpd's envelope plus the RCPT parameters kept per recipient."""

    def __init__(self) -> None:
        super().__init__()
        self.rcpt_options_each: list[list[str]] = []


class DsnSMTP(FastAddressParsing, FastDataReading, PipelinedReplies, SMTP):
    """aiosmtpd's SMTP session that also takes the RFC 3461 DSN parameters.

    Before MAIL/RCPT reach aiosmtpd's parser, the DSN parameters are cut out
    of the argument into `self.dsn_options` (original case) where the
    handler's hooks pick them up. `handle_EHLO` of the handler advertises DSN
    and PIPELINING when they are switched on.
    """

    def __init__(self, handler, *, dsn: bool = True, pipelining: bool = True, sessions: set | None = None,
                 **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self.dsn = dsn
        self.pipelining = pipelining
        self.dsn_options: list[str] = []
        self._sessions = sessions if sessions is not None else set()

    def connection_made(self, transport) -> None:
        self._sessions.add(self)
        super().connection_made(transport)

    @property
    def hold_replies(self) -> bool:
        return self.pipelining  # group replies (RFC 2920) only when PIPELINING is offered

    def close_now(self) -> None:
        """Close the connection at once, after the replies held so far."""
        self.flush_held_replies()
        self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)

    def _create_envelope(self) -> DsnEnvelope:
        return DsnEnvelope()

    @property
    def tls_active(self) -> bool:
        """Whether this session runs over STARTTLS."""
        return self._tls_protocol is not None

    async def smtp_MAIL(self, arg: str | None) -> None:
        arg, error = self._lift_dsn_options(arg, DSN_MAIL_PARAMS)
        await (self.push(error) if error else super().smtp_MAIL(arg))

    async def smtp_RCPT(self, arg: str | None) -> None:
        arg, error = self._lift_dsn_options(arg, DSN_RCPT_PARAMS)
        await (self.push(error) if error else super().smtp_RCPT(arg))

    def _lift_dsn_options(self, arg: str | None, names: frozenset[str]) -> tuple[str | None, str | None]:
        self.dsn_options = []
        if not self.dsn or arg is None:
            return arg, None
        kept = []
        for token in arg.split(" "):
            key, eq, _ = token.partition("=")
            if eq and key.upper() in names:
                self.dsn_options.append(f"{key.upper()}={token[len(key) + 1:]}")
            else:
                kept.append(token)
        return " ".join(kept), dsn_param_error(_as_params(self.dsn_options))


class RecordingHandler:
    """aiosmtpd handler that accepts everything and records it.

    Subclasses decide per recipient and per message by overriding
    `rcpt_reply` / `data_reply`, and react to accepted mail in `accepted`.
    """

    def __init__(self, notify: Callable[[], Awaitable[None]]) -> None:
        self.received: list[ReceivedMail] = []
        self._notify = notify

    async def handle_EHLO(self, server: DsnSMTP, session: Session, envelope, hostname: str, responses: list[str]):
        session.host_name = hostname
        if server.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if server.dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_MAIL(self, server: DsnSMTP, session: Session, envelope: DsnEnvelope, address: str, mail_options: list[str]):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options + server.dsn_options)
        return replies.OK

    async def handle_RCPT(self, server: DsnSMTP, session: Session, envelope: DsnEnvelope, address: str, rcpt_options: list[str]):
        options = rcpt_options + server.dsn_options
        reply = self.rcpt_reply(server, address, options)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.rcpt_options_each.append(options)
        return replies.OK

    async def handle_DATA(self, server: DsnSMTP, session: Session, envelope: DsnEnvelope):
        reply = self.data_reply(envelope)
        if reply is not None:
            log.info("refused at DATA", extra={"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "reply": reply})
            return reply
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            mail_options=list(envelope.mail_options),
            rcpt_options=[list(o) for o in envelope.rcpt_options_each],
            data=envelope.original_content,
            peer=session.peer,
            tls=server.tls_active,
            helo=session.host_name,
        )
        self.received.append(mail)
        self.accepted(mail)
        await self._notify()
        return replies.ACCEPTED

    def rcpt_reply(self, server: DsnSMTP, address: str, options: list[str]) -> str | None:
        """Reply to refuse this recipient with, or None to accept it."""
        return None

    def data_reply(self, envelope: DsnEnvelope) -> str | None:
        """Reply to refuse the message with at end of DATA, or None to accept."""
        return None

    def accepted(self, mail: ReceivedMail) -> None:
        """Called once per accepted mail, after it is recorded."""


class SmtpServer:
    """Runs a `DsnSMTP` server with a handler in the current event loop."""

    def __init__(
        self,
        handler_factory: Callable[[Callable[[], Awaitable[None]]], RecordingHandler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostname: str = "sink.sim.test",
        dsn: bool = True,
        pipelining: bool = True,
        starttls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.hostname = hostname
        self.dsn = dsn
        self.pipelining = pipelining
        self.starttls_context = starttls_context
        self.handler = handler_factory(self.changed)
        self._changed = asyncio.Condition()
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[DsnSMTP] = set()

    @property
    def received(self) -> list[ReceivedMail]:
        """Mails accepted so far, oldest first."""
        return self.handler.received

    async def start(self) -> None:
        """Bind and serve; `.port` is the bound port afterwards."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("smtp server listening", extra={"host": self.host, "port": self.port, "hostname": self.hostname})

    async def stop(self) -> None:
        """Stop listening and close the sessions still open."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def changed(self) -> None:
        """Wake `wait_for` callers: something was recorded."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0):
        """Wait until `predicate()` is truthy (re-checked on every change); return its value.

        Raises TimeoutError after `timeout` seconds.
        """
        async with self._changed:
            return await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def _new_session(self) -> DsnSMTP:
        return DsnSMTP(
            self.handler,
            dsn=self.dsn,
            pipelining=self.pipelining,
            sessions=self._sessions,
            hostname=self.hostname,
            ident="bounceflow-devkit",
            decode_data=False,
            enable_SMTPUTF8=True,
            tls_context=self.starttls_context,
            loop=asyncio.get_running_loop(),
        )

"""A remote MX for tests and `make run`: behaves per recipient, sends bounces back.

The sender, the bounce-receiver and the end-to-end tests need an internet
that refuses, defers, drops and bounces on demand. The local part of a
recipient picks the behaviour (`refuse-rcpt+17@example.test` -> refuse-rcpt);
any other local part gets the simulator's `default`. What each keyword does
is the `BEHAVIOURS` table; mails sent back (DSNs, auto-replies, ARF, plain
bounces) go over SMTP to `bounce_relay` in a background task after the 250.

Run standalone: `python -m bounceflow_devkit.mx_simulator --port 2600
--bounce-relay 127.0.0.1:2526`; it logs each mail as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import ssl
from dataclasses import dataclass, replace
from email.parser import BytesHeaderParser
from typing import Callable

import aiosmtplib

from bounceflow import lifecycle
from bounceflow.logs import configure_logging
from bounceflow.models import MESSAGE_ID_HEADER
from bounceflow_devkit import bounce_mail, replies
from bounceflow_devkit.smtp_server import DsnSMTP, ReceivedMail, RecordingHandler, SmtpServer

log = logging.getLogger(__name__)

NULL_SENDER = ""  # MAIL FROM:<>
BOUNCE_SEND_TIMEOUT = 10.0
# A real MTA queues a bounce that got a temporary (4xx) answer and tries again;
# so does the simulator (our bounce-receiver answers 450 when rate limited and
# 451 when Kafka is down). Connection failures are recorded at once.
BOUNCE_RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15, 30, 30, 30, 30)
_XTEXT_ESCAPE = re.compile(r"\+([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Returned:
    """What a builder of a sent-back mail gets: the accepted mail and one recipient."""

    mail: ReceivedMail
    recipient: str
    hostname: str

    @property
    def params(self) -> dict[str, str]:
        return {**self.mail.mail_params, **self.mail.rcpt_params(self.recipient)}

    def dsn_options(self) -> dict:
        """Keyword arguments for `bounce_mail.delivery_status_report` from the DSN params."""
        orcpt = self.params.get("ORCPT")
        return {
            "reporting_mta": self.hostname,
            "to": self.mail.mail_from,
            "envid": _xtext_decode(self.params["ENVID"]) if "ENVID" in self.params else None,
            "ret": self.params.get("RET", "FULL"),
            "original_recipient": _xtext_decode(orcpt) if orcpt else None,
        }


@dataclass(frozen=True)
class SendBack:
    """A mail the MX sends back after accepting: which, from whom, and when."""

    kind: str
    build: Callable[[Returned], bytes]
    sender: Callable[[Returned], str] = lambda returned: NULL_SENDER
    notify: str | None = None  # the NOTIFY keyword this DSN needs; None: not a DSN, always sent


@dataclass(frozen=True)
class Behaviour:
    """What the MX does for one recipient keyword."""

    rcpt_reply: str | None = None  # refuse at RCPT with this reply
    data_reply: str | None = None  # refuse at end of DATA with this reply
    defer: bool = False  # 451 at RCPT for the first `defer_times` tries
    drop: bool = False  # close the connection after RCPT, no reply
    send_back: SendBack | None = None


@dataclass(frozen=True)
class SentBounce:
    """A mail the simulator sent (or failed to send) back to the envelope sender."""

    kind: str
    mail_from: str  # "" for <>
    rcpt_to: str
    data: bytes
    for_recipient: str
    error: str | None = None


def _dsn(kind: str, builder: Callable[..., bytes], notify: str, **fields) -> SendBack:
    return SendBack(kind, lambda r: builder(r.mail.data, r.recipient, **fields, **r.dsn_options()), notify=notify)


BEHAVIOURS: dict[str, Behaviour] = {
    "accept": Behaviour(),
    "refuse-rcpt": Behaviour(rcpt_reply=replies.USER_UNKNOWN),
    "refuse-data": Behaviour(data_reply=replies.CONTENT_REJECTED),
    "defer": Behaviour(defer=True),
    "drop": Behaviour(drop=True),
    "dsn-failure": Behaviour(send_back=_dsn("dsn-failure", bounce_mail.dsn_failure, "FAILURE", status="5.1.1",
                                            diagnostic="550 5.1.1 Recipient address rejected: User unknown")),
    "mailboxfull": Behaviour(send_back=_dsn("dsn-failure", bounce_mail.dsn_failure, "FAILURE", status="5.2.2",
                                            diagnostic="552 5.2.2 Mailbox full: quota exceeded")),
    "dsn-delay": Behaviour(send_back=_dsn("dsn-delay", bounce_mail.dsn_delay, "DELAY", status="4.4.1",
                                          diagnostic="451 4.4.1 Connection timed out")),
    "dsn-success": Behaviour(send_back=_dsn("dsn-success", bounce_mail.dsn_success, "SUCCESS")),
    "autoreply": Behaviour(send_back=SendBack(
        "autoreply",
        lambda r: bounce_mail.autoreply(r.mail.data, r.recipient, reporting_mta=r.hostname, to=r.mail.mail_from),
        sender=lambda r: r.recipient,
    )),
    "nonstandard": Behaviour(send_back=SendBack(
        "nonstandard-bounce",
        lambda r: bounce_mail.nonstandard_bounce(r.mail.data, r.recipient, reporting_mta=r.hostname,
                                                 to=r.mail.mail_from),
    )),
    "complaint": Behaviour(send_back=SendBack(
        "complaint",
        lambda r: bounce_mail.arf_complaint(r.mail.data, r.recipient, reporting_mta=r.hostname,
                                            mail_from=r.mail.mail_from, to=r.mail.mail_from),
        sender=lambda r: f"feedback@{r.hostname}",
    )),
}


def keyword_of(address: str) -> str:
    """The behaviour keyword of an address: its local part up to '+', lower-case."""
    local = address.rpartition("@")[0] or address
    return local.split("+", 1)[0].lower()


def dsn_requested(notify: str | None, keyword: str) -> bool:
    """Whether NOTIFY asks for this kind of DSN (RFC 3461 §4.1: none given = FAILURE,DELAY)."""
    if notify is None:
        return keyword in ("FAILURE", "DELAY")
    return keyword in notify.upper().split(",")


class MxHandler(RecordingHandler):
    """aiosmtpd handler of the simulated MX: looks each recipient up in `BEHAVIOURS`."""

    def __init__(self, notify, simulator: MxSimulator) -> None:
        super().__init__(notify)
        self.simulator = simulator
        self.tries: dict[str, int] = {}

    def rcpt_reply(self, server: DsnSMTP, address: str, options: list[str]) -> str | None:
        behaviour = self.simulator.behaviour_of(address)
        if behaviour.drop:
            log.info("dropping connection after RCPT", extra={"rcpt": address})
            server.close_now()
            return replies.TRY_AGAIN_LATER  # never reaches the client: the transport is closed
        if behaviour.defer:
            tries = self.tries[address.lower()] = self.tries.get(address.lower(), 0) + 1
            if tries <= self.simulator.defer_times:
                log.info("deferring recipient", extra={"rcpt": address, "try": tries})
                return replies.TRY_AGAIN_LATER
        if behaviour.rcpt_reply:
            log.info("refusing recipient", extra={"rcpt": address, "reply": behaviour.rcpt_reply})
        return behaviour.rcpt_reply

    def data_reply(self, envelope) -> str | None:
        for rcpt in envelope.rcpt_tos:
            if reply := self.simulator.behaviour_of(rcpt).data_reply:
                return reply
        return None

    def accepted(self, mail: ReceivedMail) -> None:
        if log.isEnabledFor(logging.INFO):  # parsing the headers costs more than the rest of the mail
            log.info("mail accepted", extra={
                "message_id": BytesHeaderParser().parsebytes(mail.data).get(MESSAGE_ID_HEADER),
                "mail_from": mail.mail_from,
                "rcpt_tos": mail.rcpt_tos,
                "behaviours": [self.simulator.keyword_for(rcpt) for rcpt in mail.rcpt_tos],
                "mail_options": mail.mail_options,
                "rcpt_options": mail.rcpt_options,
                "size": len(mail.data),
                "tls": mail.tls,
            })
        for rcpt in mail.rcpt_tos:
            self.simulator.send_back(mail, rcpt)


class MxSimulator(SmtpServer):
    """A remote MX on loopback whose behaviour per recipient is `BEHAVIOURS[keyword]`.

    `received`: accepted mails; `bounces_sent` / `bounce_failures`: what it
    sent back (or could not); `wait_for(predicate)` waits for either. It
    advertises DSN and PIPELINING like a real MTA; `dsn=False` /
    `pipelining=False` play one without.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default: str = "accept",
        hostname: str = "mx.sim.test",
        dsn: bool = True,
        pipelining: bool = True,
        starttls_context: ssl.SSLContext | None = None,
        bounce_relay: tuple[str, int] | None = None,
        defer_times: int = 1,
    ) -> None:
        if default not in BEHAVIOURS:
            raise ValueError(f"unknown default behaviour {default!r}; one of {sorted(BEHAVIOURS)}")
        super().__init__(lambda notify: MxHandler(notify, self), host, port, hostname=hostname, dsn=dsn,
                         pipelining=pipelining, starttls_context=starttls_context)
        self.default = default
        self.bounce_relay = bounce_relay
        self.defer_times = defer_times
        self.bounces_sent: list[SentBounce] = []
        self.bounce_failures: list[SentBounce] = []
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()

    def keyword_for(self, address: str) -> str:
        """The behaviour keyword that applies to a recipient: its own, else the default."""
        keyword = keyword_of(address)
        return keyword if keyword in BEHAVIOURS else self.default

    def behaviour_of(self, address: str) -> Behaviour:
        """The behaviour for a recipient address."""
        return BEHAVIOURS[self.keyword_for(address)]

    def send_back(self, mail: ReceivedMail, rcpt: str) -> None:
        """Start sending what the recipient's behaviour returns, if anything, in the background."""
        plan = self.behaviour_of(rcpt).send_back
        if plan is None:
            return
        if mail.mail_from == "<>":
            log.info("not bouncing a mail from <>", extra={"rcpt": rcpt, "kind": plan.kind})
            return
        if plan.notify and not (self.dsn and dsn_requested(mail.rcpt_params(rcpt).get("NOTIFY"), plan.notify)):
            log.info("DSN not requested", extra={"rcpt": rcpt, "kind": plan.kind})
            return
        returned = Returned(mail, rcpt, self.hostname)
        bounce = SentBounce(plan.kind, plan.sender(returned), mail.mail_from, plan.build(returned), rcpt)
        task = asyncio.get_running_loop().create_task(self._deliver(bounce))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, bounce: SentBounce) -> None:
        extra = {"kind": bounce.kind, "mail_from": bounce.mail_from, "rcpt_to": bounce.rcpt_to,
                 "for_recipient": bounce.for_recipient}
        try:
            if self.bounce_relay is None:
                raise RuntimeError("no bounce_relay configured")
            for delay in (*BOUNCE_RETRY_DELAYS, None):
                try:
                    await self._send_once(bounce)
                    break
                except aiosmtplib.SMTPException as exc:
                    if delay is None or not _temporary(exc) or await self._stopped_within(delay):
                        raise
                    log.info("bounce deferred, trying again", extra={**extra, "reply": str(exc)[:200]})
        except Exception as exc:  # noqa: BLE001 - a failed bounce is recorded, never fatal
            log.warning("sending back failed", extra={**extra, "error": repr(exc)})
            self.bounce_failures.append(replace(bounce, error=repr(exc)))
        else:
            log.info("sent back", extra=extra)
            self.bounces_sent.append(bounce)
        await self.changed()

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds` before the next try; True if the simulator is stopping meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def _send_once(self, bounce: SentBounce) -> None:
        host, port = self.bounce_relay
        # aiosmtplib.send() refuses an empty sender; the client itself sends MAIL FROM:<>.
        client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=BOUNCE_SEND_TIMEOUT,
                                 local_hostname=self.hostname)
        async with client:
            await client.sendmail(bounce.mail_from, [bounce.rcpt_to], bounce.data)

    async def stop(self) -> None:
        """Stop serving, then let bounces in flight finish (bounded by their timeout; retries end)."""
        self._stopping.set()
        await super().stop()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=BOUNCE_SEND_TIMEOUT + 1)


def _temporary(exc: aiosmtplib.SMTPException) -> bool:
    """A 4xx answer (at MAIL, DATA or for every RCPT): worth trying again later."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(400 <= r.code < 500 for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 500


def _xtext_decode(value: str) -> str:
    """Decode RFC 3461 xtext (`+HH` escapes), as in ENVID and ORCPT."""
    return _XTEXT_ESCAPE.sub(lambda match: chr(int(match[1], 16)), value)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _serve(args: argparse.Namespace) -> None:
    simulator = MxSimulator(
        args.host, args.port, default=args.default, hostname=args.hostname, dsn=not args.no_dsn,
        pipelining=not args.no_pipelining,
        bounce_relay=_host_port(args.bounce_relay) if args.bounce_relay else None, defer_times=args.defer_times,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await simulator.start()
    await stopping.wait()
    log.info("stopping")
    await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m bounceflow_devkit.mx_simulator`."""
    parser = argparse.ArgumentParser(prog="python -m bounceflow_devkit.mx_simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2600)
    parser.add_argument("--hostname", default="mx.sim.test", help="name in the greeting and in the DSNs")
    parser.add_argument("--bounce-relay", help="host:port where bounces go (the bounce-receiver)")
    parser.add_argument("--default", default="accept", choices=sorted(BEHAVIOURS),
                        help="behaviour for recipients whose local part is no keyword")
    parser.add_argument("--defer-times", type=int, default=1)
    parser.add_argument("--no-dsn", action="store_true", help="do not offer the DSN extension")
    parser.add_argument("--no-pipelining", action="store_true", help="do not offer PIPELINING (RFC 2920)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level, service="mx-simulator")
    lifecycle.run(_serve(args))


if __name__ == "__main__":
    main()

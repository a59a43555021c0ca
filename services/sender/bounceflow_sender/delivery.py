"""The SMTP edge: one attempt to hand one message to its domain's next hop.

Connections are pooled per host:port and reused for the next message to the
same place; a semaphore per host:port caps how many we hold open at once.
STARTTLS is opportunistic (a failed handshake falls back to plain text unless
certificates are verified); the smarthost always needs STARTTLS before AUTH.
Whatever happens, `Deliverer.deliver` returns an `Outcome`; it never raises
for anything the network or the remote server does.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, field

from bounceflow_sender.envelope import DsnParameters
from bounceflow_sender.outcomes import Outcome, from_reply, local_failure, network_error, tls_error
from bounceflow_sender.routing import Hop, Route, Router
from bounceflow_sender.settings import SenderSettings
from bounceflow_sender.smtp_client import (
    SmtpConnection,
    SmtpDisconnected,
    SmtpError,
    SmtpTlsError,
)

log = logging.getLogger(__name__)

TLS_FALLBACK_SECONDS = 3600.0  # after a failed handshake, talk plain text to that host this long


@dataclass(frozen=True)
class Transaction:
    """Everything about one message that does not depend on the next hop."""

    message_id: str
    recipient: str
    mail_from: str
    data: bytes  # already CRLF-normalised, dot-stuffed and terminated
    dsn: DsnParameters = field(default_factory=DsnParameters)  # used only if the hop offers DSN


class HopFailure(Exception):
    """Opening a session to a hop failed; carries the outcome to report if no hop works."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reply_text)
        self.outcome = outcome


def build_tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """Client context: verifying (system CAs + `ca_file`) or encrypt-only."""
    context = ssl.create_default_context(cafile=ca_file) if verify else ssl.create_default_context()
    if verify and ca_file is None:
        context.load_default_certs()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class HostPool:
    """Open sessions to one host:port, at most `limit` at a time."""

    def __init__(self, hop: Hop, settings: SenderSettings, tls: ssl.SSLContext | None) -> None:
        self.hop = hop
        self._settings = settings
        self._tls = tls
        self._slots = asyncio.Semaphore(settings.sender_destination_concurrency)
        self._idle: list[tuple[SmtpConnection, float]] = []
        self._plain_until = 0.0

    async def lease(self) -> tuple[SmtpConnection, bool]:
        """A ready session (reused when one is idle) and whether it was reused; `release` it after."""
        await self._slots.acquire()
        try:
            connection = self._take_idle()
            if connection is not None:
                return connection, True
            return await self._open(), False
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: SmtpConnection) -> None:
        """Give a leased session back: kept for the next message while usable, else QUIT."""
        self._give_back(connection)
        self._slots.release()

    def _take_idle(self) -> SmtpConnection | None:
        while self._idle:
            connection, _ = self._idle.pop()
            if connection.is_open:
                return connection
            connection.close()
        return None

    def _give_back(self, connection: SmtpConnection) -> None:
        if connection.is_open and connection.messages_sent < self._settings.sender_connection_max_messages:
            self._idle.append((connection, time.monotonic()))
        else:
            asyncio.ensure_future(connection.quit())

    def close_idle(self, older_than: float = 0.0) -> list[SmtpConnection]:
        """Take idle sessions out of the pool (all, or those idle longer than `older_than` s)."""
        now = time.monotonic()
        stale = [c for c, since in self._idle if now - since >= older_than]
        self._idle = [(c, since) for c, since in self._idle if now - since < older_than]
        return stale

    async def _open(self) -> SmtpConnection:
        try:
            return await self._open_session(starttls=time.monotonic() >= self._plain_until)
        except SmtpTlsError as exc:
            if self.hop.smarthost is not None or self._settings.sender_tls_verify:
                raise HopFailure(tls_error(str(exc)).at(self.hop.host, None)) from exc
            log.warning("STARTTLS failed, falling back to plain text", extra={"host": self.hop.key, "error": str(exc)})
            self._plain_until = time.monotonic() + TLS_FALLBACK_SECONDS
            return await self._open_session(starttls=False)

    async def _open_session(self, *, starttls: bool) -> SmtpConnection:
        settings, hop = self._settings, self.hop
        try:
            connection, greeting = await SmtpConnection.open(
                hop.host, hop.port,
                connect_timeout=settings.sender_connect_timeout, timeout=settings.sender_command_timeout,
            )
        except SmtpError as exc:
            raise HopFailure(network_error(str(exc), "connect").at(hop.host, None)) from exc
        try:
            await self._handshake(connection, greeting, starttls)
        except HopFailure:
            connection.close()
            raise
        except SmtpTlsError:
            connection.close()
            raise
        except SmtpError as exc:
            connection.close()
            raise HopFailure(network_error(str(exc), "ehlo").at(hop.host, connection.remote_ip)) from exc
        return connection

    async def _handshake(self, connection: SmtpConnection, greeting, starttls: bool) -> None:
        hop, helo, ip = self.hop, self._settings.sender_helo_name, connection.remote_ip
        if greeting.code != 220:
            raise HopFailure(from_reply(greeting.code, greeting.text, "greeting").at(hop.host, ip))
        reply = await connection.hello(helo)
        if not reply.ok:
            raise HopFailure(from_reply(reply.code, reply.text, "ehlo").at(hop.host, ip))
        if starttls and self._tls is not None and connection.extensions.has("STARTTLS"):
            reply = await connection.starttls(self._tls, hop.host)
            if reply.code == 220:
                reply = await connection.hello(helo)
                if not reply.ok:
                    raise HopFailure(from_reply(reply.code, reply.text, "ehlo").at(hop.host, ip))
        if hop.smarthost is not None:
            await self._authenticate(connection)

    async def _authenticate(self, connection: SmtpConnection) -> None:
        smarthost, ip = self.hop.smarthost, connection.remote_ip
        if not connection.tls:
            raise HopFailure(tls_error("smarthost did not offer STARTTLS; refusing to send credentials")
                             .at(self.hop.host, ip))
        if smarthost.username is None:
            return
        password = smarthost.password.get_secret_value() if smarthost.password else ""
        reply = await connection.login(smarthost.username, password)
        if not reply.ok:
            # A refused login is our configuration, not the recipient: never fail mail for it.
            raise HopFailure(Outcome("deferred", "securityerror", reply.code, None,
                                     f"smarthost refused AUTH: {reply.code} {reply.text}", "auth",
                                     self.hop.host, ip))


class Deliverer:
    """Routes and delivers transactions; owns the connection pools."""

    def __init__(self, settings: SenderSettings, router: Router | None = None) -> None:
        self._settings = settings
        self._router = router or Router(settings)
        self._pools: dict[str, HostPool] = {}
        self._tls = build_tls_context(settings.sender_tls_verify, settings.sender_tls_ca_file) \
            if settings.sender_starttls else None
        self._smarthost_tls = build_tls_context(settings.sender_smarthost_tls_verify, settings.sender_tls_ca_file)
        self._reaper: asyncio.Task | None = None

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle())

    async def close(self) -> None:
        """Stop reaping and QUIT every idle session."""
        if self._reaper is not None:
            self._reaper.cancel()
        stale = [c for pool in self._pools.values() for c in pool.close_idle()]
        await asyncio.gather(*(c.quit() for c in stale))

    async def _reap_idle(self) -> None:
        idle = self._settings.sender_connection_idle
        while True:
            await asyncio.sleep(max(idle / 2, 0.5))
            for pool in list(self._pools.values()):
                for connection in pool.close_idle(older_than=idle):
                    asyncio.ensure_future(connection.quit())

    def _pool(self, hop: Hop) -> HostPool:
        pool = self._pools.get(hop.key)
        if pool is None:
            tls = self._smarthost_tls if hop.smarthost is not None else self._tls
            pool = self._pools[hop.key] = HostPool(hop, self._settings, tls)
        return pool

    async def deliver(self, transaction: Transaction, domain: str) -> Outcome:
        """One attempt: route, then try the hops in order until one takes a session."""
        route = await self._router.route(domain)
        if isinstance(route, Outcome):
            return route
        return await self._deliver_route(transaction, route)

    async def _deliver_route(self, transaction: Transaction, route: Route) -> Outcome:
        outcome = network_error(f"{route.domain}: no host to try", "route")
        for hop in route.hops:
            try:
                return await self._deliver_hop(transaction, self._pool(hop))
            except HopFailure as failure:
                outcome = failure.outcome
                log.info("hop unusable, trying the next", extra={
                    "message_id": transaction.message_id, "host": hop.key, "error": outcome.reply_text})
        return outcome

    async def _deliver_hop(self, transaction: Transaction, pool: HostPool) -> Outcome:
        for _ in range(2):  # a reused session the server already closed gets one fresh retry
            connection, reused = await pool.lease()
            try:
                return await self._send(transaction, connection)
            except SmtpError as exc:
                connection.close()
                if reused and isinstance(exc, SmtpDisconnected) and connection.transaction_replies == 0:
                    continue
                stage = ("mail", "rcpt", "data")[min(connection.transaction_replies, 2)]
                return network_error(str(exc), stage).at(pool.hop.host, connection.remote_ip)
            finally:
                pool.release(connection)
        return network_error("connection closed before the transaction started", "mail").at(pool.hop.host, None)

    async def _send(self, transaction: Transaction, connection: SmtpConnection) -> Outcome:
        host, ip, ext = connection.host, connection.remote_ip, connection.extensions
        mail_options, rcpt_options = [], []
        if not (transaction.mail_from + transaction.recipient).isascii():
            if not ext.has("SMTPUTF8"):
                return local_failure("rejected", "next hop does not offer SMTPUTF8 for a non-ASCII address",
                                     "mail").at(host, ip)
            mail_options.append("SMTPUTF8")
        limit = ext.size_limit()
        if limit is not None and len(transaction.data) > limit:
            return local_failure("mesgtoobig", f"message of {len(transaction.data)} bytes exceeds the "
                                 f"next hop's SIZE limit of {limit}", "mail").at(host, ip)
        if ext.has("SIZE"):
            mail_options.append(f"SIZE={len(transaction.data)}")
        if ext.has("8BITMIME") and not transaction.data.isascii():
            mail_options.append("BODY=8BITMIME")
        if ext.has("DSN"):
            mail_options += transaction.dsn.mail
            rcpt_options += transaction.dsn.rcpt
        result = await connection.transaction(
            transaction.mail_from, mail_options, transaction.recipient, rcpt_options, transaction.data
        )
        return from_reply(result.reply.code, result.reply.text, result.stage).at(host, ip)


"""The SMTP protocol object of the MX: aiosmtpd's SMTP plus per-IP session limits.

aiosmtpd has no connection hook for handlers, so the per-IP session limit
lives in this small subclass, as does the translation of aiosmtpd's bare
`552` for an oversized message into `552 5.3.4` (and its metric), and replies to pipelined commands go out
together (`PipelinedReplies`, RFC 2920); everyday addresses skip the
email package's parser (`FastAddressParsing`). It
overrides two aiosmtpd internals (`_handle_client`, `_create_envelope`), hence
the pin to aiosmtpd 1.4.x.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiosmtpd.smtp import SMTP

from bounceflow.smtp_addresses import FastAddressParsing
from bounceflow.smtp_data import FastDataReading
from bounceflow.smtp_replies import PipelinedReplies
from bounceflow_bounce_receiver import metrics, replies
from bounceflow_bounce_receiver.limits import ConnectionLimiter
from bounceflow_bounce_receiver.settings import ReceiverSettings
from bounceflow_bounce_receiver.smtp_handler import BounceHandler, ReceiverEnvelope

log = logging.getLogger(__name__)


class ReceiverSMTP(FastAddressParsing, FastDataReading, PipelinedReplies, SMTP):
    """One SMTP session; refuses the session with 421 when its IP has too many open."""

    # RFC 5321 caps lines at 1000 octets, but returned mail from broken MTAs
    # breaks that; refusing it would lose the bounce (the sender cannot bounce
    # a bounce), so we are liberal here. DATA size is still capped by SIZE.
    line_length_limit = 64 * 1024

    def __init__(self, handler: BounceHandler, *, connections: ConnectionLimiter, **options) -> None:
        super().__init__(handler, **options)
        self._connections = connections

    def _create_envelope(self) -> ReceiverEnvelope:
        return ReceiverEnvelope()

    async def _handle_client(self) -> None:
        peer = self.session.peer
        ip = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if not self._connections.acquire(ip):
            metrics.REJECTED.labels("too_many_connections").inc()
            log.info("too many connections", extra={"remote_ip": ip})
            await self.push(replies.TOO_MANY_CONNECTIONS)
            self.flush_held_replies()
            self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            self._connections.release(ip)

    async def push(self, status) -> None:
        if status in replies.AIOSMTPD_TOO_BIG:
            metrics.REJECTED.labels("too_big").inc()
            status = replies.MESSAGE_TOO_BIG
        await super().push(status)


def tls_context(settings: ReceiverSettings) -> ssl.SSLContext | None:
    """Server context for STARTTLS, or None when no certificate is configured."""
    if not settings.tls_enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.receiver_tls_cert, settings.receiver_tls_key)
    return context


async def start_smtp_server(
    settings: ReceiverSettings, handler: BounceHandler, connections: ConnectionLimiter
) -> asyncio.base_events.Server:
    """Listen on receiver_smtp_host:receiver_smtp_port in the running loop."""
    loop = asyncio.get_running_loop()
    context = tls_context(settings)

    def protocol() -> ReceiverSMTP:
        return ReceiverSMTP(
            handler,
            connections=connections,
            data_size_limit=settings.receiver_max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.receiver_hostname,
            ident="bounceflow bounce-receiver",
            tls_context=context,
            require_starttls=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            timeout=settings.receiver_session_timeout,
            loop=loop,
        )

    return await loop.create_server(protocol, settings.receiver_smtp_host, settings.receiver_smtp_port)

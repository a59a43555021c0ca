"""BounceReceiverService: wires settings, writer, SMTP server and HTTP endpoints.

`start()` returns once SMTP and HTTP listen; an unreachable Kafka does not
stop the MX from starting (mail gets 451 and `/health` fails until Kafka is
back), so remote MTAs keep retrying instead of bouncing our bounces.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time

from bounceflow.kafka import ensure_topics
from bounceflow.observability import HttpServer, health_app
from bounceflow.verp import VerpCodec
from bounceflow_bounce_receiver.limits import Clock, ConnectionLimiter, RateLimiter
from bounceflow.kafka_writer import TransactionalWriter
from bounceflow_bounce_receiver.recipients import RecipientPolicy
from bounceflow_bounce_receiver.settings import ReceiverSettings
from bounceflow_bounce_receiver.smtp_handler import BounceHandler
from bounceflow_bounce_receiver.smtp_server import start_smtp_server

log = logging.getLogger(__name__)

TOPIC = "raw-bounce"


class BounceReceiverService:
    """The bounce-receiver, runnable in-process (tests) or from `__main__`."""

    def __init__(self, settings: ReceiverSettings, *, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.policy = RecipientPolicy(
            codec=VerpCodec(settings.verp_secret_values()),
            domains=list(settings.bounce_domains),
            role_addresses=list(settings.receiver_role_addresses),
        )
        self.writer = TransactionalWriter(settings, settings.topic(TOPIC), self._transactional_id())
        self.connections = ConnectionLimiter(settings.receiver_max_connections_per_ip)
        self.rate = RateLimiter(settings.receiver_rate_per_minute, settings.receiver_rate_burst, clock)
        self.handler = BounceHandler(self.policy, self.writer, self.rate, settings.receiver_max_recipients)
        self._smtp: asyncio.base_events.Server | None = None
        self._http: HttpServer | None = None

    async def start(self) -> None:
        """Create the topic if missing, start the writer, then listen on SMTP and HTTP."""
        await self._ensure_topic()
        await self.writer.start()
        try:
            self._smtp = await start_smtp_server(self.settings, self.handler, self.connections)
            checks = {"kafka": lambda: self.writer.healthy, "smtp": lambda: self._smtp.is_serving()}
            self._http = HttpServer(
                health_app("bounce-receiver", checks), self.settings.http_host, self.settings.receiver_http_port
            )
            await self._http.start()
        except BaseException:
            self._http = None  # it did not start (e.g. port in use): nothing to stop
            await self.stop()
            raise
        log.info(
            "bounce-receiver listening",
            extra={"smtp_port": self.smtp_port, "http_port": self.settings.receiver_http_port,
                   "domains": list(self.settings.bounce_domains), "tls": self.settings.tls_enabled},
        )

    async def stop(self) -> None:
        """Stop listening, fail mails still waiting on Kafka with 451, close everything."""
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()
        if self._http is not None:
            await self._http.stop()
        await self.writer.stop()
        log.info("bounce-receiver stopped")

    @property
    def smtp_port(self) -> int:
        """The port actually listened on (useful when configured as 0)."""
        return self._smtp.sockets[0].getsockname()[1]

    async def _ensure_topic(self) -> None:
        try:
            await asyncio.wait_for(ensure_topics(self.settings, [TOPIC]), self.settings.kafka_ack_timeout)
        except Exception as exc:
            log.warning("could not check the raw-bounce topic", extra={"error": f"{type(exc).__name__}: {exc}"})

    def _transactional_id(self) -> str:
        if self.settings.receiver_transactional_id:
            return self.settings.receiver_transactional_id
        # Unique per process start: no consumer offsets ride in these transactions,
        # so there is no zombie to fence across restarts, only instances to keep apart.
        return self.settings.topic(f"bounce-receiver-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}")

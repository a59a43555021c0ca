"""The ingress as one object: SMTP listener, REST app, Kafka publisher.

`IngressService(settings)` with `await start()` / `await stop()` is what
`__main__` runs and what tests start in-process.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from bounceflow.accounts import AccountStore
from bounceflow.observability import HttpServer
from bounceflow_ingress.auth_limit import FailureLimiter
from bounceflow_ingress.publisher import Publisher
from bounceflow_ingress.rest_api import create_app
from bounceflow_ingress.settings import IngressSettings
from bounceflow_ingress.smtp_handler import IngressHandler
from bounceflow_ingress.smtp_server import DsnSMTP

log = logging.getLogger(__name__)

# Records of one submission together (N recipients x the message) may not
# exceed this; a 25 MiB message to 1000 recipients would otherwise be 33 GB.
MAX_TOTAL_FACTOR = 8


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """Server context for STARTTLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class IngressService:
    """Runs the SMTP and HTTP listeners in the current event loop."""

    def __init__(self, settings: IngressSettings) -> None:
        self.settings = settings
        self.smtp_port: int | None = None
        self.http_port: int | None = None
        self.publisher = Publisher(settings, settings.ingress_kafka_producers)
        self._smtp_server: asyncio.base_events.Server | None = None
        self._http: HttpServer | None = None

    async def start(self) -> None:
        """Listen on SMTP and HTTP; Kafka being down is reported by /health, not fatal."""
        s = self.settings
        accounts = AccountStore(s.accounts_file)
        limiter = FailureLimiter(s.ingress_auth_max_failures, s.ingress_auth_failure_window)
        max_total = s.ingress_max_message_size * MAX_TOTAL_FACTOR
        await self.publisher.start()
        handler = IngressHandler(
            accounts, self.publisher, limiter, s.ingress_hostname, s.ingress_max_recipients, max_total
        )
        context = tls_context(s.ingress_tls_cert, s.ingress_tls_key) if s.ingress_tls_cert and s.ingress_tls_key else None
        loop = asyncio.get_running_loop()

        def smtp_factory() -> DsnSMTP:
            return DsnSMTP(
                handler,
                data_size_limit=s.ingress_max_message_size,
                enable_SMTPUTF8=True,
                hostname=s.ingress_hostname,
                tls_context=context,
                auth_required=True,
                auth_require_tls=True,
                auth_plaintext_loopback=s.ingress_auth_plaintext_loopback,
                timeout=s.ingress_smtp_timeout,
                loop=loop,
            )

        self._smtp_server = await loop.create_server(smtp_factory, s.ingress_smtp_host, s.ingress_smtp_port)
        self.smtp_port = self._smtp_server.sockets[0].getsockname()[1]
        app = create_app(
            accounts,
            self.publisher,
            limiter,
            hostname=s.ingress_hostname,
            max_message_size=s.ingress_max_message_size,
            max_recipients=s.ingress_max_recipients,
            max_total_bytes=max_total,
            health_checks={
                "kafka": lambda: self.publisher.healthy,
                "smtp": lambda: self._smtp_server is not None and self._smtp_server.is_serving(),
            },
        )
        self.app = app
        self.http_port = s.ingress_http_port or _free_port(s.http_host)
        self._http = HttpServer(app, s.http_host, self.http_port)
        await self._http.start()
        log.info(
            "ingress listening",
            extra={"smtp": f"{s.ingress_smtp_host}:{self.smtp_port}", "http": f"{s.http_host}:{self.http_port}",
                   "starttls": context is not None, "topic": s.topic("outgoing")},
        )

    async def stop(self) -> None:
        """Stop listening, then close the producers."""
        if self._smtp_server is not None:
            self._smtp_server.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None
        if self._http is not None:
            await self._http.stop()
            self._http = None
        await self.publisher.stop()

"""The notifier service: its parts, started and stopped in order.

- the log writer (consumer group `notifier-logs`): delivery-result and
  classified-bounce -> ClickHouse failure_log / bounce_log / delivery_log;
- the notification dispatcher (`dispatcher.py`, consumer group
  `notifier-notify`): feedback-loop webhooks and forwarding;
- the HTTP server: read API, `/health`, `/metrics`.

All ClickHouse access goes through one `Store` (one client, one thread).
"""

from __future__ import annotations

import logging
from typing import Protocol

from bounceflow.accounts import AccountStore
from bounceflow.kafka import ensure_topics
from bounceflow.observability import HttpServer
from bounceflow_notifier.dispatcher import NotificationDispatcher
from bounceflow_notifier.log_writer import LogWriter
from bounceflow_notifier.read_api import create_app
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.store import Store

log = logging.getLogger(__name__)


class Component(Protocol):
    """A long-running part of the service."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class NotifierService:
    """Runs the notifier in-process (tests) or from `python -m bounceflow_notifier`."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self.store = Store(settings.resolved_clickhouse_dsn())
        self.accounts = AccountStore(settings.accounts_file)
        self.log_writer = LogWriter(settings, self.store)
        # Consumers, started in this order and stopped in reverse. The
        # notification dispatcher has its own consumer group, so a slow
        # webhook never holds up logging.
        self.dispatcher = NotificationDispatcher(settings, self.accounts)
        self._components: list[Component] = [self.log_writer, self.dispatcher]
        self._started: list[Component] = []
        self._http: HttpServer | None = None

    def health_checks(self) -> dict:
        """Named checks behind `/health`."""
        return {
            "log_writer": lambda: self.log_writer.running,
            "dispatcher": lambda: self.dispatcher.running,
            "clickhouse": lambda: self.store.healthy and self.log_writer.migrated,
        }

    async def start(self) -> None:
        """Create missing topics, start the consumers, then serve HTTP."""
        await ensure_topics(self.settings)
        for component in self._components:
            await component.start()
            self._started.append(component)
        app = create_app(self.settings, self.store, self.accounts, self.health_checks(),
                         ready=lambda: self.log_writer.migrated)
        self._http = HttpServer(app, self.settings.http_host, self.settings.notifier_http_port)
        await self._http.start()
        log.info("notifier started", extra={"port": self.settings.notifier_http_port, "clickhouse": self._dsn_for_log()})

    async def stop(self) -> None:
        """Stop serving, stop the consumers (flushing what ClickHouse takes), close the store."""
        if self._http is not None:
            await self._http.stop()
            self._http = None
        while self._started:
            await self._started.pop().stop()
        await self.store.close()
        log.info("notifier stopped")

    def _dsn_for_log(self) -> str:
        dsn = self.store.dsn
        scheme, _, rest = dsn.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

"""The sender service: two topic workers, one producer, the SMTP pools, /health.

`outgoing` is consumed by group `sender`, `outgoing-retry` by group
`sender-retry`; both publish to `delivery-result` (one record per attempt)
and `outgoing-retry` (the next attempt of a deferred message).
"""

from __future__ import annotations

import logging

from bounceflow.accounts import AccountStore
from bounceflow.kafka import create_producer, ensure_topics
from bounceflow.observability import HttpServer, health_app

from bounceflow_sender.attempt import Attempts
from bounceflow_sender.delivery import Deliverer
from bounceflow_sender.routing import Router
from bounceflow_sender.settings import SenderSettings
from bounceflow_sender.worker import TopicWorker

log = logging.getLogger(__name__)

TOPICS = ("outgoing", "outgoing-retry", "delivery-result")


class SenderService:
    """Start/stop the sender inside the caller's event loop."""

    def __init__(self, settings: SenderSettings, router: Router | None = None) -> None:
        self.settings = settings
        self._router = router
        self._producer = None
        self._deliverer: Deliverer | None = None
        self._workers: list[TopicWorker] = []
        self._http: HttpServer | None = None
        self.stopped = False

    async def start(self) -> None:
        settings = self.settings
        await ensure_topics(settings, TOPICS)
        self._producer = create_producer(settings, linger_ms=5)
        await self._producer.start()
        self._deliverer = Deliverer(settings, self._router)
        self._deliverer.start()
        attempts = Attempts(settings, self._deliverer, AccountStore(settings.accounts_file))
        self._workers = [
            TopicWorker(settings, "outgoing", "sender", self._producer, attempts.outgoing),
            TopicWorker(settings, "outgoing-retry", "sender-retry", self._producer, attempts.retry,
                        due_in=attempts.retry_due_in, hold_max=settings.sender_retry_hold_max),
        ]
        for worker in self._workers:
            await worker.start()
        self._http = HttpServer(
            health_app("sender", {f"consumer-{w.topic}": _healthy(w) for w in self._workers}),
            settings.http_host, settings.sender_http_port,
        )
        await self._http.start()
        log.info("sender started", extra={"port": settings.sender_http_port})

    async def stop(self) -> None:
        """Finish what is in flight (bounded), commit, close sessions and the producer. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        if self._http is not None:
            await self._http.stop()
        for worker in self._workers:
            await worker.stop()
        if self._deliverer is not None:
            await self._deliverer.close()
        if self._producer is not None:
            await self._producer.stop()
        log.info("sender stopped")


def _healthy(worker: TopicWorker):
    return lambda: worker.healthy

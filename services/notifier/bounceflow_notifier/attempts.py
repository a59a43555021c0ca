"""Make one attempt at one notification: a signed webhook POST or an SMTP forward.

The webhook URL and secret are looked up in the account at each attempt,
so a customer who fixes their endpoint (and replays the dead letters)
reaches the new one, and secrets never travel through Kafka. Attempts to
one host share a `HostGate`: a few in flight, a bounded queue behind them,
and beyond that the attempt is not made at all but counted as failed and
retried later, so a dead endpoint cannot tie up the dispatcher.
"""

from __future__ import annotations

import asyncio
import functools
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone

import aiohttp

from bounceflow.accounts import AccountStore

from bounceflow_notifier import webhooks
from bounceflow_notifier.forwarding import Forwarder
from bounceflow_notifier.notifications import Notification
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.ssrf import check_url


@dataclass(frozen=True)
class AttemptResult:
    """Delivered, or the error and whether retrying could ever help."""

    ok: bool
    error: str | None = None
    permanent: bool = False
    target: str | None = None


@functools.lru_cache(maxsize=1024)
def _endpoint(url: str) -> tuple[str, str]:
    """(gate key `scheme://host:port`, netloc) of a webhook URL; parsed once per URL."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}", parts.netloc


class HostGate:
    """At most `limit` attempts in flight to one host, at most `backlog` waiting."""

    def __init__(self, limit: int, backlog: int) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._backlog = backlog
        self.waiting = 0

    def full(self) -> bool:
        return self._semaphore.locked() and self.waiting >= self._backlog

    async def __aenter__(self) -> "HostGate":
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        return self

    async def __aexit__(self, *exc) -> None:
        self._semaphore.release()


class Attempts:
    """Runs attempts; owns the HTTP client, the forwarder and the host gates."""

    def __init__(self, settings: NotifierSettings, accounts: AccountStore, forwarder: Forwarder | None = None) -> None:
        self._settings = settings
        self._accounts = accounts
        self._forwarder = forwarder or Forwarder(settings)
        self._gates: dict[str, HostGate] = {}
        # Made on first use (aiohttp wants the loop running). Redirects are not
        # followed (`webhooks.post`): a 3xx to an internal address would bypass the SSRF check.
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _gate(self, key: str) -> HostGate:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = HostGate(self._settings.notifier_host_concurrency,
                                               self._settings.notifier_host_backlog)
        return gate

    async def attempt(self, notification: Notification) -> AttemptResult:
        """One try; never raises for the endpoint's faults."""
        if notification.kind == "forward":
            return await self._forward(notification)
        return await self._webhook(notification)

    async def _webhook(self, n: Notification) -> AttemptResult:
        account = self._accounts.get(n.account)
        hook = None
        if account is not None:
            hook = account.bounce_webhook if n.kind == "bounce-webhook" else account.failure_webhook
        if hook is None:
            return AttemptResult(False, f"account {n.account!r} has no {n.kind} configured any more", True)
        check = await check_url(hook.url, self._settings.webhook_allow_private)
        if not check.ok:
            return AttemptResult(False, check.reason, check.permanent, hook.url)
        gate_key, netloc = _endpoint(hook.url)
        gate = self._gate(gate_key)
        if gate.full():
            return AttemptResult(False, f"endpoint {netloc} has {gate.waiting} attempts queued", False, hook.url)
        async with gate:
            headers = webhooks.signed_headers(hook.secret.get_secret_value(), n.event_id,
                                              datetime.now(timezone.utc), n.payload,
                                              n.content_type or webhooks.JSON_TYPE)
            if self._session is None:
                self._session = webhooks.http_session()
            result = await webhooks.post(self._session, hook.url, n.payload, headers, self._settings.webhook_timeout)
        return AttemptResult(result.ok, result.error, False, hook.url)

    async def _forward(self, n: Notification) -> AttemptResult:
        gate = self._gate(self._forwarder.route_key(n.target))
        if gate.full():
            return AttemptResult(False, f"forward route for {n.target} has {gate.waiting} attempts queued", False, n.target)
        async with gate:
            result = await self._forwarder.send(n.target, n.payload)
        return AttemptResult(result.ok, result.error, result.permanent, n.target)

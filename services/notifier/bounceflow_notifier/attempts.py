"""Make one attempt at one notification: a signed webhook POST or an SMTP forward.

The webhook URL and secret are looked up in the account at each attempt,
so a customer who fixes their endpoint (and replays the dead letters)
reaches the new one, and secrets never travel through Kafka. Attempts to
one host share a `HostGate` (`host_gate.py`): a few in flight, a line behind
them that is bounded only while the host is failing or behind; an event the
gate turns away is not attempted but counted as failed and retried later, so
a dead endpoint cannot tie up the dispatcher while a healthy one gets a burst
on the first try.
"""

from __future__ import annotations

import functools
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone

import aiohttp
from prometheus_client import Counter

from bounceflow.accounts import AccountStore

from bounceflow_notifier import webhooks
from bounceflow_notifier.forwarding import Forwarder
from bounceflow_notifier.host_gate import HostGate, Turn
from bounceflow_notifier.notifications import Notification
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.ssrf import check_url


SPILLS = Counter("bounceflow_notifier_host_spills_total",
                 "Events sent to notification-retry untried, by why the host gate turned them away", ["why"])


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
                                               self._settings.notifier_host_backlog,
                                               self._settings.notifier_host_queue_wait)
        return gate

    async def _turn(self, gate: HostGate, where: str) -> str | None:
        """Wait for a turn at the host; None to go, else why the event is not attempted."""
        turn = await gate.enter()
        if turn is Turn.GO:
            return None
        SPILLS.labels(turn.value).inc()
        if turn is Turn.WAITED:
            return f"{where} did not take it within {self._settings.notifier_host_queue_wait:g} s in line"
        state = "failing" if gate.health.failing else "behind"
        return f"{where} is {state}; {gate.waiting} attempts queued"

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
        refused = await self._turn(gate, f"endpoint {netloc}")
        if refused:
            return AttemptResult(False, refused, False, hook.url)
        ok = None
        try:
            headers = webhooks.signed_headers(hook.secret.get_secret_value(), n.event_id,
                                              datetime.now(timezone.utc), n.payload,
                                              n.content_type or webhooks.JSON_TYPE)
            if self._session is None:
                self._session = webhooks.http_session()
            result = await webhooks.post(self._session, hook.url, n.payload, headers, self._settings.webhook_timeout)
            ok = result.ok
        finally:
            gate.leave(ok)
        return AttemptResult(result.ok, result.error, False, hook.url)

    async def _forward(self, n: Notification) -> AttemptResult:
        gate = self._gate(self._forwarder.route_key(n.target))
        refused = await self._turn(gate, f"forward route for {n.target}")
        if refused:
            return AttemptResult(False, refused, False, n.target)
        ok = None
        try:
            result = await self._forwarder.send(n.target, n.payload)
            # A definite refusal (5xx) is an answer: the host works, this recipient does not.
            ok = result.ok or result.permanent
        finally:
            gate.leave(ok)
        return AttemptResult(result.ok, result.error, result.permanent, n.target)

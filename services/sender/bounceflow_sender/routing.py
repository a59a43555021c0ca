"""Where mail for a domain goes: static routes, a smarthost, or DNS MX.

The ordering rules (RFC 5321 §5.1, RFC 7505) are pure functions over MX
records: lowest preference first, equal preferences shuffled, a null MX
(`0 .`) means the domain accepts no mail, no MX at all means the domain's
own A/AAAA. `Router` is the edge that asks DNS (dnspython) and turns its
answers and errors into a `Route` or a routing `Outcome`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import dns.asyncresolver
import dns.exception
import dns.resolver

from bounceflow_sender.outcomes import Outcome
from bounceflow_sender.settings import SenderSettings, Smarthost

SMTP_PORT = 25


@dataclass(frozen=True)
class Hop:
    """One host to try, in order."""

    host: str
    port: int = SMTP_PORT
    smarthost: Smarthost | None = None

    @cached_property
    def key(self) -> str:
        """Pool key: connections and concurrency limits are per host:port."""
        return f"{self.host.lower()}:{self.port}"


@dataclass(frozen=True)
class Route:
    """The hops for one domain, best first."""

    domain: str
    hops: tuple[Hop, ...]


class NullMx(Exception):
    """The domain publishes `MX 0 .`: it accepts no mail (RFC 7505)."""


def order_mx(records: Iterable[tuple[int, str]], rng: random.Random | None = None) -> list[str]:
    """MX hosts by ascending preference, equal preferences in random order.

    `records` are (preference, exchange) pairs. Raises NullMx for a null MX.
    Duplicate exchanges keep their best preference.
    """
    rng = rng or random
    best: dict[str, int] = {}
    for preference, exchange in records:
        name = exchange.rstrip(".").lower()
        if name == "":
            if preference == 0:
                raise NullMx("domain publishes a null MX")
            continue
        best[name] = min(preference, best.get(name, preference))
    groups: dict[int, list[str]] = {}
    for name, preference in best.items():
        groups.setdefault(preference, []).append(name)
    ordered: list[str] = []
    for preference in sorted(groups):
        group = sorted(groups[preference])
        rng.shuffle(group)
        ordered.extend(group)
    return ordered


def static_route(domain: str, routes: dict[str, str]) -> Hop | None:
    """The static hop for `domain` (exact match, else `*`), if any."""
    target = routes.get(domain) or routes.get("*")
    if target is None:
        return None
    host, _, port = target.rpartition(":")
    return Hop(host.strip("[]"), int(port))


class Router:
    """Resolves a recipient domain to a Route, or to a routing Outcome when it cannot."""

    def __init__(self, settings: SenderSettings, resolver: dns.asyncresolver.Resolver | None = None) -> None:
        # Parsed once: every message asks, and a static hop never changes.
        self._routes = {domain: static_route(domain, settings.sender_static_routes)
                        for domain in settings.sender_static_routes}
        self._smarthost = settings.smarthost()
        self._resolver = resolver or dns.asyncresolver.Resolver()
        self._resolver.lifetime = settings.sender_dns_timeout
        self._resolver.cache = dns.resolver.LRUCache(10_000)

    async def route(self, domain: str) -> Route | Outcome:
        """The route for `domain`; a failed/deferred Outcome when there is none (yet)."""
        hop = self._routes.get(domain) or self._routes.get("*")
        if hop is not None:
            return Route(domain, (hop,))
        if self._smarthost is not None:
            return Route(domain, (Hop(self._smarthost.host, self._smarthost.port, self._smarthost),))
        return await self._mx_route(domain)

    async def _mx_route(self, domain: str) -> Route | Outcome:
        try:
            answer = await self._resolver.resolve(domain, "MX")
            records = [(r.preference, r.exchange.to_text()) for r in answer]
        except dns.resolver.NXDOMAIN:
            return _dns_failure("failed", "hostunknown", f"{domain}: no such domain (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            records = []  # RFC 5321 §5.1: no MX, the domain itself is the implicit MX
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            return _dns_failure("deferred", "networkerror", f"{domain}: MX lookup failed: {exc}")
        except dns.exception.DNSException as exc:
            return _dns_failure("deferred", "networkerror", f"{domain}: MX lookup failed: {exc}")
        try:
            hosts = order_mx(records)
        except NullMx:
            return _dns_failure("failed", "notaccept", f"{domain} publishes a null MX: it accepts no mail")
        if not hosts:
            return await self._implicit_route(domain)
        return Route(domain, tuple(Hop(host) for host in hosts))

    async def _implicit_route(self, domain: str) -> Route | Outcome:
        for rdtype in ("A", "AAAA"):
            try:
                await self._resolver.resolve(domain, rdtype)
                return Route(domain, (Hop(domain),))
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                return _dns_failure("deferred", "networkerror", f"{domain}: address lookup failed: {exc}")
        return _dns_failure("failed", "hostunknown", f"{domain}: no MX and no A/AAAA record")


def _dns_failure(status, reason: str, text: str) -> Outcome:
    return Outcome(status, reason, None, None, text, "route")


"""Refuse webhook URLs that point into our own network (SSRF guard).

A customer chooses the webhook URL; without this check they could make the
notifier POST to 127.0.0.1, the cloud metadata service (169.254.169.254) or
anything else on the private network. Every address the host resolves to
must be public unless `webhook_allow_private` is on (tests, `make run`).
A refusal is permanent (dead-letter, not retried); a DNS failure is not.

Known limit: the check resolves the name, then httpx resolves it again to
connect, so a DNS answer that changes in between (rebinding) is not caught.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class UrlCheck:
    """`ok`, or why not; `permanent` refusals are dead-lettered, the rest retried."""

    ok: bool
    permanent: bool = False
    reason: str | None = None


def address_refusal(address: str) -> str | None:
    """Why an IP address may not be called, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, label in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attribute):
            return f"{address} is a {label} address"
    if not ip.is_global:
        return f"{address} is not a global address"
    return None


@functools.lru_cache(maxsize=1024)  # pure, and asked at every attempt
def url_refusal(url: str) -> tuple[str | None, str | None]:
    """(host, None) for a usable http(s) URL, or (None, why not)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None, f"webhook URL scheme {parts.scheme!r} is not http or https"
    if not parts.hostname:
        return None, "webhook URL has no host"
    return parts.hostname, None


async def check_url(url: str, allow_private: bool) -> UrlCheck:
    """Resolve the URL's host and refuse it if any address is not public."""
    host, refusal = url_refusal(url)
    if refusal:
        return UrlCheck(False, True, refusal)
    if allow_private:
        return UrlCheck(True)
    port = urllib.parse.urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return UrlCheck(False, False, f"cannot resolve {host}: {exc}")
    for info in infos:
        why = address_refusal(info[4][0])
        if why:
            return UrlCheck(False, True, f"webhook host {host} refused: {why} (webhook_allow_private is off)")
    return UrlCheck(True)

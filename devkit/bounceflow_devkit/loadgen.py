"""Load generators: many mails over SMTP or REST, many bounces at the receiver.

Used by `make demo` and `make bench`. Each function runs a bounded amount of
work over N concurrent clients and returns what happened (counts, per-item
latencies), leaving the judging to the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiosmtplib
import httpx


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class LoadResult:
    """What a load run did."""

    sent: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def simple_mail(sender: str, recipient: str, subject: str, body_size: int = 1024) -> bytes:
    """A plain text mail of about `body_size` bytes."""
    line = ("bounceflow load test " * 4)[:76] + "\r\n"
    body = (line * (body_size // len(line) + 1))[:body_size]
    return (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n").encode()


async def _split(items: Sequence, workers: int, worker) -> None:
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    await asyncio.gather(*(worker(queue) for _ in range(max(1, min(workers, len(items))))))


async def smtp_send(host: str, port: int, mails: Sequence[Mail], *, connections: int = 1,
                    username: str | None = None, password: str | None = None,
                    rate: float | None = None) -> LoadResult:
    """Send `mails` over `connections` SMTP sessions (optionally paced to `rate` mails/s)."""
    result = LoadResult(started=time.perf_counter())
    pace = _Pacer(rate)

    async def worker(queue: asyncio.Queue) -> None:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=60)
        await smtp.connect()
        try:
            if username:
                await smtp.login(username, password or "")
            while not queue.empty():
                mail = queue.get_nowait()
                await pace.wait()
                begun = time.perf_counter()
                try:
                    errors, _ = await smtp.sendmail(mail.sender, mail.recipients, mail.data)
                    result.sent += 1
                    result.refused += len(errors)
                    result.latencies.append(time.perf_counter() - begun)
                except aiosmtplib.SMTPException as exc:
                    result.errors.append(str(exc)[:200])
                    if not smtp.is_connected:
                        await smtp.connect()
                        if username:
                            await smtp.login(username, password or "")
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except aiosmtplib.SMTPException:
                    pass

    await _split(mails, connections, worker)
    result.finished = time.perf_counter()
    return result


async def rest_send(url: str, api_key: str, bodies: Sequence[dict], *, concurrency: int = 20) -> LoadResult:
    """POST each JSON body to the ingress `/v1/send` with `concurrency` clients."""
    result = LoadResult(started=time.perf_counter())
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {api_key}"}) as client:
        async def worker(queue: asyncio.Queue) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                begun = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                except httpx.HTTPError as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                if response.is_success:
                    result.sent += 1
                    result.latencies.append(time.perf_counter() - begun)
                else:
                    result.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")

        await _split(bodies, concurrency, worker)
    result.finished = time.perf_counter()
    return result


class _Pacer:
    """Spreads sends evenly at `rate` per second across all workers (None: no pacing)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.perf_counter()

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.perf_counter()
        slot, self._next = max(self._next, now), max(self._next, now) + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)

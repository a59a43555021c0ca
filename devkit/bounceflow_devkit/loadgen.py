"""Load generators: many mails over SMTP or REST, many bounces at the receiver.

Used by `make demo` and `make bench`. Each function runs a bounded amount of
work over N concurrent clients and returns what happened (counts, per-item
latencies), leaving the judging to the caller.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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


class SmtpLoadError(Exception):
    """The server refused a mail (or the whole session); the text says what it answered."""


class LoadSmtpClient:
    """One SMTP session of the load generator, as a busy MTA speaks it.

    With PIPELINING offered (RFC 2920), MAIL, every RCPT and DATA go out in
    one write and their replies are read together, then the message: two
    round trips per mail, as Postfix does. Without it, one command at a time.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self._reader, self._writer, self._timeout = reader, writer, timeout
        self.pipelining = False

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = 60, helo: str = "loadgen.localhost",
                      username: str | None = None, password: str | None = None) -> "LoadSmtpClient":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        client = cls(reader, writer, timeout)
        try:
            client._expect(await client.reply(), 2, "greeting")
            code, text = await client.command(f"EHLO {helo}")
            client._expect((code, text), 2, "EHLO")
            client.pipelining = "PIPELINING" in (line.split(" ")[0].upper() for line in text.split("\n"))
            if username is not None:
                token = base64.b64encode(f"\0{username}\0{password or ''}".encode()).decode()
                client._expect(await client.command(f"AUTH PLAIN {token}"), 2, "AUTH")
        except BaseException:
            client.close()
            raise
        return client

    @property
    def is_open(self) -> bool:
        return not self._writer.is_closing()

    async def reply(self) -> tuple[int, str]:
        """(code, text); a multi-line reply's lines joined by newlines."""
        async with asyncio.timeout(self._timeout):
            return await self._reply()

    async def _reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = await self._reader.readline()
            if not line.endswith(b"\n"):
                raise ConnectionError("connection closed by the server")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), "\n".join(lines)

    async def command(self, line: str) -> tuple[int, str]:
        self._writer.write(line.encode() + b"\r\n")
        return await self.reply()

    async def send(self, mail: Mail) -> int:
        """Deliver `mail`; returns how many recipients were refused (raises if all were)."""
        async with asyncio.timeout(self._timeout):  # one timer per mail, not one per reply
            return await self._send(mail)

    async def _send(self, mail: Mail) -> int:
        commands = [f"MAIL FROM:<{mail.sender}>", *(f"RCPT TO:<{r}>" for r in mail.recipients), "DATA"]
        if self.pipelining:
            self._writer.write("".join(c + "\r\n" for c in commands).encode())
            replies = [await self._reply() for _ in commands]
        else:
            replies = []
            for command in commands:
                self._writer.write(command.encode() + b"\r\n")
                replies.append(await self._reply())
                if replies[-1][0] >= 400 and command.startswith("MAIL"):
                    break
        mail_reply, rcpt_replies, data_reply = replies[0], replies[1:len(commands) - 1], replies[-1]
        refused = sum(1 for code, _ in rcpt_replies if code >= 300)
        if mail_reply[0] >= 300 or refused == len(mail.recipients) or data_reply[0] != 354:
            await self._abandon(data_reply)
            worst = next((r for r in replies if r[0] >= 300 and r[0] != 354), data_reply)
            raise SmtpLoadError(f"{worst[0]} {worst[1]}")
        self._writer.write(_dot_stuffed(mail.data) + b".\r\n")
        code, text = await self._reply()
        if code >= 300:
            raise SmtpLoadError(f"{code} {text}")
        return refused

    async def _abandon(self, data_reply: tuple[int, str]) -> None:
        if data_reply[0] == 354:  # the server is waiting for a message: send an empty one
            self._writer.write(b".\r\n")
            await self._reply()
        self._writer.write(b"RSET\r\n")
        await self._reply()

    async def quit(self) -> None:
        try:
            await asyncio.wait_for(self.command("QUIT"), 5)
        except (OSError, ConnectionError, asyncio.TimeoutError):
            pass
        self.close()

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    @staticmethod
    def _expect(reply: tuple[int, str], klass: int, what: str) -> None:
        if reply[0] // 100 != klass:
            raise SmtpLoadError(f"{what}: {reply[0]} {reply[1]}")


def _dot_stuffed(data: bytes) -> bytes:
    """CRLF line ends, a final CRLF, and a second dot before every line that starts with one."""
    if data.count(b"\n") != data.count(b"\r\n"):  # the regular expressions only when needed
        data = _BARE_LF.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) if data.startswith(b".") or b"\n." in data else data


_BARE_LF = re.compile(rb"(?<!\r)\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


async def smtp_send(host: str, port: int, mails: Sequence[Mail], *, connections: int = 1,
                    username: str | None = None, password: str | None = None,
                    rate: float | None = None, on_sent: Callable[[int], None] | None = None) -> LoadResult:
    """Send `mails` over `connections` SMTP sessions (optionally paced to `rate` mails/s).

    `on_sent(i)` is called as soon as the server accepted `mails[i]`.
    """
    result = LoadResult(started=time.perf_counter())
    pace = _Pacer(rate)

    async def connect() -> LoadSmtpClient:
        return await LoadSmtpClient.connect(host, port, username=username, password=password)

    async def worker(queue: asyncio.Queue) -> None:
        smtp = await connect()
        try:
            while not queue.empty():
                index, mail = queue.get_nowait()
                await pace.wait()
                begun = time.perf_counter()
                try:
                    if not smtp.is_open:
                        smtp = await connect()
                    result.refused += await smtp.send(mail)
                    result.sent += 1
                    result.latencies.append(time.perf_counter() - begun)
                    if on_sent is not None:
                        on_sent(index)
                except (SmtpLoadError, OSError, ConnectionError, asyncio.TimeoutError) as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    if not isinstance(exc, SmtpLoadError):
                        smtp.close()
        finally:
            await smtp.quit()

    await _split(list(enumerate(mails)), connections, worker)
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

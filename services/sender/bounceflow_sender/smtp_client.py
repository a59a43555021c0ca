"""A small ESMTP client on asyncio streams, with real PIPELINING.

aiosmtplib 5 cannot pipeline: its protocol discards reply bytes that arrive
while an earlier parsed reply awaits pickup, so MAIL/RCPT/DATA written at once
lose replies. An MTA's hot path is exactly that transaction, so the sender
speaks SMTP itself: greeting, EHLO (HELO fallback), STARTTLS, AUTH
PLAIN/LOGIN, and one transaction = MAIL, RCPT, DATA (in one write when the
server offers PIPELINING, RFC 2920), then the dot-stuffed message.
Every failure raises an `SmtpError` subclass; a reply is never an exception.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from dataclasses import dataclass, field

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.M)
MAX_REPLY_LINES = 100
MAX_LINE = 1 << 20
READ_SIZE = 1 << 16


class SmtpError(Exception):
    """The conversation broke (not a refusal: those are replies)."""


class SmtpDisconnected(SmtpError):
    """The server closed the connection."""


class SmtpTimeout(SmtpError):
    """No reply within the command timeout."""


class SmtpProtocolError(SmtpError):
    """The server sent something that is not an SMTP reply."""


class SmtpTlsError(SmtpError):
    """The TLS handshake failed (or verification did)."""


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


@dataclass(frozen=True)
class TransactionReply:
    """The reply that ended a transaction and the step it answered."""

    stage: str  # "mail" | "rcpt" | "data"
    reply: Reply


@dataclass
class Extensions:
    """EHLO keywords (upper-case) with their parameters."""

    keywords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Extensions:
        keywords = {}
        for line in text.splitlines()[1:]:
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                keywords[keyword.upper()] = params.strip()
        return cls(keywords)

    def has(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    def size_limit(self) -> int | None:
        value = self.keywords.get("SIZE", "")
        return int(value) if value.isdigit() and int(value) > 0 else None


def encode_data(message: bytes) -> bytes:
    """CRLF line endings, dot-stuffing and the terminating `.` line (RFC 5321 §4.5.2)."""
    data = message
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:  # some bare CR or LF (C-speed counts)
        data = _LINE_ENDINGS.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpConnection:
    """One SMTP session to one host. Not safe for concurrent transactions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, timeout: float):
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()  # received, not yet parsed: pipelined replies often arrive together
        self.host = host
        self.timeout = timeout
        self.extensions = Extensions()
        self.tls = False
        self.messages_sent = 0
        self.transaction_replies = 0  # replies read in the current transaction
        peer = writer.get_extra_info("peername")
        self.remote_ip: str | None = peer[0] if peer else None

    @classmethod
    async def open(cls, host: str, port: int, *, connect_timeout: float, timeout: float) -> tuple[SmtpConnection, Reply]:
        """Connect and read the greeting. Raises SmtpError (OSError is wrapped)."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), connect_timeout
            )
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise SmtpTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise SmtpDisconnected(f"connect to {host}:{port} failed: {exc.strerror or exc}") from exc
        connection = cls(reader, writer, host, timeout)
        return connection, await connection.read_reply()

    @property
    def is_open(self) -> bool:
        return not self._writer.is_closing() and not self._reader.at_eof()

    async def read_reply(self) -> Reply:
        """One (possibly multi-line) reply."""
        lines, code = [], None
        for _ in range(MAX_REPLY_LINES):
            end = self._buffer.find(b"\n")
            if end < 0:
                end = await self._receive_line()
            line = self._buffer[:end].rstrip(b"\r").decode("utf-8", "replace")
            del self._buffer[: end + 1]
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
                raise SmtpProtocolError(f"{self.host}: not an SMTP reply: {line[:80]!r}")
            if code is not None and int(line[:3]) != code:
                raise SmtpProtocolError(f"{self.host}: reply code changed inside a reply")
            code = int(line[:3])
            lines.append(line[4:])
            if line[3:4] != "-":
                self.transaction_replies += 1
                return Reply(code, "\n".join(lines))
        raise SmtpProtocolError(f"{self.host}: reply longer than {MAX_REPLY_LINES} lines")

    async def _receive_line(self) -> int:
        """Read until the buffer holds a whole line (one timeout per line); the index of its LF."""
        buffer = self._buffer
        try:
            async with asyncio.timeout(self.timeout):  # no extra task, unlike wait_for
                while True:
                    if len(buffer) > MAX_LINE:
                        raise SmtpDisconnected(f"{self.host}: reply line longer than {MAX_LINE} bytes")
                    chunk = await self._reader.read(READ_SIZE)
                    if not chunk:
                        raise SmtpDisconnected(f"{self.host}: connection closed")
                    start = len(buffer)
                    buffer += chunk
                    end = buffer.find(b"\n", start)
                    if end >= 0:
                        return end
        except TimeoutError as exc:
            raise SmtpTimeout(f"{self.host}: no reply within {self.timeout:g}s") from exc
        except OSError as exc:
            raise SmtpDisconnected(f"{self.host}: {exc}") from exc

    async def _send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            if self._writer.transport.get_write_buffer_size() > 0:  # only wait when the kernel is full
                async with asyncio.timeout(self.timeout):
                    await self._writer.drain()
        except TimeoutError as exc:
            raise SmtpTimeout(f"{self.host}: write timed out") from exc
        except OSError as exc:
            raise SmtpDisconnected(f"{self.host}: {exc}") from exc

    async def command(self, line: str, *, encoding: str = "ascii") -> Reply:
        if "\r" in line or "\n" in line:
            raise ValueError("SMTP command contains a line break")
        await self._send(line.encode(encoding) + b"\r\n")
        return await self.read_reply()

    async def hello(self, name: str) -> Reply:
        """EHLO, falling back to HELO when EHLO is refused."""
        reply = await self.command(f"EHLO {name}")
        if reply.ok:
            self.extensions = Extensions.parse(reply.text)
            return reply
        self.extensions = Extensions()
        return await self.command(f"HELO {name}")

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> Reply:
        """STARTTLS and the TLS handshake; the caller says EHLO again afterwards."""
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            return reply
        self._buffer.clear()  # anything sent before the handshake is not part of the TLS session (RFC 3207 §4.2)
        try:
            await asyncio.wait_for(
                self._writer.start_tls(context, server_hostname=server_hostname), self.timeout
            )
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise SmtpTlsError(f"{self.host}: TLS handshake timed out") from exc
        except (ssl.SSLError, OSError) as exc:
            raise SmtpTlsError(f"{self.host}: TLS handshake failed: {exc}") from exc
        self.tls = True
        self.extensions = Extensions()
        return reply

    async def login(self, username: str, password: str) -> Reply:
        """AUTH PLAIN (or LOGIN when only that is offered). Never logs the password."""
        methods = self.extensions.keywords.get("AUTH", "").upper().split()
        if "PLAIN" in methods or "LOGIN" not in methods:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            return await self.command(f"AUTH PLAIN {token}")
        reply = await self.command("AUTH LOGIN")
        for value in (username, password):
            if reply.code != 334:
                return reply
            reply = await self.command(base64.b64encode(value.encode()).decode())
        return reply

    async def transaction(
        self, mail_from: str, mail_options: list[str], recipient: str, rcpt_options: list[str], data: bytes
    ) -> TransactionReply:
        """MAIL, RCPT, DATA and the message (`data` already `encode_data`d).

        Returns the reply that decided it: the first refusal, or the reply
        after the final dot. After a refusal the session is RSET for reuse.
        """
        self.transaction_replies = 0
        encoding = "utf-8" if "SMTPUTF8" in mail_options else "ascii"
        mail = " ".join([f"MAIL FROM:<{mail_from}>", *mail_options]).encode(encoding) + b"\r\n"
        rcpt = " ".join([f"RCPT TO:<{recipient}>", *rcpt_options]).encode(encoding) + b"\r\n"
        for line in (mail, rcpt):
            if b"\r" in line[:-2] or b"\n" in line[:-2]:
                raise ValueError("SMTP command contains a line break")
        if self.extensions.has("PIPELINING"):
            await self._send(mail + rcpt + b"DATA\r\n")
            replies = [await self.read_reply() for _ in range(3)]
        else:
            replies = []
            for step in (mail, rcpt, b"DATA\r\n"):
                await self._send(step)
                replies.append(await self.read_reply())
                if replies[-1].code >= 400:
                    break
        for stage, reply, expected in zip(("mail", "rcpt", "data"), replies, (2, 2, 3)):
            if reply.code // 100 != expected:
                await self._abandon(replies)
                return TransactionReply(stage, reply)
        await self._send(data)
        final = await self.read_reply()
        self.messages_sent += 1
        if not final.ok:
            await self._reset()
        return TransactionReply("data", final)

    async def _abandon(self, replies: list[Reply]) -> None:
        """End a refused transaction: an empty DATA if the server said 354 anyway, then RSET."""
        if len(replies) == 3 and replies[2].code == 354:
            await self._send(b".\r\n")
            await self.read_reply()
        await self._reset()

    async def _reset(self) -> None:
        reply = await self.command("RSET")
        if not reply.ok:
            self.close()

    async def quit(self) -> None:
        """Polite QUIT, then close; errors are ignored (the session is over either way)."""
        try:
            if self.is_open:
                await asyncio.wait_for(self.command("QUIT"), 2.0)
        except (SmtpError, TimeoutError, asyncio.TimeoutError, OSError):
            pass
        self.close()

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

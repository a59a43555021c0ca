"""aiosmtpd's DATA command, reading the message in blocks instead of line by line.

aiosmtpd 1.4 reads a message one line at a time, with a few Python steps
per line; for a 1-2 KB mail that loop was a fifth to a third of the CPU of
our SMTP servers (ingress, bounce-receiver, the devkit's MX). This mixin
reads up to each `.<CRLF>` in the stream (a block usually holds many lines)
and then applies aiosmtpd's rules to the whole message at once:

* the message ends at a line that is a lone dot (`<CRLF>.<CRLF>`, or `.<CRLF>`
  right after DATA);
* a line longer than `line_length_limit` (CRLF included) gives `500 Line too
  long`, more than `data_size_limit` bytes gives `552 Too much mail data`,
  both only after the whole message was read (RFC 5321 4.2.5);
* a leading dot is removed from every line (RFC 5321 4.5.2);
* decoding, the handler's `handle_DATA` and the reply are aiosmtpd's.

Tests compare replies and envelopes with aiosmtpd's own `smtp_DATA`.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import MISSING, syntax

log = logging.getLogger("mail.log")  # aiosmtpd's logger

_END = b".\r\n"


class FastDataReading:
    """Mixin for an `aiosmtpd.smtp.SMTP` subclass; list it before `SMTP` in the bases."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            original_content, problem = await self._read_message()
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if problem is not None:
            await self.push(problem)
            self._set_post_data_state()
            return
        content = original_content
        if self._decode_data:
            if self.enable_SMTPUTF8:
                content = original_content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    content = original_content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    await self.push("500 Error: strict ASCII mode")
                    return
        self.envelope.content = content
        self.envelope.original_content = original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_message(self) -> tuple[bytes, str | None]:
        """(the message, dot-unstuffed; or b"" and the error reply) up to the lone dot."""
        reader = self._reader
        limit = self.data_size_limit
        blocks: list[bytes] = []
        size = 0
        problem = None
        before = b"\r\n"  # the two bytes before the next one: DATA's own line end
        while True:
            try:
                block = await reader.readuntil(_END)
            except asyncio.LimitOverrunError as exc:
                # No `.<CRLF>` within the reader's limit: take what is there (what may
                # be the start of one stays in the reader) and look further.
                block = await reader.read(exc.consumed)
                last = False
            else:
                last = (before + block[-5:])[-5:-3] == b"\r\n"  # only the tail: a block may be large
                if last:
                    block = block[:-3]
            size += len(block)
            if problem is None:
                blocks.append(block)
                if limit and size > limit:
                    problem = self._size_problem(b"".join(blocks), limit)
                    blocks.clear()  # keep no more in memory; the rest is read and dropped
            if last:
                break
            before = (before + block[-2:])[-2:]
        if problem is not None:
            return b"", problem
        data = b"".join(blocks)
        problem = self._line_problem(data)
        if problem is not None:
            return b"", problem
        if data.startswith(b"."):
            data = data[1:]
        return data.replace(b"\r\n.", b"\r\n"), None

    def _size_problem(self, data: bytes, limit: int) -> str:
        """The reply for a message over `limit`, as aiosmtpd decides it line by line:
        a too-long line before the line that crosses the limit (or a crossing line
        too long for its reader) was seen first."""
        crossing = data.rfind(b"\r\n", 0, limit)
        crossing = crossing + 2 if crossing != -1 else 0
        end = data.find(b"\r\n", crossing)
        if self._line_problem(data[:crossing]) or (end if end != -1 else len(data)) - crossing > self.line_length_limit:
            return "500 Line too long (see RFC5321 4.5.3.1.6)"
        return "552 Error: Too much mail data"

    def _line_problem(self, data: bytes) -> str | None:
        """aiosmtpd's reply when a line (its CRLF included) is longer than line_length_limit."""
        if data and max(map(len, data.split(b"\r\n"))) + 2 > self.line_length_limit:
            return "500 Line too long (see RFC5321 4.5.3.1.6)"
        return None

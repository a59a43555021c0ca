"""RFC 2920 reply grouping for aiosmtpd servers.

aiosmtpd writes (and drains) each reply as soon as a command is handled. A
PIPELINING client sends MAIL, RCPT and DATA in one packet and reads the
three replies together; answering them in three writes costs both processes
three wake-ups and three loopback sends. RFC 2920 section 3.1 lets a server
hold replies while more pipelined commands are waiting, so this mixin holds
a reply while a whole command line is already in aiosmtpd's reader and sends
what it holds with the next reply that finds the reader empty.

Replies after which aiosmtpd stops reading commands or changes the stream
(`220` before TLS, `221`/`421` before it closes) are always sent at once,
together with anything held before them.
"""

from __future__ import annotations

# Replies that must not wait: the session ends or switches to TLS after them.
_SEND_AT_ONCE = (b"220", b"221", b"421")


class PipelinedReplies:
    """Mixin for an `aiosmtpd.smtp.SMTP` subclass; list it before `SMTP` in the bases.

    `hold_replies` (class or instance attribute) switches the grouping off,
    e.g. for a server that does not advertise PIPELINING.
    """

    hold_replies = True

    def connection_made(self, transport) -> None:
        self._held_replies: list[bytes] = []
        super().connection_made(transport)

    async def push(self, status: str | bytes) -> None:
        """Send a reply, or hold it while another pipelined command is waiting to be read."""
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        self._held_replies.append(status + b"\r\n")
        if self.hold_replies and not status.startswith(_SEND_AT_ONCE) and self._command_waiting():
            return
        self._writer.write(b"".join(self._held_replies))
        self._held_replies.clear()
        await self._writer.drain()

    def _command_waiting(self) -> bool:
        # asyncio's StreamReader keeps what it read ahead in `_buffer`; a line
        # end in it means the client already sent the next command.
        buffered = getattr(self._reader, "_buffer", None)
        return bool(buffered) and b"\n" in buffered

    def flush_held_replies(self) -> None:
        """Write what is held without waiting (before closing the transport)."""
        if self._held_replies and self.transport is not None:
            self.transport.write(b"".join(self._held_replies))
        self._held_replies.clear()

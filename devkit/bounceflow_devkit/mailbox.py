"""A capturing SMTP server: the customer's mailbox, the forwarded-bounce receiver.

Tests and `make demo` need somewhere for mail to land that they can look
into: forwarded bounces, the simulated MX's bounces (as `bounce_relay`), mail
a check should see. `MailSink` accepts everything (DSN parameters included)
and records it; it is the simulator's server without the behaviours.
"""

from __future__ import annotations

import ssl

from bounceflow_devkit.smtp_server import RecordingHandler, SmtpServer


class MailSink(SmtpServer):
    """Accepts every mail on `host:port` (0: any free port) into `.received`.

    `await start()` / `await stop()` (or `async with`), `.port` after start,
    `await wait_for(lambda: len(sink.received) == 1)`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostname: str = "sink.sim.test",
        dsn: bool = True,
        pipelining: bool = True,
        starttls_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(RecordingHandler, host, port, hostname=hostname, dsn=dsn, pipelining=pipelining,
                         starttls_context=starttls_context)

    def to(self, address: str) -> list:
        """Mails received for `address` (case-insensitive)."""
        return [mail for mail in self.received if address.lower() in (r.lower() for r in mail.rcpt_tos)]

"""The MX simulator queues a bounce that got a 4xx answer and tries again, like a real MTA."""

import asyncio

import aiosmtplib
from aiosmtpd.smtp import SMTP

from bounceflow_devkit.mx_simulator import MxSimulator


class RelayThatRefuses:
    """A bounce relay that answers `reply` to the first `times` MAIL commands."""

    def __init__(self, times: int, reply: str) -> None:
        self.times, self.reply = times, reply
        self.mail_commands = 0
        self.accepted: list[bytes] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands += 1
        if self.times > 0:
            self.times -= 1
            return self.reply
        envelope.mail_from = address
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
        self.accepted.append(envelope.content)
        return "250 2.0.0 OK"


async def bounce_through(relay: RelayThatRefuses) -> MxSimulator:
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(relay), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mx = MxSimulator(bounce_relay=("127.0.0.1", port))
    await mx.start()
    try:
        await aiosmtplib.send(b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n", sender="b.1.x@bounces.localhost",
                              recipients=["dsn-failure+1@example.com"], hostname="127.0.0.1", port=mx.port)
        await mx.wait_for(lambda: mx.bounces_sent or mx.bounce_failures, timeout=15)
    finally:
        await mx.stop()
        server.close()
    return mx


async def test_a_deferred_bounce_is_sent_again():
    relay = RelayThatRefuses(2, "450 4.7.1 Too many messages from your address, try again later")
    mx = await bounce_through(relay)
    assert len(mx.bounces_sent) == 1 and not mx.bounce_failures
    assert relay.mail_commands == 3 and len(relay.accepted) == 1


async def test_a_refused_bounce_is_not_retried():
    relay = RelayThatRefuses(1, "550 5.1.1 No such user")
    mx = await bounce_through(relay)
    assert not mx.bounces_sent and len(mx.bounce_failures) == 1
    assert relay.mail_commands == 1 and "550" in mx.bounce_failures[0].error

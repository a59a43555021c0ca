"""The load generator's SMTP client against real aiosmtpd servers on loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from bounceflow_devkit.loadgen import LoadSmtpClient, Mail, SmtpLoadError, simple_mail, smtp_send
from bounceflow_devkit.mailbox import MailSink
from bounceflow_devkit.mx_simulator import MxSimulator

BODY = b"Subject: load\r\n\r\n.a line that starts with a dot\r\nbare\nline feed\r\n."


@pytest.mark.parametrize("pipelining", [True, False])
async def test_mails_arrive_intact_with_and_without_pipelining(pipelining):
    async with MailSink(pipelining=pipelining) as sink:
        mails = [Mail(f"from{i}@example.test", [f"to{i}@example.test", f"cc{i}@example.test"], BODY) for i in range(30)]
        result = await smtp_send("127.0.0.1", sink.port, mails, connections=3)
        client = await LoadSmtpClient.connect("127.0.0.1", sink.port)
        offered = client.pipelining
        await client.quit()
    assert offered is pipelining
    assert (result.sent, result.refused, result.errors) == (30, 0, [])
    assert len(result.latencies) == 30
    by_sender = {m.mail_from: m for m in sink.received}
    assert sorted(by_sender) == sorted(m.sender for m in mails)
    received = by_sender["from7@example.test"]
    assert received.rcpt_tos == ["to7@example.test", "cc7@example.test"]
    assert received.data.replace(b"\r\n", b"\n") == BODY.replace(b"\r\n", b"\n") + b"\n"


@pytest.mark.parametrize("pipelining", [True, False])
async def test_refusals_are_counted_and_the_session_goes_on(pipelining):
    async with MxSimulator(pipelining=pipelining) as mx:
        mails = [
            Mail("a@example.test", ["accept+1@example.test", "refuse-rcpt@example.test"], BODY),  # one refused
            Mail("a@example.test", ["refuse-rcpt@example.test"], BODY),  # all refused: an error
            Mail("a@example.test", ["refuse-data@example.test"], BODY),  # refused after the message
            Mail("a@example.test", ["accept+2@example.test"], BODY),
        ]
        accepted: list[int] = []
        result = await smtp_send("127.0.0.1", mx.port, mails, connections=1, on_sent=accepted.append)
    assert (result.sent, result.refused) == (2, 1)
    assert accepted == [0, 3]  # the indexes of the mails the server took
    assert [e.split(" ")[:2] for e in result.errors] == [["SmtpLoadError:", "550"], ["SmtpLoadError:", "554"]]
    assert sorted(r for m in mx.received for r in m.rcpt_tos) == ["accept+1@example.test", "accept+2@example.test"]


class PasswordHandler:
    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        return "250 OK" if session.authenticated else "530 5.7.0 Authentication required"


def _authenticator(handler: PasswordHandler):
    def check(server, session, envelope, mechanism, auth_data):
        handler.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"right", handled=False)  # aiosmtpd answers 535
    return check


@pytest.fixture
async def auth_server():
    handler = PasswordHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, authenticator=_authenticator(handler), auth_require_tls=False), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], handler
    server.close()
    await server.wait_closed()


async def test_auth_plain_logs_in_before_sending(auth_server):
    port, handler = auth_server
    result = await smtp_send("127.0.0.1", port, [Mail("a@example.test", ["b@example.test"], BODY)],
                             username="customer", password="right")
    assert (result.sent, result.errors) == (1, [])
    assert handler.logins == [(b"customer", b"right")]


async def test_a_wrong_password_is_a_clear_error(auth_server):
    port, _ = auth_server
    with pytest.raises(SmtpLoadError, match="AUTH: 535"):
        await LoadSmtpClient.connect("127.0.0.1", port, username="customer", password="wrong")


async def test_simple_mail_has_the_asked_size():
    mail = simple_mail("a@example.test", "b@example.test", "s", 1024)
    assert 1024 < len(mail) < 1024 + 200 and mail.endswith(b"\r\n")

"""The simulated MX over real SMTP sessions on loopback, bounces landing in a MailSink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import ssl

import aiosmtplib
import pytest
import pytest_asyncio
import trustme

from bounceflow.models import MESSAGE_ID_HEADER
from bounceflow_devkit import replies
from bounceflow_devkit.mailbox import MailSink
from bounceflow_devkit.mx_simulator import BEHAVIOURS, MxSimulator, dsn_requested, keyword_of

VERP = "b.m42.abc123@bounces.localhost"
MESSAGE = (
    "From: news@shop.test\r\nTo: someone@example.test\r\nSubject: Weekly news\r\n"
    f"Message-ID: <m42@shop.test>\r\n{MESSAGE_ID_HEADER}: m42\r\n\r\nHello.\r\n"
).encode()


@pytest_asyncio.fixture
async def sink():
    async with MailSink(hostname="bounces.sim.test") as server:
        yield server


@pytest_asyncio.fixture
async def mx(sink):
    simulator = MxSimulator(bounce_relay=("127.0.0.1", sink.port))
    async with simulator:
        yield simulator


async def connect(port: int, **kwargs) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, **kwargs)
    await client.connect()
    await client.ehlo()
    return client


async def send(port: int, rcpts: list[str], *, mail_from: str = VERP, mail_options=(), rcpt_options=()):
    client = await connect(port)
    try:
        return await client.sendmail(mail_from, rcpts, MESSAGE, mail_options=list(mail_options),
                                     rcpt_options=list(rcpt_options))
    finally:
        client.close()


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


# -- pure parts ------------------------------------------------------------------

def test_keyword_is_the_local_part_before_plus():
    assert keyword_of("refuse-rcpt+17@example.test") == "refuse-rcpt"
    assert keyword_of("DSN-Failure@example.test") == "dsn-failure"
    assert keyword_of("alice@example.test") == "alice"


def test_notify_defaults_to_failure_and_delay():
    assert dsn_requested(None, "FAILURE") and dsn_requested(None, "DELAY")
    assert not dsn_requested(None, "SUCCESS")
    assert dsn_requested("SUCCESS,FAILURE", "SUCCESS")
    assert not dsn_requested("NEVER", "FAILURE")


def test_unknown_default_is_refused():
    with pytest.raises(ValueError):
        MxSimulator(default="nonsense")


# -- the SMTP dialogue -----------------------------------------------------------

async def test_accept_records_dsn_params_in_their_case_per_recipient(mx):
    client = await connect(mx.port)
    assert {"dsn", "8bitmime", "smtputf8"} <= set(client.esmtp_extensions)
    await client.mail(VERP, options=["RET=HDRS", "ENVID=Env+2B42", "BODY=8BITMIME"])
    await client.rcpt("alice@example.test", options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;Alice@Example.test"])
    await client.rcpt("bob+1@example.test", options=["NOTIFY=NEVER"])
    await client.rcpt("carol@example.test")
    await client.data(MESSAGE)
    client.close()

    [mail] = mx.received
    assert mail.mail_from == VERP
    assert mail.rcpt_tos == ["alice@example.test", "bob+1@example.test", "carol@example.test"]
    assert mail.mail_params == {"RET": "HDRS", "ENVID": "Env+2B42", "BODY": "8BITMIME"}
    assert mail.rcpt_params("alice@example.test") == {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;Alice@Example.test"}
    assert mail.rcpt_params("bob+1@example.test") == {"NOTIFY": "NEVER"}
    assert mail.rcpt_params("carol@example.test") == {}
    assert mail.data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
    assert mail.tls is False
    assert mx.bounces_sent == []


async def _raw_session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[str]]:
    """A plain socket session after EHLO: (reader, writer, EHLO keywords)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220")
    writer.write(b"EHLO client.test\r\n")
    keywords = []
    while line := (await reader.readline()).decode():
        keywords.append(line[4:].split(" ")[0].strip().upper())
        if line[3] == " ":
            break
    return reader, writer, keywords


async def _replies(reader: asyncio.StreamReader, count: int) -> list[str]:
    return [(await asyncio.wait_for(reader.readline(), 10)).decode().rstrip() for _ in range(count)]


async def test_pipelining_is_offered_and_a_pipelined_transaction_gets_every_reply_in_order(mx):
    reader, writer, keywords = await _raw_session(mx.port)
    assert "PIPELINING" in keywords
    writer.write(f"MAIL FROM:<{VERP}> RET=HDRS\r\nRCPT TO:<alice@example.test> NOTIFY=NEVER\r\n"
                 "RCPT TO:<refuse-rcpt@example.test>\r\nDATA\r\n".encode())  # one write, RFC 2920
    # held while the next command waited, so the group comes back in one write (RFC 2920 §3.2)
    mail, alice, refused, data = (await asyncio.wait_for(reader.read(65536), 10)).decode().splitlines()
    assert (mail, alice, refused) == (replies.OK, replies.OK, replies.USER_UNKNOWN)
    assert data.startswith("354")
    writer.write(MESSAGE + b".\r\nMAIL FROM:<>\r\nRCPT TO:<refuse-rcpt@example.test>\r\nDATA\r\n")
    accepted, mail, refused, data = await _replies(reader, 4)
    assert (accepted, mail, refused) == (replies.ACCEPTED, replies.OK, replies.USER_UNKNOWN)
    assert data.startswith("503")  # no valid recipient: DATA refused, nothing to send
    writer.close()

    [received] = mx.received
    assert (received.mail_from, received.rcpt_tos) == (VERP, ["alice@example.test"])
    assert received.mail_params == {"RET": "HDRS"} and received.rcpt_params("alice@example.test") == {"NOTIFY": "NEVER"}


@pytest.mark.parametrize("server", [MxSimulator, MailSink])
async def test_pipelining_can_be_switched_off(server):
    async with server(pipelining=False) as mx:
        _, writer, keywords = await _raw_session(mx.port)
        writer.close()
    assert "PIPELINING" not in keywords and "DSN" in keywords


async def test_accepted_mail_is_not_parsed_when_its_log_line_is_off(mx, monkeypatch, caplog):
    def no_parsing():
        raise AssertionError("headers parsed for a log line nobody sees")

    monkeypatch.setattr("bounceflow_devkit.mx_simulator.BytesHeaderParser", no_parsing)
    caplog.set_level(logging.WARNING, logger="bounceflow_devkit.mx_simulator")
    errors, _ = await send(mx.port, ["alice@example.test"])
    assert errors == {} and len(mx.received) == 1


async def test_without_dsn_it_is_not_offered_and_its_params_are_refused():
    async with MxSimulator(dsn=False) as mx:
        client = await connect(mx.port)
        assert "dsn" not in client.esmtp_extensions
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(VERP, options=["RET=HDRS"])
        assert refused.value.code == 555
        await client.mail(VERP)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt("alice@example.test", options=["NOTIFY=FAILURE"])
        assert refused.value.code == 555
        client.close()


async def test_malformed_dsn_params_are_refused(mx):
    client = await connect(mx.port)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await client.mail(VERP, options=["RET=BODY"])
    assert refused.value.code == 501
    await client.mail(VERP)
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
        await client.rcpt("alice@example.test", options=["NOTIFY=NEVER,FAILURE"])
    assert refused.value.code == 501
    client.close()


async def test_refuse_rcpt(mx):
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(mx.port, ["refuse-rcpt+17@example.test"])
    [error] = refused.value.recipients
    assert (error.code, error.message) == (550, replies.USER_UNKNOWN.split(" ", 1)[1])
    assert mx.received == []


async def test_refuse_data(mx):
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(mx.port, ["refuse-data@example.test"])
    assert refused.value.code == 554
    assert refused.value.message.startswith("5.7.1")
    assert mx.received == []


async def test_defer_then_accept():
    async with MxSimulator(defer_times=2) as mx:
        for _ in range(2):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as deferred:
                await send(mx.port, ["defer+1@example.test"])
            assert deferred.value.recipients[0].code == 451
            assert deferred.value.recipients[0].message.startswith("4.7.1")
        errors, _ = await send(mx.port, ["defer+1@example.test"])
        assert errors == {}
        assert [m.rcpt_tos for m in mx.received] == [["defer+1@example.test"]]


async def test_drop_closes_the_connection_without_a_reply(mx):
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send(mx.port, ["drop@example.test"])
    assert mx.received == []
    errors, _ = await send(mx.port, ["alice@example.test"])  # still serving
    assert errors == {}


async def test_default_applies_to_local_parts_that_are_no_keyword():
    async with MxSimulator(default="refuse-rcpt") as mx:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send(mx.port, ["alice@example.test"])
        errors, _ = await send(mx.port, ["accept+1@example.test"])
        assert errors == {}


async def test_starttls_with_a_test_ca():
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with MxSimulator(starttls_context=server_context) as mx:
        client = await connect(mx.port, tls_context=client_context)
        assert "starttls" in client.esmtp_extensions
        await client.starttls()
        await client.ehlo()
        assert "dsn" in client.esmtp_extensions
        assert "starttls" not in client.esmtp_extensions
        errors, _ = await client.sendmail(VERP, ["alice@example.test"], MESSAGE, rcpt_options=["NOTIFY=FAILURE"])
        client.close()
    assert errors == {}
    assert mx.received[0].tls is True


# -- what comes back ---------------------------------------------------------------

async def test_dsn_failure_goes_to_the_envelope_sender_from_null(mx, sink):
    await send(mx.port, ["dsn-failure+1@example.test", "alice@example.test"],
               mail_options=["RET=HDRS", "ENVID=Env+2B42"],
               rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;Dsn-Failure+2B1@example.test"])
    await sink.wait_for(lambda: sink.received)

    [bounce] = sink.received
    assert bounce.mail_from == "<>"
    assert bounce.rcpt_tos == [VERP]
    report = parse(bounce.data)
    assert report.get_param("report-type") == "delivery-status"
    per_message, per_recipient = report.get_payload()[1].get_payload()
    assert per_message["Original-Envelope-Id"] == "Env+42"
    assert per_message["Reporting-MTA"] == "dns; mx.sim.test"
    assert per_recipient["Final-Recipient"] == "rfc822; dsn-failure+1@example.test"
    assert per_recipient["Original-Recipient"] == "rfc822;Dsn-Failure+1@example.test"
    assert (per_recipient["Action"], per_recipient["Status"]) == ("failed", "5.1.1")
    returned = report.get_payload()[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert f"{MESSAGE_ID_HEADER}: m42" in returned.get_content()
    await mx.wait_for(lambda: mx.bounces_sent)  # recorded once the relay's session ends
    assert [(b.kind, b.for_recipient) for b in mx.bounces_sent] == [("dsn-failure", "dsn-failure+1@example.test")]


@pytest.mark.parametrize(("keyword", "action", "status"), [
    ("mailboxfull", "failed", "5.2.2"),
    ("dsn-delay", "delayed", "4.4.1"),
])
async def test_other_dsns(mx, sink, keyword, action, status):
    await send(mx.port, [f"{keyword}@example.test"])
    await sink.wait_for(lambda: sink.received)

    report = parse(sink.received[0].data)
    _, per_recipient = report.get_payload()[1].get_payload()
    assert (per_recipient["Action"], per_recipient["Status"]) == (action, status)
    returned = report.get_payload()[2]
    assert returned.get_content_type() == "message/rfc822"
    assert returned.get_payload()[0][MESSAGE_ID_HEADER] == "m42"


async def test_dsn_success_only_when_notify_asks_for_it(mx, sink):
    await send(mx.port, ["dsn-success+quiet@example.test"])
    await send(mx.port, ["dsn-success+asked@example.test"], rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    await mx.stop()  # lets every bounce in flight finish

    assert [b.for_recipient for b in mx.bounces_sent] == ["dsn-success+asked@example.test"]
    _, per_recipient = parse(sink.received[0].data).get_payload()[1].get_payload()
    assert per_recipient["Action"] == "delivered"


async def test_nothing_comes_back_for_notify_never_or_a_null_sender(mx, sink):
    await send(mx.port, ["dsn-failure+never@example.test"], rcpt_options=["NOTIFY=NEVER"])
    await send(mx.port, ["dsn-failure+null@example.test", "nonstandard@example.test"], mail_from="")
    await mx.stop()

    assert len(mx.received) == 2
    assert mx.bounces_sent == [] and mx.bounce_failures == []
    assert sink.received == []


async def test_autoreply_comes_from_the_recipient(mx, sink):
    await send(mx.port, ["autoreply+1@example.test"])
    await sink.wait_for(lambda: sink.received)

    [reply] = sink.received
    assert (reply.mail_from, reply.rcpt_tos) == ("autoreply+1@example.test", [VERP])
    message = parse(reply.data)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<m42@shop.test>"


async def test_nonstandard_bounce_is_plain_text_from_null(mx, sink):
    await send(mx.port, ["nonstandard@example.test"])
    await sink.wait_for(lambda: sink.received)

    [bounce] = sink.received
    assert (bounce.mail_from, bounce.rcpt_tos) == ("<>", [VERP])
    message = parse(bounce.data)
    assert message.get_content_type() == "text/plain"
    assert f"{MESSAGE_ID_HEADER}: m42" in message.get_content()


async def test_complaint_is_arf_from_a_feedback_address(mx, sink):
    await send(mx.port, ["complaint@example.test"])
    await sink.wait_for(lambda: sink.received)

    [report] = sink.received
    assert (report.mail_from, report.rcpt_tos) == ("feedback@mx.sim.test", [VERP])
    message = parse(report.data)
    assert message.get_param("report-type") == "feedback-report"
    assert message.get_payload()[1].get_payload()[0]["Feedback-Type"] == "abuse"


async def test_an_unreachable_bounce_relay_is_recorded_not_fatal():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with MxSimulator(bounce_relay=("127.0.0.1", closed_port)) as mx:
        errors, _ = await send(mx.port, ["dsn-failure@example.test"])
        assert errors == {}
        await mx.wait_for(lambda: mx.bounce_failures)
        assert mx.bounce_failures[0].error
        assert mx.bounces_sent == []
        errors, _ = await send(mx.port, ["alice@example.test"])
        assert errors == {}


def test_every_behaviour_is_covered_here():
    assert set(BEHAVIOURS) == {
        "accept", "refuse-rcpt", "refuse-data", "defer", "drop", "dsn-failure", "mailboxfull",
        "dsn-delay", "dsn-success", "autoreply", "nonstandard", "complaint",
    }

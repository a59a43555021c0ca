"""`python -m bounceflow_devkit.mx_simulator` as `make run` starts it, and the MailSink."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiosmtplib
import pytest

from bounceflow.models import MESSAGE_ID_HEADER
from bounceflow_devkit.mailbox import MailSink

MESSAGE = f"From: news@shop.test\r\nSubject: hi\r\n{MESSAGE_ID_HEADER}: m7\r\n\r\nHello.\r\n".encode()


async def _log_line(stream: asyncio.StreamReader, msg: str, timeout: float = 20.0) -> dict:
    """The next JSON log line whose `msg` is `msg`."""
    async def scan() -> dict:
        while line := await stream.readline():
            entry = json.loads(line)
            if entry["msg"] == msg:
                return entry
        raise AssertionError(f"process ended before logging {msg!r}")

    return await asyncio.wait_for(scan(), timeout)


async def test_module_entry_point_serves_bounces_and_logs_json_until_sigterm():
    async with MailSink() as relay:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bounceflow_devkit.mx_simulator",
            "--port", "0", "--bounce-relay", f"127.0.0.1:{relay.port}", "--default", "dsn-failure",
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            listening = await _log_line(process.stderr, "smtp server listening")
            assert listening["service"] == "mx-simulator"
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=listening["port"], start_tls=False) as client:
                await client.sendmail("b.m7.sig@bounces.localhost", ["alice@example.test"], MESSAGE)

            accepted = await _log_line(process.stderr, "mail accepted")
            assert accepted["message_id"] == "m7"
            assert accepted["behaviours"] == ["dsn-failure"]
            await relay.wait_for(lambda: relay.to("b.m7.sig@bounces.localhost"))
            assert relay.received[0].mail_from == "<>"
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(process.wait(), 20)
    assert returncode == 0


async def test_mail_sink_records_what_arrives_including_smtputf8():
    async with MailSink() as sink:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False) as client:
            await client.ehlo()
            assert "smtputf8" in client.esmtp_extensions
            await client.sendmail("jörg@shop.test", ["Forward@Customer.test"], "Subject: ü\r\n\r\nGrüße\r\n".encode(),
                                  mail_options=["SMTPUTF8", "BODY=8BITMIME"], rcpt_options=["NOTIFY=NEVER"])
        [mail] = sink.received
        assert mail.mail_from == "jörg@shop.test"
        assert {"SMTPUTF8": "", "BODY": "8BITMIME"}.items() <= mail.mail_params.items()
        assert mail.rcpt_params("Forward@Customer.test") == {"NOTIFY": "NEVER"}
        assert "Grüße".encode() in mail.data
        assert sink.to("forward@customer.test") == [mail]
        assert sink.to("nobody@customer.test") == []


async def test_stop_closes_sessions_still_open():
    sink = MailSink()
    await sink.start()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
    await client.connect()
    await client.ehlo()
    await sink.stop()

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client.noop()
    client.close()

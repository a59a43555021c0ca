"""Issue 2: one bounce travels the whole system on real Kafka and chDB.

SMTP injection -> ingress -> `outgoing` -> sender -> MX simulator (accepts,
then returns an RFC 3464 failure DSN to the VERP address) -> bounce-receiver
-> `raw-bounce` -> classifier (joined with the sent message) ->
`classified-bounce` -> notifier -> ClickHouse rows + signed webhook.
"""

from __future__ import annotations

import json
from email.message import EmailMessage

import aiosmtplib
from standardwebhooks import Webhook as StandardWebhook

from bounceflow.verp import VerpCodec
from bounceflow_devkit.mx_simulator import MxSimulator
from bounceflow_devkit.webhook_sink import WebhookSink

BOUNCE_DOMAIN = "bounces.localhost"


def _message(recipient: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "info@example.com"
    message["To"] = recipient
    message["Subject"] = subject
    message["Return-Path"] = "<customer-bounces@example.com>"  # must be replaced: tracking is on
    message.set_content("This is example content.\n")
    return message


async def _inject(system, recipient: str, subject: str) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=system.ports["ingress_smtp"], start_tls=False) as smtp:
        await smtp.login("demo", system.password)
        errors, reply = await smtp.send_message(_message(recipient, subject), sender="info@example.com")
        assert errors == {} and reply.startswith("2")


async def test_a_dsn_failure_reaches_webhooks_and_both_logs(system):
    recipient = "dsn-failure+skeleton@example.com"
    mx = MxSimulator(port=system.ports["mx"], bounce_relay=("127.0.0.1", system.ports["receiver_smtp"]))
    sink = WebhookSink(port=system.ports["webhooks"])
    await mx.start()
    await sink.start()
    try:
        await _inject(system, recipient, "skeleton")

        # The remote MX got the mail from our signed VERP address, Return-Path gone.
        await mx.wait_for(lambda: any(recipient in m.rcpt_tos for m in mx.received), timeout=60)
        mail = next(m for m in mx.received if recipient in m.rcpt_tos)
        message_id = VerpCodec([system.verp_secret]).message_id(mail.mail_from, [BOUNCE_DOMAIN])
        assert message_id, f"MAIL FROM {mail.mail_from!r} is not a signed VERP address"
        assert b"customer-bounces@example.com" not in mail.data
        assert f"X-Bounceflow-Id: {message_id}".encode() in mail.data

        # The bounce feedback loop: seed fields plus the classification, signed.
        call = (await sink.wait_for(1, timeout=90, path="/bounces"))[0]
        body = json.loads(call.body)
        StandardWebhook(system.webhook_secret).verify(call.body, call.headers)
        assert body["id"] == message_id
        assert body["recipient"] == recipient
        assert body["mailfrom"] == ""
        assert body["rcptto"].lower() == mail.mail_from.lower()
        assert body["category"] == "dsn-failure"
        assert body["bounce_type"] == "hard"
        assert body["status"] == "5.1.1"
        assert "multipart/report" in body["mime"]
        # A recognised DSN failure also goes to the failure feedback loop.
        failure = json.loads((await sink.wait_for(1, timeout=60, path="/failures"))[0].body)
        assert failure["id"] == message_id and failure["status"] == "5.1.1"

        # Both logs in ClickHouse, read back through the notifier's read API.
        bounce_rows = await system.wait_rows("/api/bounces", lambda r: r["message_id"] == message_id)
        assert bounce_rows[0]["category"] == "dsn-failure"
        assert bounce_rows[0]["recipient"] == recipient
        failure_rows = await system.wait_rows("/api/failures", lambda r: r["message_id"] == message_id)
        assert failure_rows[0]["status"] == "5.1.1"
        assert failure_rows[0]["source"] == "dsn"
    finally:
        await sink.stop()
        await mx.stop()


async def test_a_refused_rcpt_lands_in_the_failure_log(system):
    recipient = "refuse-rcpt+skeleton@example.com"
    mx = MxSimulator(port=system.ports["mx"], bounce_relay=("127.0.0.1", system.ports["receiver_smtp"]))
    sink = WebhookSink(port=system.ports["webhooks"])
    await mx.start()
    await sink.start()
    try:
        await _inject(system, recipient, "refused")
        rows = await system.wait_rows("/api/failures", lambda r: r["recipient"] == recipient)
        assert rows[0]["status"] == "5.1.1"
        assert rows[0]["smtp_code"] == 550
        assert rows[0]["source"] == "delivery"
        failure = json.loads((await sink.wait_for(1, timeout=60, path="/failures"))[0].body)
        assert failure["recipient"] == recipient and failure["status"] == "5.1.1"
        # Refused at SMTP time: no mail was accepted, so nothing reaches the bounce log.
        assert not [m for m in mx.received if recipient in m.rcpt_tos]
    finally:
        await sink.stop()
        await mx.stop()

"""Issue 8: every scenario of the seeds, end to end on the real broker and chDB.

The seeds are the product brief (../shared/seeds/): the SMTP transcripts with
and without a Return-Path header, bounce tracking on and off, `MAIL FROM:<>`,
the REST bodies of the bounce protocol, and which bounces are forwarded to
the customer's envelope address, logged, and sent to the feedback loops.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from email import message_from_bytes

import aiosmtplib
import httpx
import pytest

from bounceflow.verp import VerpCodec
from bounceflow_devkit.mailbox import MailSink
from bounceflow_devkit.mx_simulator import MxSimulator
from bounceflow_devkit.webhook_sink import WebhookSink

BOUNCE_DOMAIN = "bounces.localhost"


@dataclass
class Internet:
    """The world outside the relay: remote MX, customer's mailbox, customer's webhook endpoint."""

    mx: MxSimulator
    mailbox: MailSink
    hooks: WebhookSink


@pytest.fixture
async def internet(system):
    net = Internet(
        MxSimulator(port=system.ports["mx"], bounce_relay=("127.0.0.1", system.ports["receiver_smtp"])),
        MailSink(port=system.ports["mailbox"]),
        WebhookSink(port=system.ports["webhooks"]),
    )
    for part in (net.mx, net.mailbox, net.hooks):
        await part.start()
    yield net
    for part in (net.hooks, net.mailbox, net.mx):
        await part.stop()


def rcpt(keyword: str) -> str:
    """A recipient the MX simulator treats as `keyword`, unique per call."""
    return f"{keyword}+{secrets.token_hex(4)}@example.com"


def mime(recipient: str, return_path: str | None = None) -> bytes:
    head = f"Return-Path: <{return_path}>\r\n" if return_path else ""
    return (f"{head}From: <info@example.com>\r\nTo: <{recipient}>\r\nSubject: seed\r\n\r\n"
            "This is example content.\r\n").encode()


async def smtp(system, account: str, mail_from: str, recipient: str, data: bytes,
               mail_options=(), rcpt_options=()) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=system.ports["ingress_smtp"], start_tls=False) as client:
        await client.login(account, system.password)
        errors, reply = await client.sendmail(mail_from, [recipient], data, mail_options=list(mail_options),
                                              rcpt_options=list(rcpt_options))
        assert errors == {} and reply.startswith("2")


async def rest(system, body: dict) -> str:
    """POST a seed body; returns the message id of its one recipient."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"http://127.0.0.1:{system.ports['ingress_http']}/v1/send", json=body,
                                     headers={"Authorization": f"Bearer {system.api_key}"})
    assert response.status_code in (200, 201, 202), response.text
    (message,) = response.json()["messages"]
    return message["message_id"]


async def delivered(internet: Internet, recipient: str):
    await internet.mx.wait_for(lambda: any(recipient in m.rcpt_tos for m in internet.mx.received), timeout=60)
    return next(m for m in internet.mx.received if recipient in m.rcpt_tos)


def verp_id(system, mail_from: str) -> str | None:
    return VerpCodec([system.verp_secret]).message_id(mail_from, [BOUNCE_DOMAIN])


async def forwarded(internet: Internet, to: str, timeout: float = 60):
    await internet.mailbox.wait_for(lambda: any(to in m.rcpt_tos for m in internet.mailbox.received), timeout=timeout)
    return [m for m in internet.mailbox.received if to in m.rcpt_tos]


# --- SMTP transcripts (smtpeter-bounce-tracking.md, smtpeter-bounce-protocol-nl.md) ---------------

async def test_smtp_tracking_on_uses_our_verp_address_and_drops_return_path(system, internet):
    recipient = rcpt("accept")
    await smtp(system, "demo", "info@example.com", recipient, mime(recipient, return_path="bounce@example.com"))
    mail = await delivered(internet, recipient)
    assert verp_id(system, mail.mail_from)
    assert b"bounce@example.com" not in mail.data


async def test_smtp_tracking_off_without_return_path_uses_the_envelope(system, internet):
    recipient = rcpt("accept")
    await smtp(system, "plain", "info@example.com", recipient, mime(recipient))
    assert (await delivered(internet, recipient)).mail_from == "info@example.com"


async def test_smtp_tracking_off_uses_the_return_path_header(system, internet):
    recipient = rcpt("accept")
    await smtp(system, "plain", "info@example.com", recipient, mime(recipient, return_path="bounce@example.com"))
    assert (await delivered(internet, recipient)).mail_from == "bounce@example.com"


async def test_smtp_null_sender_without_tracking_stays_null(system, internet):
    recipient = rcpt("accept")
    await smtp(system, "plain", "", recipient, mime(recipient))
    assert (await delivered(internet, recipient)).mail_from in ("", "<>")


async def test_smtp_null_sender_with_tracking_records_but_forwards_nothing(system, internet):
    silent, control = rcpt("dsn-failure"), rcpt("dsn-failure")
    await smtp(system, "demo", "", silent, mime(silent))
    await smtp(system, "demo", "control@example.com", control, mime(control))
    silent_id = verp_id(system, (await delivered(internet, silent)).mail_from)
    assert silent_id, "tracking is on: MAIL FROM:<> still leaves with our VERP address"
    rows = await system.wait_rows("/api/failures", lambda r: r["message_id"] == silent_id)
    assert rows[0]["source"] == "dsn"
    await forwarded(internet, "control@example.com")
    await internet.hooks.wait_for(1, path="/bounces")
    await system.wait_rows("/api/bounces", lambda r: r["message_id"] == silent_id)
    assert not [m for m in internet.mailbox.received if m.rcpt_tos != ["control@example.com"]]


async def test_smtp_dsn_parameters_pass_through_and_come_back(system, internet):
    # MAIL FROM:<alice@example.org> RET=HDRS ENVID=yourid / RCPT TO:<bob@…> NOTIFY=SUCCESS ORCPT=rfc822;…
    recipient = rcpt("dsn-success")
    orcpt = "rfc822;" + recipient.replace("+", "+2B")  # xtext (RFC 3461 4.)
    await smtp(system, "demo", "alice@example.org", recipient, mime(recipient),
               mail_options=["RET=HDRS", "ENVID=yourid"], rcpt_options=["NOTIFY=SUCCESS", f"ORCPT={orcpt}"])
    mail = await delivered(internet, recipient)
    message_id = verp_id(system, mail.mail_from)
    assert mail.mail_params.get("ENVID") == message_id  # the next hop gets our id
    assert mail.mail_params.get("RET") == "HDRS"
    notify = set(mail.rcpt_params(recipient)["NOTIFY"].split(","))
    assert notify == {"SUCCESS", "FAILURE", "DELAY"}  # tracking: failures are always recorded
    assert mail.rcpt_params(recipient)["ORCPT"].lower() == orcpt.lower()
    # The success DSN is forwarded (the customer asked for SUCCESS) with their ENVID restored.
    (dsn,) = await forwarded(internet, "alice@example.org")
    assert dsn.mail_from in ("", "<>")
    assert b"Original-Envelope-Id: yourid" in dsn.data
    assert b"text/rfc822-headers" in dsn.data


# --- REST bodies (smtpeter-bounce-protocol-nl.md, smtpeter-bounce-tracking.md) ------------------

def seed_body(recipient: str, **extra) -> dict:
    return {"recipient": recipient, "mime": mime(recipient).decode(), **extra}


async def test_rest_notify_never_records_dsns_but_still_forwards_autoreplies(system, internet):
    failure, vacation = rcpt("dsn-failure"), rcpt("autoreply")
    never = {"envelope": "bounce@yourdomain.com", "trackbounces": True, "dsn": {"notify": "NEVER"}}
    failure_id = await rest(system, seed_body(failure, **never))
    await rest(system, seed_body(vacation, **never))
    (reply,) = await forwarded(internet, "bounce@yourdomain.com")
    assert b"out of the office" in reply.data.lower() or b"auto-submitted" in reply.data.lower()
    rows = await system.wait_rows("/api/failures", lambda r: r["message_id"] == failure_id)
    assert rows[0]["category"] == "dsn-failure"
    await system.wait_rows("/api/bounces", lambda r: r["message_id"] == failure_id)
    assert len([m for m in internet.mailbox.received if "bounce@yourdomain.com" in m.rcpt_tos]) == 1


async def test_rest_without_envelope_records_errors_and_forwards_nothing(system, internet):
    recipient, control = rcpt("dsn-failure"), rcpt("dsn-failure")
    message_id = await rest(system, seed_body(recipient, trackbounces=True))
    await rest(system, seed_body(control, envelope="control@yourdomain.com", dsn={"notify": "FAILURE"}))
    assert verp_id(system, (await delivered(internet, recipient)).mail_from) == message_id
    await system.wait_rows("/api/failures", lambda r: r["message_id"] == message_id)
    await forwarded(internet, "control@yourdomain.com")
    assert all(m.rcpt_tos == ["control@yourdomain.com"] for m in internet.mailbox.received)


async def test_rest_notify_failure_forwards_the_dsn_to_the_envelope(system, internet):
    recipient = rcpt("dsn-failure")
    message_id = await rest(system, seed_body(recipient, envelope="bounce@yourdomain.com", trackbounces=True,
                                              dsn={"notify": "FAILURE"}))
    (dsn,) = await forwarded(internet, "bounce@yourdomain.com")
    report = message_from_bytes(dsn.data)
    assert report.get_content_type() == "multipart/report"
    assert b"5.1.1" in dsn.data
    await system.wait_rows("/api/failures", lambda r: r["message_id"] == message_id)


async def test_rest_ret_hdrs_envid_orcpt_are_honoured_in_the_forwarded_dsn(system, internet):
    recipient = rcpt("dsn-failure")
    await rest(system, {"envelope": "bounce@yourdomain.com", "recipient": recipient, "mime": mime(recipient).decode(),
                        "dsn": {"notify": "FAILURE", "ret": "HDRS", "envid": "unique-identifier",
                                "orcpt": "info@example.com"}})
    (dsn,) = await forwarded(internet, "bounce@yourdomain.com")
    assert b"Original-Envelope-Id: unique-identifier" in dsn.data
    assert b"rfc822;info@example.com" in dsn.data
    assert b"text/rfc822-headers" in dsn.data
    assert b"This is example content." not in dsn.data  # RET=HDRS: headers only


async def test_rest_tracking_disabled_sends_from_the_envelope(system, internet):
    recipient = rcpt("accept")
    await rest(system, {"envelope": "info@example.com", "recipient": recipient, "from": "info@example.com",
                        "to": recipient, "html": "This is example content.", "trackbounces": False})
    assert (await delivered(internet, recipient)).mail_from == "info@example.com"


# --- Feedback loops and logs (smtpeter-feedback-loops.txt) ---------------------------------------

async def test_unrecognised_bounces_go_to_the_bounce_log_and_bounce_loop_only(system, internet):
    recipient = rcpt("nonstandard")
    message_id = await rest(system, seed_body(recipient, envelope="bounce@yourdomain.com"))
    rows = await system.wait_rows("/api/bounces", lambda r: r["message_id"] == message_id)
    assert rows[0]["category"] == "nonstandard-bounce"
    calls = await internet.hooks.wait_for(1, path="/bounces")
    assert any(message_id in c.body.decode() for c in calls)
    # Unrecognised: not a failure, so neither in the failure log nor the failure loop.
    assert not (await asyncio.to_thread(system.read_api, "/api/failures", message_id=message_id)).json()["items"]
    assert not [c for c in internet.hooks.calls if c.path == "/failures" and message_id in c.body.decode()]
    # ...but forwarded to the envelope whatever NOTIFY says.
    await forwarded(internet, "bounce@yourdomain.com")

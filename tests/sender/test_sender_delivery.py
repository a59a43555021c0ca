"""The sender on real Kafka against MX simulators: one result per attempt, the envelope rules."""

from __future__ import annotations

import base64

from bounceflow.models import DsnRequest
from bounceflow.verp import VerpCodec
from bounceflow_devkit import replies
from sender.sender_harness import BOUNCE_DOMAIN, SECRETS, mime, outgoing


async def test_accepted_mail_is_delivered_with_verp_and_without_return_path(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    data = mime(extra_headers=b"Return-Path: <customer-bounces@example.org>\r\n")
    message = await publisher.send(outgoing("accept+1@example.com", data=data))

    result = await results.final(message.message_id)
    assert (result.status, result.attempt, result.smtp_code, result.reason) == ("delivered", 1, 250, "delivered")
    assert result.event_id == f"{message.message_id}:1" and result.remote_ip == "127.0.0.1"
    assert result.mail_from == VerpCodec(SECRETS).address(message.message_id, BOUNCE_DOMAIN)
    [mail] = mx.received
    assert mail.mail_from == result.mail_from and mail.rcpt_tos == ["accept+1@example.com"]
    head = mail.data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"return-path" not in head
    assert f"x-bounceflow-id: {message.message_id}".encode() in head
    assert mail.data.endswith(b"Hello there.\r\n")


async def test_dsn_parameters_reach_a_next_hop_that_offers_dsn(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    dsn = DsnRequest(notify=["SUCCESS"], ret="HDRS", envid="customer-env", orcpt="rfc822;orig@example.com")
    message = await publisher.send(outgoing("accept+2@example.com", dsn=dsn))

    assert (await results.final(message.message_id)).status == "delivered"
    [mail] = mx.received
    assert mail.mail_params["RET"] == "HDRS" and mail.mail_params["ENVID"] == message.message_id
    params = mail.rcpt_params("accept+2@example.com")
    assert params["NOTIFY"] == "SUCCESS,FAILURE,DELAY" and params["ORCPT"] == "rfc822;orig@example.com"


async def test_next_hop_without_dsn_gets_no_dsn_parameters(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx(dsn=False)
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("accept+3@example.com", dsn=DsnRequest(notify=["FAILURE"], ret="FULL")))

    assert (await results.final(message.message_id)).status == "delivered"
    [mail] = mx.received
    assert not {"RET", "ENVID"} & set(mail.mail_params)
    assert mail.rcpt_options == [[]]
    assert mail.tls is False  # no STARTTLS offered: plain text


async def test_refused_at_rcpt_fails(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("refuse-rcpt+4@example.com"))

    result = await results.final(message.message_id)
    assert (result.status, result.final, result.smtp_code, result.enhanced_status, result.reason) == \
        ("failed", True, 550, "5.1.1", "userunknown")
    assert result.reply_text == replies.USER_UNKNOWN[4:]
    assert mx.received == []


async def test_refused_at_data_fails(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("refuse-data+5@example.com"))

    result = await results.final(message.message_id)
    assert (result.status, result.smtp_code, result.enhanced_status, result.reason) == ("failed", 554, "5.7.1", "rejected")
    assert len(results.of(message.message_id)) == 1


async def test_deferred_then_accepted_on_the_retry(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx(defer_times=1)
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("defer+6@example.com"))

    final = await results.final(message.message_id)
    first, second = results.of(message.message_id)
    assert (first.status, first.final, first.attempt, first.smtp_code) == ("deferred", False, 1, 451)
    assert first.enhanced_status == "4.7.1"
    assert (second.status, second.final, second.attempt, second.event_id) == \
        ("delivered", True, 2, f"{message.message_id}:2")
    assert final == second and len(mx.received) == 1
    assert second.mail_from == first.mail_from


async def test_dropped_connection_is_deferred_and_retried(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port, sender_retry_schedule=[0.2], sender_max_age=1.0))
    message = await publisher.send(outgoing("drop+7@example.com"))

    final = await results.final(message.message_id)
    attempts = results.of(message.message_id)
    assert all(r.status == "deferred" and r.reason == "networkerror" for r in attempts[:-1])
    assert len(attempts) >= 2
    assert (final.status, final.reason, final.final) == ("failed", "expired", True)
    assert "gave up after" in final.reply_text


async def test_untracked_uses_the_return_path_header(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    data = mime(extra_headers=b"Return-Path: <bounces@customer.example>\r\n")
    message = await publisher.send(outgoing("accept+8@example.com", track=False, data=data))

    result = await results.final(message.message_id)
    assert result.mail_from == "bounces@customer.example" and result.envelope_from == "shop@example.org"
    assert mx.received[0].mail_from == "bounces@customer.example"


async def test_untracked_null_envelope_stays_null(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    plain = await publisher.send(outgoing("accept+9@example.com", track=False))
    null = await publisher.send(outgoing("accept+10@example.com", track=False, envelope_from=""))

    assert (await results.final(plain.message_id)).mail_from == "shop@example.org"
    assert (await results.final(null.message_id)).mail_from == ""
    by_rcpt = {m.rcpt_tos[0]: m.mail_from for m in mx.received}
    assert by_rcpt == {"accept+9@example.com": "shop@example.org", "accept+10@example.com": "<>"}


async def test_tracked_null_envelope_still_gets_verp(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("accept+11@example.com", envelope_from=""))

    result = await results.final(message.message_id)
    assert result.envelope_from == "" and result.mail_from.startswith(f"b.{message.message_id}.")
    assert mx.received[0].mail_from == result.mail_from


async def test_unknown_account_uses_the_default_bounce_domain(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("accept+12@example.com", account="nobody"))

    result = await results.final(message.message_id)
    assert result.mail_from.endswith("@bounces.default.test")


async def test_starttls_when_offered_and_verified_with_the_test_ca(start_mx, kafka, sender_settings, start_sender,
                                                                   mx_tls, test_ca, tmp_path):
    publisher, results = kafka
    ca_file = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca_file))
    mx = await start_mx(starttls_context=mx_tls)
    await start_sender(sender_settings(mx.port, sender_tls_verify=True, sender_tls_ca_file=str(ca_file)))
    message = await publisher.send(outgoing("accept+13@example.com"))

    assert (await results.final(message.message_id)).status == "delivered"
    assert mx.received[0].tls is True


async def test_unverifiable_certificate_defers_when_verification_is_on(start_mx, kafka, sender_settings,
                                                                       start_sender, mx_tls):
    publisher, results = kafka
    mx = await start_mx(starttls_context=mx_tls)
    await start_sender(sender_settings(mx.port, sender_tls_verify=True, sender_max_age=0.1))
    message = await publisher.send(outgoing("accept+14@example.com"))

    result = await results.final(message.message_id)
    assert (result.status, result.reason) == ("failed", "expired")
    assert "TLS handshake failed" in result.reply_text and mx.received == []


async def test_opportunistic_tls_without_verification_encrypts(start_mx, kafka, sender_settings, start_sender, mx_tls):
    publisher, results = kafka
    mx = await start_mx(starttls_context=mx_tls)
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("accept+15@example.com"))

    assert (await results.final(message.message_id)).status == "delivered"
    assert mx.received[0].tls is True


async def test_smarthost_without_starttls_is_refused_credentials(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(sender_smarthost=f"smtp://user:pw-secret@127.0.0.1:{mx.port}",
                                       sender_max_age=0.1))
    message = await publisher.send(outgoing("accept+16@example.com"))

    result = await results.final(message.message_id)
    assert result.reason == "expired" and "did not offer STARTTLS" in result.reply_text
    assert "pw-secret" not in result.reply_text and mx.received == []


async def test_smarthost_with_starttls_delivers(start_mx, kafka, sender_settings, start_sender, mx_tls, test_ca, tmp_path):
    publisher, results = kafka
    ca_file = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(ca_file))
    mx = await start_mx(starttls_context=mx_tls)
    await start_sender(sender_settings(sender_smarthost=f"smtp://127.0.0.1:{mx.port}",
                                       sender_tls_ca_file=str(ca_file)))
    message = await publisher.send(outgoing("accept+17@other-domain.example"))

    result = await results.final(message.message_id)
    assert result.status == "delivered" and mx.received[0].tls is True


async def test_eight_bit_body_is_declared(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    body = "Grüße aus Köln\r\n".encode()
    message = await publisher.send(outgoing("accept+18@example.com", data=mime(body=body)))

    assert (await results.final(message.message_id)).status == "delivered"
    assert "BODY=8BITMIME" in mx.received[0].mail_options and mx.received[0].data.endswith(body)


async def test_dot_lines_survive(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    body = b".\r\n..two\r\n.three\r\nend\r\n"
    message = await publisher.send(outgoing("accept+19@example.com", data=mime(body=body)))

    assert (await results.final(message.message_id)).status == "delivered"
    assert mx.received[0].data.endswith(body)


async def test_health_and_metrics(start_mx, kafka, sender_settings, start_sender):
    import httpx

    publisher, results = kafka
    mx = await start_mx()
    settings = sender_settings(mx.port)
    await start_sender(settings)
    message = await publisher.send(outgoing("accept+20@example.com"))
    await results.final(message.message_id)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.sender_http_port}") as client:
        health = await client.get("/health")
        metrics = (await client.get("/metrics")).text
    assert health.status_code == 200
    assert health.json()["checks"] == {"consumer-outgoing": True, "consumer-outgoing-retry": True}
    assert 'bounceflow_sender_attempts_total{final="true",status="delivered"}' in metrics
    assert "bounceflow_sender_delivery_seconds_bucket" in metrics and "bounceflow_sender_in_flight" in metrics


async def test_a_record_larger_than_the_fetch_size_is_delivered(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    body = b"x" * 76 + b"\r\n"
    data = mime(body=body * 30_000)  # ~2.3 MB of MIME, ~3 MB on the wire: above the 1 MB fetch size
    message = await publisher.send(outgoing("accept+21@example.com", data=data))

    assert (await results.final(message.message_id)).status == "delivered"
    assert mx.received[0].data.endswith(body * 30_000)

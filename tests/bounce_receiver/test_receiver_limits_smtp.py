"""Per-IP limits, STARTTLS, health and metrics of the running MX."""

from __future__ import annotations

import ssl

import aiosmtplib
import httpx
import trustme
from prometheus_client import REGISTRY

from bounceflow.verp import new_message_id
from bounce_receiver.receiver_harness import SmtpWire, bounce_mime, free_port, send_bounce


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counter(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_connection_limit_per_ip(start_receiver):
    receiver = await start_receiver(receiver_max_connections_per_ip=2)
    first, second = await SmtpWire.connect(receiver.port), await SmtpWire.connect(receiver.port)
    assert first.greeting.code == second.greeting.code == 220
    third = await SmtpWire.connect(receiver.port)
    assert third.greeting.code == 421 and third.greeting.text.startswith("4.7.0"), third.greeting
    await third.close()
    await first.quit()
    # The slot comes back once the server has seen the QUIT; poll boundedly for it.
    for _ in range(100):
        fourth = await SmtpWire.connect(receiver.port)
        if fourth.greeting.code == 220:
            break
        await fourth.close()
    assert fourth.greeting.code == 220
    assert (await fourth.send("", [receiver.verp()], bounce_mime())).code == 250
    await fourth.quit()
    await second.quit()


async def test_rate_limit_per_ip_at_mail_from(start_receiver):
    clock = FakeClock()
    receiver = await start_receiver(clock=clock, receiver_rate_per_minute=6, receiver_rate_burst=2)
    for _ in range(2):
        assert (await send_bounce(receiver.port, "", [receiver.verp()], bounce_mime())).code == 250
    before = counter("bounceflow_receiver_rejected_total", reason="rate_limited")
    wire = await SmtpWire.connect(receiver.port)
    await wire.cmd("EHLO mx.remote.test")
    reply = await wire.cmd("MAIL FROM:<>")
    assert reply.code == 450 and reply.text.startswith("4.7.1"), reply
    assert counter("bounceflow_receiver_rejected_total", reason="rate_limited") == before + 1
    clock.now += 10  # 6/min: one token back after ten seconds
    assert (await wire.cmd("MAIL FROM:<>")).code == 250
    await wire.quit()
    assert len(await receiver.records()) == 2


async def test_starttls_is_offered_and_works_with_a_real_certificate(start_receiver, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("mx.bounces.test", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(tmp_path / "chain.pem")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    receiver = await start_receiver(receiver_tls_cert=str(tmp_path / "chain.pem"), receiver_tls_key=str(tmp_path / "key.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    message_id = new_message_id()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, tls_context=client_context,
                               start_tls=False) as smtp:
        await smtp.ehlo()
        assert smtp.supports_extension("starttls") and not smtp.supports_extension("auth")
        await smtp.starttls()
        await smtp.ehlo()
        assert not smtp.supports_extension("auth")  # an MX offers no AUTH, not even over TLS
        errors, reply = await smtp.sendmail("", [receiver.verp(message_id)], bounce_mime(message_id))
        assert not errors and reply.startswith("2.0.0"), reply
    [(_, record)] = await receiver.records()
    assert record.message_id == message_id and record.meta["tls"] == "yes"


async def test_health_and_metrics_endpoints(start_receiver):
    receiver = await start_receiver()
    accepted = counter("bounceflow_receiver_accepted_total", kind="verp")
    refused = counter("bounceflow_receiver_rejected_total", reason="bad_signature")
    size = counter("bounceflow_receiver_bytes_total")
    body = bounce_mime()
    assert (await send_bounce(receiver.port, "", [receiver.verp()], body)).code == 250
    wire = await SmtpWire.connect(receiver.port)
    await wire.cmd("EHLO x")
    await wire.cmd("MAIL FROM:<>")
    assert (await wire.cmd(f"RCPT TO:<{receiver.verp(secret='guess')}>")).code == 550
    await wire.quit()
    async with httpx.AsyncClient(base_url=receiver.http) as http:
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["checks"] == {"kafka": True, "smtp": True}
        metrics = (await http.get("/metrics")).text
    assert "bounceflow_receiver_accepted_total" in metrics and "bounceflow_receiver_rejected_total" in metrics
    assert counter("bounceflow_receiver_accepted_total", kind="verp") == accepted + 1
    assert counter("bounceflow_receiver_rejected_total", reason="bad_signature") == refused + 1
    assert counter("bounceflow_receiver_bytes_total") == size + len(body)


async def test_health_fails_while_kafka_is_unreachable(start_receiver):
    receiver = await start_receiver(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_ack_timeout=1.0, create_topic=False)
    async with httpx.AsyncClient(base_url=receiver.http) as http:
        health = await http.get("/health")
    assert health.status_code == 503 and health.json()["checks"]["kafka"] is False

"""Kafka unavailable: SMTP 451 4.3.0, REST 503, and nothing accepted."""

from __future__ import annotations

import asyncio

import httpx

from bounceflow_ingress import smtp_handler
from kafka_broker import KafkaBroker, free_ports, install_jars


async def test_no_broker_at_all(start_ingress, logins):
    """Bootstrap where nothing listens: the ingress starts, says so on /health, refuses to accept."""
    [dead_port] = free_ports(1)
    ingress = await start_ingress(kafka_bootstrap=f"127.0.0.1:{dead_port}", kafka_ack_timeout=2.0, create_topic=False)
    client = await ingress.smtp(logins["acme"])
    assert (await client.cmd("MAIL FROM:<info@example.com>"))[0] == 250
    assert (await client.cmd("RCPT TO:<r@example.net>"))[0] == 250
    assert await client.data(b"From: info@example.com\r\n\r\nx\r\n") == (451, smtp_handler.KAFKA_UNAVAILABLE[4:])
    await client.close()
    async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as http:
        response = await http.post(
            "/v1/send", json={"recipient": "r@example.net", "from": "info@example.com", "text": "x"},
            headers={"Authorization": f"Bearer {logins['acme'].api_key}"},
        )
        health = await http.get("/health")
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert health.status_code == 503 and health.json()["checks"]["kafka"] is False


async def test_broker_stops_and_comes_back(start_ingress, logins, tmp_path):
    """A broker of our own: accepted before, 451/503 while down (nothing committed), accepted again after."""
    install_jars()
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    try:
        ingress = await start_ingress(kafka_bootstrap=broker.bootstrap, kafka_ack_timeout=3.0)

        async def send(recipients: list[str]) -> tuple[int, str]:
            client = await ingress.smtp(logins["acme"])
            await client.cmd("MAIL FROM:<info@example.com>")
            for rcpt in recipients:
                assert (await client.cmd(f"RCPT TO:<{rcpt}>"))[0] == 250
            reply = await client.data(b"From: info@example.com\r\n\r\nx\r\n")
            await client.close()
            return reply

        assert (await send(["before@example.net"]))[0] == 250
        broker.stop()
        assert (await send(["down1@example.net", "down2@example.net"]))[0] == 451
        async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as http:
            response = await http.post(
                "/v1/send", json={"recipients": ["down3@example.net"], "from": "info@example.com", "text": "x"},
                headers={"Authorization": f"Bearer {logins['acme'].api_key}"},
            )
        assert response.status_code == 503
        broker.start()
        for _ in range(40):  # bounded: the producers reconnect after the broker is back
            code, _ = await send(["after@example.net"])
            if code == 250:
                break
            assert code == 451
        assert code == 250
        # The commit is durable when the ingress answers 250, but the transaction
        # markers reach the partitions a moment later: until then a read_committed
        # reader does not see the record yet. Wait for it, within a bound.
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            recipients = sorted(r.recipient for r in await ingress.records())
            if "after@example.net" in recipients or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert recipients == ["after@example.net", "before@example.net"], "nothing refused was committed"
    finally:
        broker.stop()

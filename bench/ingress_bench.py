"""Accepted messages per second through the ingress, against a do-nothing baseline.

Cases: SMTP over 1 connection, SMTP over 20 connections in parallel, REST
(20 concurrent requests). Each runs `--seconds` against the real ingress
(Kafka transaction per message, broker on this machine) and against a bare
aiosmtpd sink / bare FastAPI endpoint with the same client; the ratio
ingress/baseline says what the Kafka path costs.

    python bench/ingress_bench.py [--bootstrap HOST:PORT] [--seconds 10] [--json PATH]

Without --bootstrap a broker is started with tests/kafka_broker.KafkaBroker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
import httpx
from aiosmtpd.smtp import SMTP
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bounceflow.accounts import Account, AccountsFile, hash_api_key, hash_password, write_accounts  # noqa: E402
from bounceflow.kafka import ensure_topics  # noqa: E402
from bounceflow.observability import HttpServer  # noqa: E402
from bounceflow_ingress.service import IngressService, _free_port  # noqa: E402
from bounceflow_ingress.settings import IngressSettings  # noqa: E402

MESSAGE = b"From: bench@example.com\r\nTo: r@example.net\r\nSubject: bench\r\n\r\n" + b"Hello bench.\r\n" * 40
REST_BODY = {"envelope": "bench@example.com", "recipient": "r@example.net", "from": "bench@example.com",
             "subject": "bench", "text": "Hello bench.\n" * 40}


class SinkHandler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


async def smtp_worker(port: int, stop_at: float, login: tuple[str, str] | None) -> int:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    if login:
        await client.login(*login)
    sent = 0
    while time.monotonic() < stop_at:
        await client.sendmail("bench@example.com", ["r@example.net"], MESSAGE)
        sent += 1
    await client.quit()
    return sent


async def rest_worker(url: str, stop_at: float, api_key: str | None) -> int:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    sent = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() < stop_at:
            response = await client.post("/v1/send", json=REST_BODY, headers=headers)
            response.raise_for_status()
            sent += 1
    return sent


async def measure(worker, n: int, seconds: float, *args) -> float:
    stop_at = time.monotonic() + seconds
    started = time.monotonic()
    counts = await asyncio.gather(*(worker(*args[:1], stop_at, *args[1:]) for _ in range(n)))
    return sum(counts) / (time.monotonic() - started)


async def run(bootstrap: str, seconds: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="ingress-bench-"))
    password, api_key = secrets.token_urlsafe(12), "bf_" + secrets.token_urlsafe(18)
    write_accounts(tmp / "accounts.json", AccountsFile(accounts=[Account(
        name="bench", smtp_username="bench", smtp_password_hash=hash_password(password),
        api_key_hashes=[hash_api_key(api_key)])]))
    settings = IngressSettings(
        kafka_bootstrap=bootstrap, topic_prefix=f"bench{secrets.token_hex(3)}-", accounts_file=str(tmp / "accounts.json"),
        ingress_smtp_port=0, ingress_http_port=0, ingress_hostname="bench.test", ingress_auth_plaintext_loopback=True,
    )
    await ensure_topics(settings, ["outgoing"])
    service = IngressService(settings)
    await service.start()

    loop = asyncio.get_running_loop()
    sink = await loop.create_server(lambda: SMTP(SinkHandler(), hostname="sink.test", loop=loop), "127.0.0.1", 0)
    sink_port = sink.sockets[0].getsockname()[1]
    bare = FastAPI()

    @bare.post("/v1/send")
    async def _send(body: dict):
        return {"messages": []}

    bare_port = _free_port("127.0.0.1")
    bare_http = HttpServer(bare, "127.0.0.1", bare_port)
    await bare_http.start()

    results = {}
    try:
        cases = [
            ("smtp_1_connection", smtp_worker, 1, (service.smtp_port, ("bench", password)), (sink_port, None)),
            ("smtp_20_connections", smtp_worker, 20, (service.smtp_port, ("bench", password)), (sink_port, None)),
            ("rest_20_concurrent", rest_worker, 20, (f"http://127.0.0.1:{service.http_port}", api_key),
             (f"http://127.0.0.1:{bare_port}", None)),
        ]
        for name, worker, n, ingress_args, baseline_args in cases:
            baseline = await measure(worker, n, seconds, *baseline_args)
            ingress = await measure(worker, n, seconds, *ingress_args)
            results[name] = {"ingress_per_s": round(ingress, 1), "baseline_per_s": round(baseline, 1),
                             "ratio": round(ingress / baseline, 3)}
            print(f"{name}: ingress {ingress:.1f}/s, baseline {baseline:.1f}/s, ratio {ingress / baseline:.3f}",
                  file=sys.stderr)
    finally:
        await service.stop()
        sink.close()
        await bare_http.stop()
    return {"bench": "ingress", "seconds_per_case": seconds, "bootstrap": bootstrap,
            "message_bytes": len(MESSAGE), "kafka_producers": settings.ingress_kafka_producers, "cases": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="Kafka to use (default: start one with KafkaBroker)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measurement")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    broker = None
    if args.bootstrap is None:
        from kafka_broker import KafkaBroker, install_jars

        install_jars()
        broker = KafkaBroker(tempfile.mkdtemp(prefix="ingress-bench-kafka-"))
        broker.start()
    try:
        result = asyncio.run(run(args.bootstrap or broker.bootstrap, args.seconds))
    finally:
        if broker is not None:
            broker.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accepted messages per second through the ingress, against a do-nothing baseline.

Cases: SMTP over 1 connection, SMTP over 20 connections in parallel, REST
(20 concurrent requests). Each runs `--seconds` against the real ingress
(Kafka transaction per message, broker on this machine) and against a bare
aiosmtpd sink / bare FastAPI endpoint with the same client; the ratio
ingress/baseline says what the Kafka path costs.

    python bench/ingress_bench.py [--bootstrap HOST:PORT] [--seconds 10] [--json PATH]

With --cpu it measures instead what the system bench is bound by: CPU
seconds of the ingress per accepted SMTP message. The ingress runs as its own
process (`python -m bounceflow_ingress`, log level WARNING as in the system
bench); `--connections` sessions log in first (scrypt is not counted), then
send `--messages` mails of 1 KB as the system bench does (`MAIL FROM:<>`, one
recipient `accept+<i>@example.com`). The figure is the ingress's utime+stime
from /proc/<pid>/stat over the sending, less its idle rate, per message.

    python bench/ingress_bench.py --cpu [--messages 5000] [--connections 20] [--producers N] [--profile PATH]

Without --bootstrap a broker is started with tests/kafka_broker.KafkaBroker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
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
from bounceflow_devkit.loadgen import simple_mail  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

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


async def _logged_in_sessions(port: int, n: int, password: str) -> list[aiosmtplib.SMTP]:
    async def one() -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
        await client.connect()
        await client.login("bench", password)
        return client
    return list(await asyncio.gather(*(one() for _ in range(n))))


async def _send_all(clients: list[aiosmtplib.SMTP], mails: list[tuple[str, bytes]]) -> int:
    queue: asyncio.Queue = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)
    sent = 0

    async def worker(client: aiosmtplib.SMTP) -> None:
        nonlocal sent
        while not queue.empty():
            recipient, data = queue.get_nowait()
            await client.sendmail("", [recipient], data)
            sent += 1

    await asyncio.gather(*(worker(c) for c in clients))
    return sent


def _mails(n: int, tag: str) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        recipient = f"accept+{tag}{i}@example.com"
        out.append((recipient, simple_mail("info@example.com", recipient, "bench", 1024)))
    return out


def _wait_listening(port: int, proc: subprocess.Popen, deadline: float) -> None:
    import socket
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("ingress exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("ingress not listening")


def run_cpu(bootstrap: str, messages: int, connections: int, producers: int | None,
            profile: Path | None) -> dict:
    """CPU seconds of the ingress process per accepted SMTP message (see the module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="ingress-cpu-bench-"))
    password = secrets.token_urlsafe(12)
    write_accounts(tmp / "accounts.json", AccountsFile(accounts=[Account(
        name="bench", smtp_username="bench", smtp_password_hash=hash_password(password))]))
    smtp_port, http_port = _free_port("127.0.0.1"), _free_port("127.0.0.1")
    env = {**os.environ, "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap,
           "BOUNCEFLOW_TOPIC_PREFIX": f"bench{secrets.token_hex(3)}-",
           "BOUNCEFLOW_ACCOUNTS_FILE": str(tmp / "accounts.json"), "BOUNCEFLOW_LOG_LEVEL": "WARNING",
           "BOUNCEFLOW_INGRESS_AUTH_PLAINTEXT_LOOPBACK": "true", "BOUNCEFLOW_INGRESS_HOSTNAME": "bench.test",
           "BOUNCEFLOW_INGRESS_SMTP_PORT": str(smtp_port), "BOUNCEFLOW_INGRESS_HTTP_PORT": str(http_port)}
    if producers is not None:
        env["BOUNCEFLOW_INGRESS_KAFKA_PRODUCERS"] = str(producers)
    with open(tmp / "ingress.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bounceflow_ingress"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    result: dict = {"bench": "ingress_cpu", "messages": messages, "connections": connections,
                    "kafka_producers": producers, "message_bytes": len(_mails(1, "x")[0][1]),
                    "ingress_log": str(tmp / "ingress.log")}
    spy = None
    try:
        _wait_listening(smtp_port, proc, time.monotonic() + 60)

        async def phases() -> None:
            nonlocal spy
            clients = await _logged_in_sessions(smtp_port, connections, password)
            await _send_all(clients, _mails(min(1000, messages), "warm"))  # imports, caches, producers warm
            c0, t0 = cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(2.0)
            idle = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
            mails = _mails(messages, "m")
            if profile:  # py-spy's own CPU is not the ingress's
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(proc.pid),
                                        "-r", "200", "-f", "raw", "-o", str(profile)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(1.0)
            c0, t0 = cpu_seconds(proc.pid), time.monotonic()
            sent = await _send_all(clients, mails)
            cpu, span = cpu_seconds(proc.pid) - c0, time.monotonic() - t0
            for client in clients:
                await client.quit()
            result.update({"sent": sent, "cpu_seconds": round(cpu, 3), "wall_seconds": round(span, 2),
                           "idle_cpu_per_s": round(idle, 4), "msg_per_s": round(sent / span, 1),
                           "cpu_ms_per_message": round(1000 * (cpu - idle * span) / sent, 4)})

        asyncio.run(phases())
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"ingress CPU {result['cpu_ms_per_message']} ms per message ({result['sent']} messages, "
          f"{result['msg_per_s']}/s)", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="Kafka to use (default: start one with KafkaBroker)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measurement")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--cpu", action="store_true", help="measure the ingress's CPU per SMTP message instead")
    parser.add_argument("--messages", type=int, default=5000, help="with --cpu: messages measured")
    parser.add_argument("--connections", type=int, default=20, help="with --cpu: SMTP sessions")
    parser.add_argument("--producers", type=int, help="with --cpu: BOUNCEFLOW_INGRESS_KAFKA_PRODUCERS")
    parser.add_argument("--profile", type=Path, help="with --cpu: py-spy raw profile of the ingress to PATH")
    args = parser.parse_args(argv)
    broker = None
    if args.bootstrap is None:
        from kafka_broker import KafkaBroker, install_jars

        install_jars()
        broker = KafkaBroker(tempfile.mkdtemp(prefix="ingress-bench-kafka-"))
        broker.start()
    try:
        bootstrap = args.bootstrap or broker.bootstrap
        if args.cpu:
            result = run_cpu(bootstrap, args.messages, args.connections, args.producers, args.profile)
        else:
            result = asyncio.run(run(bootstrap, args.seconds))
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

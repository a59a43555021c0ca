"""Bounce-receiver throughput: bounces accepted per second with N parallel SMTP senders.

Starts the receiver as its own process (`python -m bounceflow_bounce_receiver`)
against a running Kafka, then lets `--senders` concurrent SMTP clients (one
connection each, many mails per connection, like a remote MTA's queue runner)
send single-RCPT DSNs to signed VERP addresses for `--duration` seconds. A
mail counts as accepted when the receiver answered 250, i.e. after Kafka
committed its record; the count is then checked against the records actually
committed on the raw-bounce topic.

Usage: python bench/receiver_bench.py [--bootstrap HOST:PORT] [--senders 20]
                                      [--duration 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "common", ROOT / "services" / "bounce-receiver", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from bounceflow.verp import VerpCodec, new_message_id  # noqa: E402
from bounce_receiver.receiver_harness import SmtpWire, bounce_mime  # noqa: E402
from bounceflow_devkit.loadgen import LoadSmtpClient, Mail, SmtpLoadError  # noqa: E402
from bounceflow_devkit.stack import free_port  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

DOMAIN = "bounces.bench.test"
PARTITIONS = 4


def start_receiver(bootstrap: str, prefix: str, secret: str, smtp_port: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        BOUNCEFLOW_KAFKA_BOOTSTRAP=bootstrap,
        BOUNCEFLOW_TOPIC_PREFIX=prefix,
        BOUNCEFLOW_TOPIC_PARTITIONS=str(PARTITIONS),
        BOUNCEFLOW_VERP_SECRETS=secret,
        BOUNCEFLOW_BOUNCE_DOMAINS=DOMAIN,
        BOUNCEFLOW_RECEIVER_SMTP_PORT=str(smtp_port),
        BOUNCEFLOW_RECEIVER_HTTP_PORT=str(free_port()),
        BOUNCEFLOW_RECEIVER_MAX_CONNECTIONS_PER_IP="1000",
        BOUNCEFLOW_RECEIVER_RATE_PER_MINUTE="100000000",
        BOUNCEFLOW_RECEIVER_RATE_BURST="100000000",
        BOUNCEFLOW_LOG_LEVEL="WARNING",
    )
    profile = ["-m", "cProfile", "-o", os.environ["RECEIVER_BENCH_PROFILE"]] if os.environ.get("RECEIVER_BENCH_PROFILE") else []
    return subprocess.Popen([sys.executable, *profile, "-m", "bounceflow_bounce_receiver"], env=env)


async def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        try:
            wire = await SmtpWire.connect(port)
            await wire.quit()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"receiver not listening on {port} after {timeout}s")


async def sender(port: int, codec: VerpCodec, stop_at: float, latencies: list[float], failures: list[str]) -> None:
    """One remote MTA: a connection, mails back to back until the deadline (pipelined, as Postfix does)."""
    client = await LoadSmtpClient.connect("127.0.0.1", port, helo="sender.bench.test")
    try:
        while time.monotonic() < stop_at:
            message_id = new_message_id()
            started = time.perf_counter()
            try:
                await client.send(Mail("", [codec.address(message_id, DOMAIN)], bounce_mime(message_id)))
                latencies.append(time.perf_counter() - started)
            except SmtpLoadError as exc:
                failures.append(str(exc))
    finally:
        await client.quit()


async def committed_count(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        count, deadline = 0, time.monotonic() + 120
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]] and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            count += sum(len(b) for b in batches.values())
        return count
    finally:
        await consumer.stop()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def run(args) -> dict:
    prefix, secret, port = f"bench{secrets.token_hex(3)}-", secrets.token_hex(16), free_port()
    topic = f"{prefix}raw-bounce"
    proc = start_receiver(args.bootstrap, prefix, secret, port)
    try:
        await wait_listening(port, proc)
        codec = VerpCodec([secret])
        latencies: list[float] = []
        failures: list[str] = []
        started, cpu_before = time.monotonic(), cpu_seconds(proc.pid)
        await asyncio.gather(*(sender(port, codec, started + args.duration, latencies, failures) for _ in range(args.senders)))
        elapsed, cpu = time.monotonic() - started, cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(30)
    on_topic = await committed_count(args.bootstrap, topic)
    if not args.keep_topic:
        await delete_topic(args.bootstrap, topic)
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2) if latencies else 0.0

    return {
        "bench": "bounce-receiver",
        "metric": "bounces accepted per second (250 after Kafka commit)",
        "senders": args.senders,
        "duration_s": round(elapsed, 2),
        "accepted": len(latencies),
        "accepted_per_s": round(len(latencies) / elapsed, 1),
        "receiver_cpu_ms_per_bounce": round(1000 * cpu / max(1, len(latencies)), 3),
        "temporary_failures": len(failures),
        "committed_on_topic": on_topic,
        "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
                       "mean": round(1000 * statistics.fmean(latencies), 2) if latencies else 0.0},
        "body_bytes": len(bounce_mime(new_message_id())),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("BOUNCEFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON to PATH")
    parser.add_argument("--keep-topic", action="store_true", help="do not delete the bench topic afterwards")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    ok = result["accepted"] > 0 and result["committed_on_topic"] == result["accepted"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

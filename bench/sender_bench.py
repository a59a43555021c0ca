"""Sender throughput: `outgoing` -> remote MX -> `delivery-result`, and the sender's memory.

For each message size (1 KB and 100 KB by default) the bench
  1. starts an accepting MX simulator as its own process (logging off), with
     PIPELINING (its default) and/or without (`--mx plain|pipelining|both`),
  2. writes N `outgoing` records to fresh topics (not timed),
  3. starts the sender as a subprocess (`python -m bounceflow_sender`) and
     reads `delivery-result` until N results arrived or the time bound passed,
  4. reports delivered msg/s over the span between the first and the last
     result (the sender's own timestamps) and over the wall clock from the
     sender's start, plus the sender's peak RSS (VmHWM from /proc).

    python bench/sender_bench.py [--bootstrap HOST:PORT] [--small N] [--large N]
                                 [--max-seconds S] [--json PATH]

Kafka: --bootstrap, else $BOUNCEFLOW_TEST_KAFKA, else var/shared-broker, else 127.0.0.1:9092.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bounceflow.models import DeliveryResult, OutgoingMessage
from bounceflow.verp import new_message_id
from bounceflow_devkit.stack import free_port
from procstat import cpu_seconds, peak_rss_kb

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def default_bootstrap() -> str:
    if os.environ.get("BOUNCEFLOW_TEST_KAFKA"):
        return os.environ["BOUNCEFLOW_TEST_KAFKA"]
    shared = ROOT / "var" / "shared-broker"
    return shared.read_text().strip() if shared.exists() else "127.0.0.1:9092"


def message_bytes(size: int) -> bytes:
    head = b"From: Bench <bench@example.org>\r\nTo: accept@example.com\r\nSubject: bench\r\n\r\n"
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"  # 75 bytes
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


async def produce(bootstrap: str, topic: str, count: int, size: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_request_size=8 * 1024 * 1024, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        mime_b64 = base64.b64encode(message_bytes(size)).decode()
        now = datetime.now(timezone.utc)
        futures = []
        for i in range(count):
            message = OutgoingMessage(
                message_id=new_message_id(), account="bench", source="rest", submitted_at=now,
                envelope_from="bench@example.org", recipient=f"accept+{i}@example.com",
                track_bounces=True, mime_b64=mime_b64,
            )
            futures.append(await producer.send(topic, message.to_bytes(), key=message.message_id.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from kafka_broker import create_topics as create

    await create(bootstrap, names, partitions=partitions)


def cpu_or_none(pid: int) -> float | None:
    """CPU seconds of a process so far, None when it is gone."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


async def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def read_results(bootstrap: str, topic: str, count: int, deadline: float, sender: subprocess.Popen):
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    statuses: dict[str, int] = {}
    first = last = None
    peak = 0
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        while seen < count and time.monotonic() < deadline and sender.poll() is None:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    result = DeliveryResult.from_bytes(record.value)
                    statuses[result.status] = statuses.get(result.status, 0) + 1
                    seen += 1
                    first = min(first or result.finished_at, result.finished_at)
                    last = max(last or result.finished_at, result.finished_at)
            peak = max(peak, peak_rss_kb(sender.pid) or 0)
    finally:
        await consumer.stop()
    return statuses, first, last, peak


async def run_size(bootstrap: str, label: str, size: int, count: int, max_seconds: float, partitions: int,
                   extra_env: dict[str, str], pipelining: bool) -> dict:
    prefix = f"bench{secrets.token_hex(3)}-"
    await create_topics(bootstrap, [prefix + t for t in ("outgoing", "outgoing-retry", "delivery-result")], partitions)
    mx_port, http_port = free_port(), free_port()
    mx = subprocess.Popen([PYTHON, __file__, "--serve-mx", str(mx_port), *(["--pipelining"] * pipelining)],
                          cwd=ROOT)
    sender = None
    try:
        await wait_port(mx_port)
        started = time.monotonic()
        await produce(bootstrap, prefix + "outgoing", count, size)
        produce_seconds = time.monotonic() - started
        env = {**os.environ,
               "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap, "BOUNCEFLOW_TOPIC_PREFIX": prefix,
               "BOUNCEFLOW_VERP_SECRETS": "bench-secret", "BOUNCEFLOW_ACCOUNTS_FILE": str(ROOT / "var" / "bench-none.json"),
               "BOUNCEFLOW_SENDER_STATIC_ROUTES": json.dumps({"*": f"127.0.0.1:{mx_port}"}),
               "BOUNCEFLOW_SENDER_HTTP_PORT": str(http_port), "BOUNCEFLOW_LOG_LEVEL": "INFO",
               "BOUNCEFLOW_TOPIC_PARTITIONS": str(partitions), **extra_env}
        wall_start = time.monotonic()
        profile = ["-m", "cProfile", "-o", os.environ["SENDER_BENCH_PROFILE"]] \
            if os.environ.get("SENDER_BENCH_PROFILE") else []
        sender = subprocess.Popen([PYTHON, *profile, "-m", "bounceflow_sender"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        statuses, first, last, peak = await read_results(
            bootstrap, prefix + "delivery-result", count, wall_start + max_seconds, sender)
        wall = time.monotonic() - wall_start
        peak = max(peak, peak_rss_kb(sender.pid) or 0)
        cpu = {"sender": cpu_or_none(sender.pid), "mx_simulator": cpu_or_none(mx.pid)}
    finally:
        for proc in (sender, mx):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    delivered = statuses.get("delivered", 0)
    span = (last - first).total_seconds() if first and last and last > first else None
    return {
        "size": label, "mx_pipelining": pipelining, "message_bytes": len(message_bytes(size)), "records": count,
        "results": sum(statuses.values()), "statuses": statuses,
        "delivered_per_second_steady": round((delivered - 1) / span, 1) if span else None,
        "delivered_per_second_wall": round(delivered / wall, 1) if wall else None,
        "wall_seconds_from_sender_start": round(wall, 2), "first_to_last_result_seconds": round(span or 0, 2),
        "produce_seconds_untimed": round(produce_seconds, 2), "sender_peak_rss_mb": round(peak / 1024, 1),
        "cpu_seconds": cpu, "complete": sum(statuses.values()) == count,
    }


async def serve_mx(port: int, pipelining: bool) -> None:
    """Run an accepting MxSimulator (with or without PIPELINING) until SIGTERM."""
    import logging
    import signal

    from bounceflow_devkit.mx_simulator import MxSimulator

    logging.basicConfig(level=logging.WARNING)
    mx = MxSimulator(port=port, pipelining=pipelining)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await mx.start()
    await stop.wait()
    await mx.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=default_bootstrap())
    parser.add_argument("--small", type=int, default=20000, help="number of 1 KB messages")
    parser.add_argument("--large", type=int, default=3000, help="number of 100 KB messages")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound per size")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--mx", choices=("plain", "pipelining", "both"), default="both",
                        help="MX simulator without PIPELINING (--no-pipelining) and/or with it (its default)")
    parser.add_argument("--serve-mx", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pipelining", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra sender setting, e.g. BOUNCEFLOW_SENDER_DESTINATION_CONCURRENCY=64")
    args = parser.parse_args()
    if args.serve_mx:
        return await serve_mx(args.serve_mx, args.pipelining)
    extra_env = dict(item.split("=", 1) for item in args.env)
    runs = []
    modes = {"plain": [False], "pipelining": [True], "both": [False, True]}[args.mx]
    for label, size, count in (("1KB", 1024, args.small), ("100KB", 100 * 1024, args.large)):
        for pipelining in modes:
            if count:
                run = await run_size(args.bootstrap, label, size, count, args.max_seconds, args.partitions,
                                     extra_env, pipelining)
                print(json.dumps(run), flush=True)
                runs.append(run)
    report = {
        "bench": "sender", "sender": "subprocess: python -m bounceflow_sender",
        "mx": "subprocess: devkit MxSimulator (accept), without and/or with PIPELINING",
        "load_average_at_end": os.getloadavg(),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()},
        "kafka": args.bootstrap, "sender_env": extra_env, "runs": runs,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())

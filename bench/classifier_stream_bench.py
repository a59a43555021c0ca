"""Classifier stream throughput: `raw-bounce` -> Faust worker -> `classified-bounce`.

The bench
  1. writes N `outgoing` records and N `raw-bounce` records keyed to them to
     fresh topics (not timed); the bounce MIME cycles through the corpus
     mails in ../shared/corpus/eml,
  2. starts the classifier as a subprocess (`python -m bounceflow_classifier`),
  3. reads `classified-bounce` until N distinct bounces arrived or the time
     bound passed,
  4. reports classified bounces/s over the span between the first and the
     last `classified_at` (steady state) and over the wall clock from the
     worker's start (includes start-up, group join and table recovery), and
     how many were matched (all should be).

    python bench/classifier_stream_bench.py [--bootstrap HOST:PORT] [-n N]
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
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bounceflow.models import ClassifiedBounce, DsnRequest, OutgoingMessage, RawBounce

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "eml"
TOPICS = ("outgoing", "raw-bounce", "raw-bounce-retry", "classified-bounce")
PARTITIONS = 4


def default_bootstrap() -> str:
    if os.environ.get("BOUNCEFLOW_TEST_KAFKA"):
        return os.environ["BOUNCEFLOW_TEST_KAFKA"]
    shared = ROOT / "var" / "shared-broker"
    return shared.read_text().strip() if shared.exists() else "127.0.0.1:9092"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus_mails() -> list[bytes]:
    mails = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    if not mails:
        raise SystemExit(f"no corpus mails in {CORPUS}")
    return mails


def records(n: int) -> list[tuple[str, OutgoingMessage, RawBounce]]:
    mails = corpus_mails()
    now = datetime.now(timezone.utc)
    out = []
    for i in range(n):
        mid = uuid.uuid4().hex
        msg = OutgoingMessage(
            message_id=mid, account="bench", source="rest", submitted_at=now,
            envelope_from="bench@example.org", recipient=f"r{i}@example.com", track_bounces=True,
            dsn=DsnRequest(notify=["FAILURE"]), mime_b64=base64.b64encode(b"Subject: bench\r\n\r\nx").decode(),
        )
        bounce = RawBounce(
            event_id=uuid.uuid4().hex, message_id=mid, mail_from="", rcpt_to=f"b.{mid}.sig@bounces.localhost",
            received_at=now, mime_b64=base64.b64encode(mails[i % len(mails)]).decode(),
        )
        out.append((mid, msg, bounce))
    return out


async def prefill(bootstrap: str, prefix: str, n: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{prefix}{t}", PARTITIONS, 1) for t in TOPICS])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_request_size=40 * 1024 * 1024)
    await producer.start()
    try:
        pending = []
        for mid, msg, bounce in records(n):
            key = mid.encode()
            pending.append(await producer.send(f"{prefix}outgoing", msg.to_bytes(), key=key))
            pending.append(await producer.send(f"{prefix}raw-bounce", bounce.to_bytes(), key=key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def collect(bootstrap: str, prefix: str, n: int, deadline: float) -> dict[str, ClassifiedBounce]:
    topic = f"{prefix}classified-bounce"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=40 * 1024 * 1024)
    await consumer.start()
    seen: dict[str, ClassifiedBounce] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while len(seen) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                for rec in recs:
                    out = ClassifiedBounce.from_bytes(rec.value)
                    seen.setdefault(out.event_id, out)
    finally:
        await consumer.stop()
    return seen


def run(bootstrap: str, n: int, max_seconds: float) -> dict:
    prefix = f"bench{secrets.token_hex(3)}-"
    asyncio.run(prefill(bootstrap, prefix, n))
    data_dir = tempfile.mkdtemp(prefix="bounceflow-classifier-bench-")
    env = {**os.environ, "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap, "BOUNCEFLOW_TOPIC_PREFIX": prefix,
           "BOUNCEFLOW_CLASSIFIER_DATA_DIR": data_dir, "BOUNCEFLOW_CLASSIFIER_HTTP_PORT": str(free_port()),
           "BOUNCEFLOW_LOG_LEVEL": "WARNING"}
    log_path = Path(data_dir) / "worker.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bounceflow_classifier"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        seen = asyncio.run(collect(bootstrap, prefix, n, started + max_seconds))
        wall = time.monotonic() - started
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    stamps = sorted(o.classified_at for o in seen.values())
    span = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    return {
        "bench": "classifier_stream",
        "topic_prefix": prefix,
        "bounces": n,
        "classified": len(seen),
        "matched": sum(o.matched for o in seen.values()),
        "complete": len(seen) == n,
        "steady_bounces_per_s": round((len(seen) - 1) / span, 1) if span > 0 else None,
        "wall_bounces_per_s": round(len(seen) / wall, 1),
        "wall_seconds": round(wall, 2),
        "partitions": PARTITIONS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "worker_log": str(log_path),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=default_bootstrap())
    parser.add_argument("-n", type=int, default=5000, help="bounces (default 5000)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="bound on the timed part")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = run(args.bootstrap, args.n, args.max_seconds)
    print(f"classifier stream: {result['classified']}/{result['bounces']} classified "
          f"({result['matched']} matched); steady {result['steady_bounces_per_s']} bounces/s, "
          f"{result['wall_bounces_per_s']} bounces/s including worker start ({result['wall_seconds']} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())

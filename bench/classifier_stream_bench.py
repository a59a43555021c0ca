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

With --cpu the bench measures instead the worker's CPU per record, phase by
phase: the worker starts on empty topics; after it is healthy its idle CPU
rate is measured; then N `outgoing` records are written and the phase ends
when the table's changelog holds N records; then N `raw-bounce` records, until
N are on `classified-bounce`. CPU = utime + stime of the worker process from
/proc/<pid>/stat, less the idle rate over the phase (robust on a loaded
machine, unlike wall-clock rates). --rate and --transaction-size write the
records as the system does (paced, in small transactions), which is where
per-fetch and per-gap costs show.

    python bench/classifier_stream_bench.py [--bootstrap HOST:PORT] [-n N]
                                            [--max-seconds S] [--json PATH] [--cpu]
                                            [--outgoing-mime-bytes B] [--profile PATH]
                                            [--rate R] [--transaction-size T]

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
import signal
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
from bounceflow_devkit.stack import free_port
from procstat import STIME, cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "eml"
TOPICS = ("outgoing", "raw-bounce", "raw-bounce-retry", "classified-bounce")
PARTITIONS = 4


def default_bootstrap() -> str:
    if os.environ.get("BOUNCEFLOW_TEST_KAFKA"):
        return os.environ["BOUNCEFLOW_TEST_KAFKA"]
    shared = ROOT / "var" / "shared-broker"
    return shared.read_text().strip() if shared.exists() else "127.0.0.1:9092"


def corpus_mails() -> list[bytes]:
    mails = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    if not mails:
        raise SystemExit(f"no corpus mails in {CORPUS}")
    return mails


def records(n: int, outgoing_mime_bytes: int = 0) -> list[tuple[str, OutgoingMessage, RawBounce]]:
    mails = corpus_mails()
    now = datetime.now(timezone.utc)
    body = b"Subject: bench\r\n\r\n" + b"x" * max(1, outgoing_mime_bytes - 20)
    out = []
    for i in range(n):
        mid = uuid.uuid4().hex
        msg = OutgoingMessage(
            message_id=mid, account="bench", source="rest", submitted_at=now,
            envelope_from="bench@example.org", recipient=f"r{i}@example.com", track_bounces=True,
            dsn=DsnRequest(notify=["FAILURE"]), mime_b64=base64.b64encode(body).decode(),
        )
        bounce = RawBounce(
            event_id=uuid.uuid4().hex, message_id=mid, mail_from="", rcpt_to=f"b.{mid}.sig@bounces.localhost",
            received_at=now, mime_b64=base64.b64encode(mails[i % len(mails)]).decode(),
        )
        out.append((mid, msg, bounce))
    return out


async def create_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{prefix}{t}", PARTITIONS, 1) for t in TOPICS])
    finally:
        await admin.close()


async def produce(bootstrap: str, prefix: str, recs: list, topics: tuple[str, ...],
                  rate: float = 0.0, transaction_size: int = 0) -> None:
    """Write each record's `outgoing` and/or `raw-bounce` value, keyed by its message id.

    With `transaction_size`, in transactions of that many records, as the ingress and the
    bounce-receiver write (each commit marker is an offset gap for the consumer); with
    `rate`, paced to about that many records/s (small fetches, as in the system), else
    as fast as the producer goes.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_request_size=40 * 1024 * 1024,
                                transactional_id=f"bench-{uuid.uuid4().hex}" if transaction_size else None)
    await producer.start()
    values = [(f"{prefix}{topic}", mid.encode(), msg.to_bytes() if topic == "outgoing" else bounce.to_bytes())
              for mid, msg, bounce in recs for topic in topics]
    step = transaction_size or len(values) or 1
    started = time.monotonic()
    try:
        for first in range(0, len(values), step):
            chunk = values[first:first + step]
            if transaction_size:
                async with producer.transaction():
                    await asyncio.gather(*[await producer.send(t, v, key=k) for t, k, v in chunk])
            else:
                await asyncio.gather(*[await producer.send(t, v, key=k) for t, k, v in chunk])
            if rate:
                await asyncio.sleep(max(0.0, started + (first + len(chunk)) / rate - time.monotonic()))
    finally:
        await producer.stop()


async def prefill(bootstrap: str, prefix: str, n: int, outgoing_mime_bytes: int = 0) -> None:
    await create_topics(bootstrap, prefix)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_request_size=40 * 1024 * 1024)
    await producer.start()
    try:
        pending = []
        for mid, msg, bounce in records(n, outgoing_mime_bytes):
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


def start_worker(bootstrap: str, prefix: str) -> tuple[subprocess.Popen, Path, int]:
    """`python -m bounceflow_classifier` on `prefix`'s topics: (process, its log, its HTTP port)."""
    data_dir = tempfile.mkdtemp(prefix="bounceflow-classifier-bench-")
    port = free_port()
    env = {**os.environ, "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap, "BOUNCEFLOW_TOPIC_PREFIX": prefix,
           "BOUNCEFLOW_CLASSIFIER_DATA_DIR": data_dir, "BOUNCEFLOW_CLASSIFIER_HTTP_PORT": str(port),
           "BOUNCEFLOW_LOG_LEVEL": "WARNING"}
    log_path = Path(data_dir) / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bounceflow_classifier"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log_path, port


def stop_worker(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(bootstrap: str, n: int, max_seconds: float, outgoing_mime_bytes: int = 0) -> dict:
    prefix = f"bench{secrets.token_hex(3)}-"
    asyncio.run(prefill(bootstrap, prefix, n, outgoing_mime_bytes))
    started = time.monotonic()
    proc, log_path, _ = start_worker(bootstrap, prefix)
    try:
        seen = asyncio.run(collect(bootstrap, prefix, n, started + max_seconds))
        wall = time.monotonic() - started
    finally:
        stop_worker(proc)
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


async def wait_for_records(consumer: AIOKafkaConsumer, topic: str, n: int, deadline: float,
                           proc: subprocess.Popen) -> int:
    """Poll the end offsets of `topic` until they sum to `n` (or the deadline, or the worker died)."""
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    while True:
        try:
            have = sum((await consumer.end_offsets(tps)).values())
        except Exception:  # the changelog topic may not exist yet
            have = 0
        if have >= n or time.monotonic() > deadline or proc.poll() is not None:
            return have
        await asyncio.sleep(0.2)


def wait_healthy(port: int, deadline: float) -> None:
    import urllib.request
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("worker not healthy")


def run_cpu(bootstrap: str, n: int, max_seconds: float, outgoing_mime_bytes: int,
            profile: Path | None = None, rate: float = 0.0, transaction_size: int = 0) -> dict:
    """CPU seconds of the worker per `outgoing` record and per raw bounce (see the module docstring)."""
    prefix = f"bench{secrets.token_hex(3)}-"
    asyncio.run(create_topics(bootstrap, prefix))
    recs = records(n, outgoing_mime_bytes)
    proc, log_path, port = start_worker(bootstrap, prefix)
    result: dict = {"bench": "classifier_stream_cpu", "topic_prefix": prefix, "records": n,
                    "outgoing_mime_bytes": outgoing_mime_bytes, "rate": rate or None,
                    "transaction_size": transaction_size or None, "worker_pid": proc.pid, "worker_log": str(log_path)}
    try:
        deadline = time.monotonic() + max_seconds
        wait_healthy(port, deadline)
        time.sleep(3.0)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(5.0)
        idle = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        result["idle_cpu_per_s"] = round(idle, 4)
        changelog = f"{prefix}{APP_ID}-sent-messages-changelog"
        for phase, topic, out_topic in (("outgoing", "outgoing", changelog),
                                        ("bounce", "raw-bounce", f"{prefix}classified-bounce")):
            spy = profile and subprocess.Popen(  # py-spy's own CPU is not the worker's
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(proc.pid), "-r", "200", "--gil",
                 "-f", "raw", "-o", f"{profile}.{phase}.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if spy:
                time.sleep(1.0)
            c0, t0, s0 = cpu_seconds(proc.pid), time.monotonic(), cpu_seconds(proc.pid, (STIME,))
            asyncio.run(produce(bootstrap, prefix, recs, (topic,), rate, transaction_size))
            done = asyncio.run(_wait(bootstrap, out_topic, n, deadline, proc))
            cpu, span = cpu_seconds(proc.pid) - c0, time.monotonic() - t0
            result[phase] = {"done": done, "cpu_seconds": round(cpu, 2),
                             "system_seconds": round(cpu_seconds(proc.pid, (STIME,)) - s0, 2), "wall_seconds": round(span, 2),
                             "cpu_ms_per_record": round(1000 * (cpu - idle * span) / n, 3)}
            if spy:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
    finally:
        stop_worker(proc)
    return result


APP_ID = "bounceflow-classifier"


async def _wait(bootstrap: str, topic: str, n: int, deadline: float, proc: subprocess.Popen) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await wait_for_records(consumer, topic, n, deadline, proc)
    finally:
        await consumer.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=default_bootstrap())
    parser.add_argument("-n", type=int, default=5000, help="bounces (default 5000)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="bound on the timed part")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--cpu", action="store_true", help="measure the worker's CPU per record instead")
    parser.add_argument("--outgoing-mime-bytes", type=int, default=4096,
                        help="size of the MIME in each `outgoing` record (default 4096)")
    parser.add_argument("--profile", type=Path, help="with --cpu: py-spy raw profiles of the worker, PATH.<phase>.txt")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="with --cpu: write about this many records/s (default: as fast as possible)")
    parser.add_argument("--transaction-size", type=int, default=0,
                        help="with --cpu: write in Kafka transactions of this many records, like the "
                        "ingress and the bounce-receiver (default: no transactions)")
    args = parser.parse_args()
    if args.cpu:
        result = run_cpu(args.bootstrap, args.n, args.max_seconds, args.outgoing_mime_bytes, args.profile,
                         args.rate, args.transaction_size)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        ok = all(result.get(p, {}).get("done", 0) >= args.n for p in ("outgoing", "bounce"))
        return 0 if ok else 1
    result = run(args.bootstrap, args.n, args.max_seconds, args.outgoing_mime_bytes)
    print(f"classifier stream: {result['classified']}/{result['bounces']} classified "
          f"({result['matched']} matched); steady {result['steady_bounces_per_s']} bounces/s, "
          f"{result['wall_bounces_per_s']} bounces/s including worker start ({result['wall_seconds']} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())

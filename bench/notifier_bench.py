"""Notifier log-writer throughput: records/s and rows/s from Kafka into ClickHouse (chDB).

Pre-fills delivery-result and classified-bounce (a mix: delivered, deferred,
refused, expired; DSN failures, auto-replies, non-standard bounces,
complaints) with `--records` records, then starts the log writer on a fresh
chDB path and times it from start to the last committed batch. The rows are
then counted with FINAL and checked against what the mapping promises.

Kafka: `--bootstrap`, else $BOUNCEFLOW_TEST_KAFKA, else a broker of its own
(tests/kafka_broker.py) in a temp dir.

Usage: python bench/notifier_bench.py [--records 50000] [--batch-size 5000]
                                      [--timeout 300] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "common", ROOT / "services" / "notifier", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from bounceflow.kafka import create_producer, ensure_topics  # noqa: E402
from bounceflow_notifier.log_writer import LogWriter  # noqa: E402
from bounceflow_notifier.rows import record_rows  # noqa: E402
from bounceflow_notifier.settings import NotifierSettings  # noqa: E402
from bounceflow_notifier.store import Store  # noqa: E402
from notifier.notifier_records import bounce, deferred, delivery, expired, refused  # noqa: E402

BOUNCE_KINDS = ("dsn-failure", "autoreply", "nonstandard-bounce", "complaint", "dsn-delay")


def make_record(i: int):
    """The i-th record of the mix (deterministic)."""
    message_id = f"bench-{i:07d}"
    recipient = f"user{i}@domain{i % 50}.test"
    minutes = i % (60 * 24 * 7)
    slot = i % 10
    if slot < 5:
        return delivery(message_id, recipient=recipient, minutes=minutes)
    if slot == 5:
        return deferred(message_id, recipient=recipient, minutes=minutes)
    if slot == 6:
        return refused(message_id, recipient=recipient, minutes=minutes)
    if slot == 7:
        return expired(message_id, recipient=recipient, minutes=minutes)
    kind = BOUNCE_KINDS[(i // 10) % len(BOUNCE_KINDS)]
    return bounce(f"raw-{i:07d}", kind, message_id, recipient=recipient, minutes=minutes)


async def prefill(settings: NotifierSettings, records: int) -> dict[str, int]:
    """Produce the records; returns the rows per table they must become."""
    await ensure_topics(settings)
    producer = create_producer(settings, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    expected: dict[str, int] = {}
    try:
        pending = []
        for i in range(records):
            record = make_record(i)
            topic = "delivery-result" if hasattr(record, "attempt") else "classified-bounce"
            value = record.to_bytes()
            for row in record_rows(topic, topic, 0, 0, None, value, 0):
                expected[row.table] = expected.get(row.table, 0) + 1
            pending.append(await producer.send(settings.topic(topic), value, key=record.message_id.encode()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return expected


async def run(args) -> dict:
    bootstrap, broker = args.bootstrap or os.environ.get("BOUNCEFLOW_TEST_KAFKA"), None
    workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
    if not bootstrap:
        from kafka_broker import KafkaBroker, install_jars

        install_jars()
        broker = KafkaBroker(workdir / "kafka")
        broker.start()
        bootstrap = broker.bootstrap
    try:
        settings = NotifierSettings(
            kafka_bootstrap=bootstrap, topic_prefix=f"bench{secrets.token_hex(3)}-", topic_partitions=4,
            clickhouse_dsn=f"chdb://{workdir / 'clickhouse'}", log_batch_size=args.batch_size,
            log_batch_delay=0.5,
        )
        t0 = time.monotonic()
        expected = await prefill(settings, args.records)
        prefill_s = time.monotonic() - t0

        store = Store(settings.resolved_clickhouse_dsn())
        writer = LogWriter(settings, store)
        started, cpu_started = time.monotonic(), time.process_time()
        await writer.start()
        deadline = started + args.timeout
        first_commit = None
        while writer.records_logged < args.records:
            if first_commit is None and writer.records_logged:
                first_commit = (time.monotonic(), writer.records_logged)
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {writer.records_logged}/{args.records} records logged in {args.timeout}s")
            await asyncio.sleep(0.01)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
        await writer.stop()
        got = {t: (await store.query(f"SELECT count() AS n FROM {t} FINAL"))[0]["n"] for t in expected}
        await store.close()
        if got != expected:
            raise AssertionError(f"rows in ClickHouse {got} != expected {expected}")
        rows = sum(expected.values())
        steady = None
        if first_commit is not None and time.monotonic() > first_commit[0]:
            steady_s = started + elapsed - first_commit[0]
            steady = round((args.records - first_commit[1]) * rows / args.records / steady_s) if steady_s > 0 else None
        return {
            "bench": "notifier_log_writer", "store": "chdb", "records": args.records, "rows": rows,
            "rows_per_table": expected, "batch_size": args.batch_size, "seconds": round(elapsed, 3),
            "records_per_s": round(args.records / elapsed), "rows_per_s": round(rows / elapsed),
            "steady_rows_per_s": steady,
            "cpu_seconds": round(cpu, 3), "cpu_ms_per_record": round(1000 * cpu / args.records, 4),
            "prefill_seconds": round(prefill_s, 3), "store_failures": writer.store_failures,
            "note": "rows_per_s: from writer start (migrations, group join included) to the last committed "
                    "batch; steady_rows_per_s: after the first committed batch; cpu_seconds: this process "
                    "(writer, chDB, Kafka client) over the same span, startup and migrations included",
        }
    finally:
        if broker is not None:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: $BOUNCEFLOW_TEST_KAFKA or own broker)")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

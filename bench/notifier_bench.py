"""Notifier log-writer throughput: records/s and rows/s from Kafka into ClickHouse (chDB).

Pre-fills delivery-result and classified-bounce (a mix: delivered, deferred,
refused, expired; DSN failures, auto-replies, non-standard bounces,
complaints) with `--records` records, then starts the log writer on a fresh
chDB path and times it from start to the last committed batch. The rows are
then counted with FINAL and checked against what the mapping promises.

`--service` measures the whole notifier instead: `python -m bounceflow_notifier`
as its own process (log writer and dispatcher, JSON logs at `--log-level`),
an account with a bounce webhook to a local `WebhookSink` (as in
bench/system_bench.py), and two phases on pre-filled topics: `--records`
delivery results (mostly delivered, as under load), then `--records`
classified bounces (DSN failures without an envelope: bounce_log and
failure_log rows, one signed webhook, no forward). Each phase reports the
process's user+system CPU (/proc/<pid>/stat) per record, until both consumer
groups committed every record and the sink has every call.

Kafka: `--bootstrap`, else $BOUNCEFLOW_TEST_KAFKA, else a broker of its own
(tests/kafka_broker.py) in a temp dir.

Usage: python bench/notifier_bench.py [--records 50000] [--batch-size 5000]
                                      [--timeout 300] [--json PATH]
       python bench/notifier_bench.py --service [--records 4000] [--rate 500] [--log-level WARNING]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "common", ROOT / "services" / "notifier", ROOT / "devkit", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from bounceflow.kafka import create_producer, ensure_topics  # noqa: E402
from bounceflow_notifier.log_writer import LogWriter  # noqa: E402
from bounceflow_notifier.rows import record_rows  # noqa: E402
from bounceflow_notifier.settings import NotifierSettings  # noqa: E402
from bounceflow_notifier.store import Store  # noqa: E402
from notifier.notifier_records import bounce, deferred, delivery, expired, refused  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

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


async def group_committed(settings: NotifierSettings, group: str, topic: str) -> int:
    """Sum of a consumer group's committed offsets on a (prefixed) topic."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.group(group))
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == settings.topic(topic) and meta.offset > 0)


def service_delivery(i: int):
    """The i-th delivery result of the service bench: 94 % delivered, 4 % deferred, 2 % refused."""
    message_id, recipient = f"svc-{i:07d}", f"user{i}@domain{i % 50}.test"
    slot = i % 50
    if slot < 2:
        return deferred(message_id, recipient=recipient, account="bench")
    if slot == 2:
        return refused(message_id, recipient=recipient, account="bench")
    return delivery(message_id, recipient=recipient, account="bench")


async def produce_all(settings: NotifierSettings, topic: str, values: list[tuple[bytes, bytes]],
                      rate: float = 0) -> None:
    """All at once, or `rate` records/s in 20 ms steps (as records arrive under load)."""
    producer = create_producer(settings, linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        step = max(1, round(rate / 50)) if rate else len(values)
        started, pending = time.monotonic(), []
        for n in range(0, len(values), step):
            if rate:
                await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            pending += [await producer.send(settings.topic(topic), value, key=key) for key, value in values[n:n + step]]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def run_service(args) -> dict:
    """Both consumers in a `python -m bounceflow_notifier` process: CPU per record, per topic."""
    import httpx

    from bounceflow.accounts import AccountsFile, write_accounts
    from bounceflow_devkit.stack import free_port
    from bounceflow_devkit.webhook_sink import WebhookSink
    from notifier_notify.notify_records import account, classified

    bootstrap = args.bootstrap or os.environ.get("BOUNCEFLOW_TEST_KAFKA")
    if not bootstrap:
        raise SystemExit("--service needs --bootstrap or $BOUNCEFLOW_TEST_KAFKA")
    workdir = Path(tempfile.mkdtemp(prefix="notifier-svc-bench-"))
    sink = WebhookSink(port=0)
    await sink.start()
    settings = NotifierSettings(kafka_bootstrap=bootstrap, topic_prefix=f"svc{secrets.token_hex(3)}-",
                                topic_partitions=4)
    write_accounts(workdir / "accounts.json", AccountsFile(accounts=[account("bench", bounce_url=sink.url("bounces"))]))
    port = free_port()
    env = {**os.environ, "BOUNCEFLOW_KAFKA_BOOTSTRAP": bootstrap, "BOUNCEFLOW_TOPIC_PREFIX": settings.topic_prefix,
           "BOUNCEFLOW_TOPIC_PARTITIONS": "4", "BOUNCEFLOW_ACCOUNTS_FILE": str(workdir / "accounts.json"),
           "BOUNCEFLOW_CLICKHOUSE_DSN": f"chdb://{workdir / 'clickhouse'}", "BOUNCEFLOW_NOTIFIER_HTTP_PORT": str(port),
           "BOUNCEFLOW_WEBHOOK_ALLOW_PRIVATE": "true", "BOUNCEFLOW_LOG_LEVEL": args.log_level,
           # A burst (or a py-spy pause) must not push webhooks to the 30 s retry: measure the first-try path.
           "BOUNCEFLOW_NOTIFIER_HOST_BACKLOG": str(2 * args.records)}
    await ensure_topics(settings)
    results = [(r.message_id.encode(), r.to_bytes()) for r in map(service_delivery, range(args.records))]
    bounces = [classified("dsn-failure", account_name="bench", envelope_from="", message_id=f"svc-{i:07d}")
               for i in range(args.records)]
    bounces = [(b.message_id.encode(), b.to_bytes()) for b in bounces]
    log_path = workdir / "notifier.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "bounceflow_notifier"], env=env, cwd=workdir,
                                stdout=log_file, stderr=log_file)
    out: dict = {"bench": "notifier_service_cpu", "records_per_phase": args.records, "rate": args.rate or "all at once",
                 "log_level": args.log_level}
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + args.timeout
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise TimeoutError(f"notifier not healthy; see {log_path}")
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # both groups joined and idle
        idle_from, idle_cpu = time.monotonic(), cpu_seconds(proc.pid)
        await asyncio.sleep(3)
        idle_per_s = (cpu_seconds(proc.pid) - idle_cpu) / (time.monotonic() - idle_from)
        out["idle_cpu_ms_per_s"] = round(1000 * idle_per_s, 2)
        calls = 0
        # The account has no failure webhook (as in the system bench): refusals make no call.
        for topic, values, webhooks in (("delivery-result", results, 0), ("classified-bounce", bounces, args.records)):
            calls += webhooks
            spy = None
            if args.profile:
                spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(proc.pid),
                                        "-r", "250", "--gil", "-f", "raw", "-o", f"{args.profile}-{topic}.txt"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started, cpu = time.monotonic(), cpu_seconds(proc.pid)
            await produce_all(settings, topic, values, args.rate)
            await sink.wait_for(calls, timeout=args.timeout)
            deadline = started + args.timeout
            while not (await group_committed(settings, settings.notifier_log_group, topic) >= args.records
                       and await group_committed(settings, settings.notifier_notify_group, topic) >= args.records):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise TimeoutError(f"{topic} not done; see {log_path}")
                await asyncio.sleep(0.05)
            elapsed, used = time.monotonic() - started, cpu_seconds(proc.pid) - cpu
            if spy is not None:
                spy.send_signal(subprocess.signal.SIGINT)
                spy.wait(30)
            out[topic] = {"seconds": round(elapsed, 2), "cpu_seconds": round(used, 3),
                          "cpu_ms_per_record": round(1000 * used / args.records, 4),
                          "cpu_ms_per_record_less_idle": round(1000 * (used - idle_per_s * elapsed) / args.records, 4)}
        out["webhook_calls"] = len(sink.calls)
        out["note"] = ("CPU of the notifier process from the start of each phase's produce until both groups "
                       "committed every record and the sink had every call")
        return out
    finally:
        proc.terminate()
        proc.wait(30)
        await sink.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: $BOUNCEFLOW_TEST_KAFKA or own broker)")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument("--service", action="store_true",
                        help="measure the whole notifier process: CPU per delivery result and per bounce")
    parser.add_argument("--log-level", default="WARNING", help="--service: the notifier's log level")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="--service: py-spy each phase into PREFIX-<topic>.txt (raw stacks; CPU figures then include its pauses)")
    parser.add_argument("--rate", type=float, default=0,
                        help="--service: produce this many records/s (default: all before the notifier reads)")
    args = parser.parse_args(argv)
    result = asyncio.run(run_service(args) if args.service else run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

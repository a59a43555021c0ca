"""Webhook throughput: signed bounce webhooks/s from Kafka to a local endpoint.

Pre-fills `classified-bounce` with `--records` bounces (auto-replies and DSN
failures without an envelope, so nothing is forwarded: every record is one
bounce webhook, DSN failures a failure webhook too), then starts the
notification dispatcher and times it from start until the local
`WebhookSink` has every call and the offsets are committed. A sample of the
calls is verified with the reference `standardwebhooks` library.

Kafka: `--bootstrap`, else $BOUNCEFLOW_TEST_KAFKA, else a broker of its own
(tests/kafka_broker.py) in a temp dir.

Usage: python bench/webhooks_bench.py [--records 5000] [--host-concurrency 64]
                                      [--timeout 300] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "common", ROOT / "services" / "notifier", ROOT / "devkit", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from standardwebhooks import Webhook as ReferenceWebhook  # noqa: E402

from bounceflow.kafka import create_producer, ensure_topics  # noqa: E402
from bounceflow_devkit.webhook_sink import WebhookSink  # noqa: E402
from bounceflow_notifier.dispatcher import NotificationDispatcher  # noqa: E402
from bounceflow.accounts import AccountStore  # noqa: E402
from bounceflow_notifier.settings import NotifierSettings  # noqa: E402
from notifier_notify.notify_harness import committed_total, save_accounts  # noqa: E402
from notifier_notify.notify_records import account, classified  # noqa: E402


async def prefill(settings: NotifierSettings, records: int) -> int:
    """Produce the bounces; returns the number of webhook calls they must cause."""
    await ensure_topics(settings)
    producer = create_producer(settings, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    calls = 0
    try:
        pending = []
        for i in range(records):
            category = "dsn-failure" if i % 4 == 0 else "autoreply"
            calls += 2 if category == "dsn-failure" else 1
            bounce = classified(category, account_name="bench", envelope_from="", message_id=f"bench-{i:07d}")
            pending.append(await producer.send(settings.topic("classified-bounce"), bounce.to_bytes(),
                                               key=bounce.message_id.encode()))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return calls


async def run(args) -> dict:
    bootstrap, broker = args.bootstrap or os.environ.get("BOUNCEFLOW_TEST_KAFKA"), None
    workdir = Path(tempfile.mkdtemp(prefix="webhooks-bench-"))
    if not bootstrap:
        from kafka_broker import KafkaBroker, install_jars

        install_jars()
        broker = KafkaBroker(workdir / "kafka")
        broker.start()
        bootstrap = broker.bootstrap
    sink = WebhookSink(port=0)
    await sink.start()
    try:
        acct = account("bench", bounce_url=sink.url("bounce"), failure_url=sink.url("failure"))
        save_accounts(workdir / "accounts.json", acct)
        settings = NotifierSettings(
            kafka_bootstrap=bootstrap, topic_prefix=f"wbench{secrets.token_hex(3)}-", topic_partitions=4,
            accounts_file=str(workdir / "accounts.json"), webhook_allow_private=True,
            notifier_host_concurrency=args.host_concurrency, notifier_host_backlog=args.records * 2,
            notifier_max_in_flight=args.max_in_flight,
        )
        t0 = time.monotonic()
        expected_calls = await prefill(settings, args.records)
        prefill_s = time.monotonic() - t0

        dispatcher = NotificationDispatcher(settings, AccountStore(settings.accounts_file))
        started = time.monotonic()
        await dispatcher.start()
        try:
            await sink.wait_for(expected_calls, timeout=args.timeout)
            delivered_s = time.monotonic() - started
            deadline = time.monotonic() + args.timeout
            while await committed_total(settings, "classified-bounce") < args.records:
                if time.monotonic() > deadline:
                    raise TimeoutError("offsets not committed in time")
                await asyncio.sleep(0.1)
            committed_s = time.monotonic() - started
        finally:
            await dispatcher.stop()
        secret = acct.bounce_webhook.secret.get_secret_value()
        sample = [c for c in sink.calls if c.path == "/bounce"][:: max(1, args.records // 100)]
        for call in sample:
            ReferenceWebhook(secret).verify(call.body, call.headers)
        retried = len(sink.failed_calls)
        return {
            "bench": "notifier_webhooks", "records": args.records, "webhook_calls": len(sink.calls),
            "expected_calls": expected_calls, "host_concurrency": args.host_concurrency,
            "seconds_to_last_call": round(delivered_s, 3), "seconds_to_commit": round(committed_s, 3),
            "webhooks_per_s": round(len(sink.calls) / delivered_s), "signatures_verified": len(sample),
            "failed_calls": retried, "prefill_seconds": round(prefill_s, 3),
            "note": "from dispatcher start (group join included) to the last call received by a local "
                    "WebhookSink on loopback; one process, one endpoint host",
        }
    finally:
        await sink.stop()
        if broker is not None:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: $BOUNCEFLOW_TEST_KAFKA or own broker)")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--host-concurrency", type=int, default=64)
    parser.add_argument("--max-in-flight", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"))
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

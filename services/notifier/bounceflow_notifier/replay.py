"""`bounceflow replay-dlq`: put dead-lettered webhooks and forwards back in line.

Reads `notification-dead-letter` from the beginning up to its current end
(no consumer group: the dead-letter topic is a log, not a queue), keeps the
latest dead letter per event id that matches `--account` / `--since`, and
publishes each to `notification-retry` as attempt 2, due now, so the whole
retry schedule applies again. The event id is unchanged, so the webhook-id
a receiver de-duplicates on is the same as on the original tries: running
the command twice is harmless for a receiver that honours it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bounceflow.kafka import create_producer
from bounceflow.models import DeadLetter

from bounceflow_notifier.settings import NotifierSettings

DEAD_LETTER_TOPIC = "notification-dead-letter"
RETRY_TOPIC = "notification-retry"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`24h`, `30m`, `7d` (ago) or an ISO 8601 time (UTC when no zone is given)."""
    match = _DURATION.match(value.strip())
    if match:
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ReplayFilter:
    account: str | None = None
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.account and letter.notification.account != self.account:
            return False
        failed_at = letter.failed_at if letter.failed_at.tzinfo else letter.failed_at.replace(tzinfo=timezone.utc)
        return self.since is None or failed_at >= self.since


def select(letters: list[DeadLetter], wanted: ReplayFilter) -> list[DeadLetter]:
    """The latest dead letter per event id among those that match (pure)."""
    latest: dict[str, DeadLetter] = {}
    for letter in letters:
        if wanted.matches(letter):
            latest[letter.notification.event_id] = letter
    return list(latest.values())


def requeued(letter: DeadLetter, now: datetime) -> bytes:
    """The retry record for a dead letter: attempt reset to 2, due now, same event id."""
    pending = letter.notification.model_copy(update={
        "attempt": 2, "not_before": now, "first_attempt_at": now,
        "last_error": f"replayed from dead letter: {letter.reason}"[:1000],
    })
    return pending.to_bytes()


async def topic_partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The partitions of `topic` (none when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for t in described if t["error_code"] == 0
            for p in t["partitions"]]


async def read_dead_letters(settings: NotifierSettings, timeout: float = 30.0) -> list[DeadLetter]:
    """Every dead letter currently on the topic, in order per partition."""
    topic = settings.topic(DEAD_LETTER_TOPIC)
    tps = await topic_partitions(settings.kafka_bootstrap, topic)
    if not tps:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        letters: list[DeadLetter] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = asyncio.get_running_loop().time() + timeout
        while remaining:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout}s")
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                letters.extend(DeadLetter.from_bytes(r.value) for r in records if r.offset < ends[tp])
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return letters
    finally:
        await consumer.stop()


async def replay(settings: NotifierSettings, wanted: ReplayFilter, dry_run: bool = False) -> list[DeadLetter]:
    """Publish the selected dead letters to the retry topic; returns them."""
    chosen = select(await read_dead_letters(settings), wanted)
    if dry_run or not chosen:
        return chosen
    producer = create_producer(settings)
    await producer.start()
    try:
        now = datetime.now(timezone.utc)
        futures = [await producer.send(settings.topic(RETRY_TOPIC), requeued(letter, now),
                                       key=letter.notification.event_id.encode())
                   for letter in chosen]
        await asyncio.wait_for(asyncio.gather(*futures), settings.kafka_ack_timeout)
    finally:
        await producer.stop()
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Entry point of `bounceflow replay-dlq` (settings from BOUNCEFLOW_*)."""
    parser = argparse.ArgumentParser(prog="bounceflow replay-dlq", description=__doc__.splitlines()[0])
    parser.add_argument("--account", help="only this account's dead letters")
    parser.add_argument("--since", help="only dead letters since: ISO time, or 30m / 24h / 7d ago")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    args = parser.parse_args(argv)
    wanted = ReplayFilter(args.account, parse_since(args.since) if args.since else None)
    chosen = asyncio.run(replay(NotifierSettings(), wanted, args.dry_run))
    for letter in chosen:
        n = letter.notification
        sys.stdout.write(f"{'would replay' if args.dry_run else 'replayed'} {n.event_id} {n.kind} "
                         f"account={n.account} failed_at={letter.failed_at.isoformat()} reason={letter.reason}\n")
    sys.stdout.write(f"{len(chosen)} dead letter(s) {'selected' if args.dry_run else 'replayed'}\n")
    return 0

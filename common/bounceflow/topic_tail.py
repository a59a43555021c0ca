"""`bounceflow tail TOPIC`: look at what flows through a topic, as JSON lines.

A plain consumer without a group (it commits nothing, so it never disturbs
the services), reading committed records only, like the services do. Base64
MIME fields are shortened unless --full is given, so a terminal stays usable.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from aiokafka import AIOKafkaConsumer

from bounceflow.settings import CommonSettings

SHORT = 60


def shorten(value):
    """Cut every `*_b64` field to SHORT characters, recursively."""
    if isinstance(value, dict):
        return {k: (v[:SHORT] + f"…({len(v)} chars)" if k.endswith("_b64") and isinstance(v, str) and len(v) > SHORT
                    else shorten(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value]
    return value


def render(key: bytes | None, value: bytes, partition: int, offset: int, full: bool = False) -> str:
    """One output line for one record (values that are not JSON are shown as text)."""
    try:
        payload = json.loads(value)
    except ValueError:
        payload = value.decode(errors="replace")
    if not full:
        payload = shorten(payload)
    return json.dumps({"partition": partition, "offset": offset,
                       "key": key.decode(errors="replace") if key is not None else None, "value": payload})


async def tail(settings: CommonSettings, topic: str, *, from_beginning: bool = False, limit: int | None = None,
               idle: float | None = None, full: bool = False, out: TextIO = sys.stdout) -> int:
    """Print records until `limit` records or `idle` quiet seconds (or Ctrl-C)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic), bootstrap_servers=settings.kafka_bootstrap, group_id=None,
        enable_auto_commit=False, isolation_level="read_committed",
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    printed, last = 0, time.monotonic()
    try:
        while limit is None or printed < limit:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if limit is not None and printed >= limit:
                        break
                    out.write(render(record.key, record.value, record.partition, record.offset, full) + "\n")
                    printed += 1
                    last = time.monotonic()
            out.flush()
            if idle is not None and time.monotonic() - last > idle:
                break
    finally:
        await consumer.stop()
    return 0

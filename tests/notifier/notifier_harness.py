"""Running a real NotifierService against the test broker and a chDB path."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from bounceflow.accounts import Account, AccountsFile, hash_api_key, write_accounts
from bounceflow.kafka import create_producer, ensure_topics
from bounceflow_notifier.service import NotifierService
from bounceflow_notifier.settings import NotifierSettings

API_KEYS = {"acme": "bf_acme_test_key", "globex": "bf_globex_test_key"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_test_accounts(path: Path) -> Path:
    write_accounts(path, AccountsFile(accounts=[
        Account(name=name, api_key_hashes=[hash_api_key(key)]) for name, key in API_KEYS.items()
    ]))
    return path


def notifier_settings(bootstrap: str, prefix: str, tmp_path: Path, **overrides) -> NotifierSettings:
    values = dict(
        kafka_bootstrap=bootstrap, topic_prefix=prefix, topic_partitions=2,
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}", notifier_http_port=free_port(),
        accounts_file=str(write_test_accounts(tmp_path / "accounts.json")),
        log_batch_size=500, log_batch_delay=0.1, log_retry_initial=0.05, log_retry_max=0.2,
    )
    values.update(overrides)
    return NotifierSettings(**values)


async def produce(settings: NotifierSettings, records) -> None:
    """Write records (models or (topic, key, raw bytes)) and wait for the acks."""
    await ensure_topics(settings)
    producer = create_producer(settings)
    await producer.start()
    try:
        for record in records:
            if isinstance(record, tuple):
                topic, key, value = record
            else:
                topic = "delivery-result" if hasattr(record, "attempt") else "classified-bounce"
                key, value = record.message_id or record.event_id, record.to_bytes()
            await producer.send_and_wait(settings.topic(topic), value, key=key.encode())
    finally:
        await producer.stop()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `check` until true; fail after `timeout` seconds (a bound, not an assertion on time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def table_count(service: NotifierService, table: str, where: str = "1") -> int:
    rows = await service.store.query(f"SELECT count() AS n FROM {table} FINAL WHERE {where}")
    return rows[0]["n"]


async def counts(service: NotifierService) -> dict[str, int]:
    return {t: await table_count(service, t) for t in ("delivery_log", "failure_log", "bounce_log", "rejected_records")}


async def event_ids(service: NotifierService, table: str) -> set[str]:
    return {r["event_id"] for r in await service.store.query(f"SELECT event_id FROM {table} FINAL")}


async def run_until_logged(settings: NotifierSettings, expected: dict[str, int]) -> NotifierService:
    """Start a service and wait until the tables hold `expected` rows."""
    service = NotifierService(settings)
    await service.start()
    await wait_for(lambda: _has(service, expected), what=f"rows {expected}")
    return service


async def _has(service: NotifierService, expected: dict[str, int]) -> bool:
    if not service.log_writer.migrated:
        return False
    got = await counts(service)
    return all(got[t] >= n for t, n in expected.items())

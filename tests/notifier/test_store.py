"""The ClickHouse edge on chDB: migrations, idempotent rows, the read queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notifier.notifier_records import T0, bounce, delivery, expired, refused

from bounceflow_notifier.migrations import load_migrations, migrate, split_statements
from bounceflow_notifier.queries import LogFilter, count_log, select_log
from bounceflow_notifier.rows import TABLE_COLUMNS, bounce_rows, delivery_rows, record_rows
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.store import Store, StoreUnavailable

MIGRATIONS = NotifierSettings().migrations_dir()


@pytest.fixture
async def store(tmp_path):
    store = Store(f"chdb://{tmp_path / 'ch'}")
    yield store
    await store.close()


async def insert(store: Store, rows) -> None:
    for table in TABLE_COLUMNS:
        batch = [row.as_sequence() for row in rows if row.table == table]
        await store.insert(table, TABLE_COLUMNS[table], batch)


async def count(store: Store, table: str) -> int:
    return (await store.query(f"SELECT count() AS n FROM {table} FINAL"))[0]["n"]


async def test_migrations_apply_once_and_are_idempotent(store):
    versions = [m.version for m in load_migrations(MIGRATIONS)]
    assert versions == sorted(versions) and versions[:2] == [1, 2]
    assert await migrate(store, MIGRATIONS) == versions
    assert await migrate(store, MIGRATIONS) == []
    tables = {r["name"] for r in await store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
    assert {"failure_log", "bounce_log", "delivery_log", "rejected_records", "schema_migrations"} <= tables
    assert await count(store, "schema_migrations") == len(versions)


async def test_migrations_survive_a_reopened_path(tmp_path):
    path = f"chdb://{tmp_path / 'ch'}"
    first = Store(path)
    await migrate(first, MIGRATIONS)
    await first.close()
    second = Store(path)
    try:
        assert await migrate(second, MIGRATIONS) == []
    finally:
        await second.close()


def test_split_statements_drops_comments():
    assert split_statements("-- a; comment\nCREATE TABLE x (a Int8); -- tail\n\nSELECT 1;") == (
        "CREATE TABLE x (a Int8)", "SELECT 1")


async def test_repeated_rows_count_once_with_final(store):
    await migrate(store, MIGRATIONS)
    rows = [*delivery_rows(refused("m1")), *delivery_rows(expired("m2")), *delivery_rows(delivery("m3")),
            *bounce_rows(bounce("b1", "dsn-failure", "m3")), *bounce_rows(bounce("b2", "autoreply", "m3"))]
    await insert(store, rows)
    await insert(store, rows)  # a replay, or a batch retried after a half-done insert
    assert await count(store, "delivery_log") == 3
    assert await count(store, "failure_log") == 3
    assert await count(store, "bounce_log") == 2


async def test_rejected_records_keep_raw_bytes(store):
    await migrate(store, MIGRATIONS)
    raw = b"\xff\xfe not json"
    await insert(store, record_rows("delivery-result", "delivery-result", 1, 7, b"k", raw, 1_700_000_000_000))
    (row,) = await store.query("SELECT offset, record_key, error FROM rejected_records")
    assert row["offset"] == 7 and row["record_key"] == "k" and "ValidationError" in row["error"]


async def test_select_log_filters_and_pages(store):
    await migrate(store, MIGRATIONS)
    rows = []
    for i in range(25):
        rows += delivery_rows(refused(f"m{i}", minutes=i, recipient=f"u{i}@{'gmail.test' if i % 2 else 'corp.test'}"))
    rows += delivery_rows(refused("other", account="globex"))
    await insert(store, rows)
    f = LogFilter(account="acme", domain="gmail.test")
    assert (await store.query(**vars(count_log("failure_log", f))))[0]["total"] == 12
    page1 = await store.query(**vars(select_log("failure_log", f, 5, 0)))
    page3 = await store.query(**vars(select_log("failure_log", f, 5, 10)))
    assert [r["message_id"] for r in page1] == ["m23", "m21", "m19", "m17", "m15"]
    assert [r["message_id"] for r in page3] == ["m3", "m1"]
    window = LogFilter(account="acme", since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=8))
    got = await store.query(**vars(select_log("failure_log", window, 100, 0)))
    assert sorted(r["message_id"] for r in got) == ["m5", "m6", "m7"]
    assert await store.query(**vars(select_log("failure_log", LogFilter(account="nobody"), 10, 0))) == []


async def test_dead_server_raises_store_unavailable():
    store = Store("http://default:@127.0.0.1:9/default", connect_timeout=1)
    try:
        with pytest.raises(StoreUnavailable):
            await store.query("SELECT 1")
        assert store.healthy is False
    finally:
        await store.close()

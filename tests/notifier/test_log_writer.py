"""End to end on the real broker and chDB: which record lands in which log,
replay idempotency, malformed records, and ClickHouse outages."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from notifier.notifier_harness import counts, event_ids, notifier_settings, produce, run_until_logged, wait_for
from notifier.notifier_records import bounce, deferred, delivery, expired, refused

from bounceflow_notifier.service import NotifierService

SEED_RECORDS = [
    delivery("m-ok"),
    deferred("m-later"),
    delivery("m-later", attempt=2, minutes=5),
    refused("m-refused"),
    expired("m-expired"),
    delivery("m-dsn"),
    bounce("b-dsn", "dsn-failure", "m-dsn", minutes=10),
    delivery("m-ooo"),
    bounce("b-ooo", "autoreply", "m-ooo", minutes=11),
    bounce("b-prose", "nonstandard-bounce", "m-ok", minutes=12),
    bounce("b-arf", "complaint", "m-ok", minutes=13),
    bounce("b-delay", "dsn-delay", "m-later", minutes=1),
    bounce("b-stray", "dsn-failure", None, minutes=14),
]
EXPECTED = {"delivery_log": 7, "failure_log": 4, "bounce_log": 6}


async def test_records_land_in_the_logs_the_seeds_name(kafka_broker, topic_prefix, tmp_path):
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path)
    service = NotifierService(settings)
    await service.start()
    try:
        await produce(settings, SEED_RECORDS)
        await wait_for(lambda: _counts_are(service, EXPECTED), what="all seed records logged")
        # failure log: SMTP-time refusal, expired, recognised DSN failures (matched or not)
        assert await event_ids(service, "failure_log") == {"m-refused:1", "m-expired:7", "b-dsn", "b-stray"}
        # bounce log: everything that came back, DSN or not; never the SMTP-time refusals
        assert await event_ids(service, "bounce_log") == {"b-dsn", "b-ooo", "b-prose", "b-arf", "b-delay", "b-stray"}
        # deferred attempts: delivery log only
        assert "m-later:1" in await event_ids(service, "delivery_log")
        sources = await service.store.query("SELECT event_id, source, category FROM failure_log FINAL")
        assert {r["event_id"]: (r["source"], r["category"]) for r in sources} == {
            "m-refused:1": ("delivery", "smtp-failure"), "m-expired:7": ("delivery", "smtp-failure"),
            "b-dsn": ("dsn", "dsn-failure"), "b-stray": ("dsn", "dsn-failure"),
        }
    finally:
        await service.stop()


async def test_replay_from_the_beginning_leaves_the_same_counts(kafka_broker, topic_prefix, tmp_path):
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path)
    await produce(settings, SEED_RECORDS)
    service = await run_until_logged(settings, EXPECTED)
    before = await counts(service)
    await service.stop()

    replay = settings.model_copy(update={"notifier_log_group": "notifier-logs-replay"})
    service = NotifierService(replay)
    await service.start()
    try:
        await wait_for(lambda: _group_caught_up(replay, len(SEED_RECORDS)), what="replay group at the end")
        assert service.log_writer.records_logged == len(SEED_RECORDS)  # it really read everything again
        assert await counts(service) == before == {**EXPECTED, "rejected_records": 0}
        raw = await service.store.query("SELECT count() AS n FROM bounce_log")  # without FINAL: copies exist
        assert raw[0]["n"] >= EXPECTED["bounce_log"]
    finally:
        await service.stop()


async def test_malformed_record_is_kept_and_does_not_block(kafka_broker, topic_prefix, tmp_path):
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path)
    service = NotifierService(settings)
    await service.start()
    try:
        await produce(settings, [("delivery-result", "broken-1", b"{not json"), refused("m-after")])
        await wait_for(lambda: _counts_are(service, {"rejected_records": 1, "failure_log": 1}),
                       what="rejected record and the next one")
        (row,) = await service.store.query("SELECT record_key, value, error FROM rejected_records FINAL")
        assert row["record_key"] == "broken-1" and row["value"] == "{not json" and "json" in row["error"].lower()
        assert service.log_writer.records_rejected == 1
        await wait_for(lambda: _group_caught_up(settings, 2), what="offsets committed past the bad record")
    finally:
        await service.stop()


async def test_clickhouse_outage_loses_nothing(kafka_broker, topic_prefix, tmp_path):
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path)
    service = NotifierService(settings)
    await service.start()
    try:
        await produce(settings, [refused("m-before")])
        await wait_for(lambda: _counts_are(service, {"failure_log": 1}), what="first row")
        # a real ClickHouse failure: the table the batch needs is gone
        await service.store.command("RENAME TABLE failure_log TO failure_log_away")
        await produce(settings, [refused(f"m-during-{i}") for i in range(20)])
        failures = service.log_writer.store_failures
        await wait_for(lambda: _true(service.log_writer.store_failures >= failures + 3), what="retries")
        assert await _committed(settings) == 1  # nothing past the first record was acknowledged
        await service.store.command("RENAME TABLE failure_log_away TO failure_log")
        await wait_for(lambda: _counts_are(service, {"failure_log": 21, "delivery_log": 21}), what="recovery")
        assert await counts(service) == {"delivery_log": 21, "failure_log": 21, "bounce_log": 0, "rejected_records": 0}
        await wait_for(lambda: _group_caught_up(settings, 21), what="offsets committed after recovery")
    finally:
        await service.stop()


async def test_notifier_started_while_clickhouse_is_down_commits_nothing(kafka_broker, topic_prefix, tmp_path):
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path)
    down = settings.model_copy(update={"clickhouse_dsn": "http://default:@127.0.0.1:9/default"})
    await produce(settings, SEED_RECORDS)
    service = NotifierService(down)
    await service.start()
    try:
        # the writer keeps trying (each attempt fails fast on the closed port) and acknowledges nothing
        await wait_for(lambda: _true(service.log_writer.store_failures >= 3), what="repeated ClickHouse failures")
        assert service.store.healthy is False and not service.log_writer.migrated
        assert await _committed(settings) == 0
    finally:
        await service.stop()
    service = await run_until_logged(settings, EXPECTED)  # ClickHouse back: everything arrives
    try:
        assert await counts(service) == {**EXPECTED, "rejected_records": 0}
    finally:
        await service.stop()


async def _true(value: bool) -> bool:
    return value


async def _counts_are(service: NotifierService, expected: dict[str, int]) -> bool:
    if not service.log_writer.migrated:
        return False
    got = await counts(service)
    return all(got[table] == n for table, n in expected.items())


async def _committed(settings) -> int:
    """Records committed by the log writer's group (sum of committed offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.group(settings.notifier_log_group))
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
    finally:
        await admin.close()


async def _group_caught_up(settings, records: int) -> bool:
    return await _committed(settings) == records

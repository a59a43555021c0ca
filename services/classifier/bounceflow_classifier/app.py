"""The Faust app: broker, RocksDB store, topics and the worker's HTTP views.

The app runs on the transport of `transport.py` (Faust's, with the fetch
settings of the other services and cheaper offset-gap bookkeeping).

Raw bytes on the wire (`value_serializer='raw'`): the pydantic models in
`bounceflow.models` are the payload contract, not `faust.Record`. The app id
carries the topic prefix, so each prefix (each test) has its own consumer
group and changelog topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faust
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bounceflow.kafka import MAX_RECORD_BYTES, ensure_topics

from .settings import ClassifierSettings
from .transport import App

APP_NAME = "bounceflow-classifier"
# Topics this app reads or writes; `outgoing`, `raw-bounce` and `raw-bounce-retry`
# are joined with the table, so they must have the same partition count.
INPUT_TOPICS = ("outgoing", "raw-bounce", "raw-bounce-retry")
TOPICS = (*INPUT_TOPICS, "classified-bounce")


class PartitionMismatch(RuntimeError):
    """The co-partitioned topics do not have the same partition count."""


@dataclass(frozen=True)
class Topics:
    """Where the agents read from and write to (channels in unit tests)."""

    outgoing: faust.types.ChannelT
    raw_bounce: faust.types.ChannelT
    retry: faust.types.ChannelT
    classified: faust.types.ChannelT


def app_id(settings: ClassifierSettings) -> str:
    return f"{settings.topic_prefix}{APP_NAME}"


def create_app(settings: ClassifierSettings, partitions: int, *, store: str = "rocksdb://", **overrides) -> faust.App:
    """The Faust app configured from `settings`; `partitions` = the `outgoing` partition count."""
    options = dict(
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",") if host.strip()],
        store=store,
        datadir=str(Path(settings.classifier_data_dir).absolute() / app_id(settings)),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,  # Faust creates its changelog topic; ours exist beforehand
        topic_disable_leader=True,  # no leader topic: no agent runs on the leader only
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=MAX_RECORD_BYTES,
        # Batch outputs and changelog records: with Faust's defaults (no linger, 16 KiB
        # batches) each produce request carried one or two classified bounces, and
        # building and writing requests was a tenth of the worker's CPU.
        producer_linger=0.01,
        producer_max_batch_size=1024 * 1024,
        # Which RocksDB partition holds a key: remembered for the last 100k keys
        # written or read (Faust's default, 1,000, made most lookups probe every
        # partition's database). About 10 MB at most.
        table_key_index_size=100_000,
        consumer_max_fetch_size=MAX_RECORD_BYTES,
        broker_commit_interval=settings.classifier_commit_interval,
        broker_session_timeout=settings.classifier_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.classifier_session_timeout / 3),
        broker_request_timeout=max(40.0, settings.classifier_session_timeout + 10),
        web_enabled=True,
        web_bind=settings.http_host,
        web_host=settings.http_host,
        web_port=settings.classifier_http_port,
        web_in_thread=False,
    )
    options.update(overrides)
    fetch = {"min_bytes": settings.kafka_fetch_min_bytes, "max_wait_ms": settings.kafka_fetch_max_wait_ms}
    app = App(app_id(settings), fetch=fetch, **options)
    _add_http_views(app)
    return app


def topics_of(app: faust.App, settings: ClassifierSettings) -> Topics:
    """The Kafka topics of the contract, by their prefixed names."""
    return Topics(
        outgoing=app.topic(settings.topic("outgoing")),
        raw_bounce=app.topic(settings.topic("raw-bounce")),
        retry=app.topic(settings.topic("raw-bounce-retry")),
        classified=app.topic(settings.topic("classified-bounce")),
    )


async def prepare_topics(settings: ClassifierSettings) -> int:
    """Create missing topics and return the partition count shared by the joined topics.

    Faust must not create these itself (it would not know the count the
    ingress and bounce-receiver use), and the join is only correct when
    `outgoing`, `raw-bounce` and `raw-bounce-retry` are co-partitioned.
    """
    await ensure_topics(settings, TOPICS)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.topic(t) for t in INPUT_TOPICS])
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise PartitionMismatch(f"co-partitioned topics differ in partition count: {counts}")
    return next(iter(counts.values()))


def _add_http_views(app: faust.App) -> None:
    @app.page("/health")
    async def health(web, request):  # noqa: ARG001 - Faust view signature
        checks = {
            "consumer": not app.consumer.crashed,
            "producer": not app.producer.crashed,
            "table_recovered": not app.in_recovery,
        }
        ok = all(checks.values())
        return web.json(
            {"service": "classifier", "status": "ok" if ok else "fail", "checks": checks},
            status=200 if ok else 503,
        )

    @app.page("/metrics")
    async def metrics(web, request):  # noqa: ARG001
        # aiohttp refuses a charset in `content_type`; a header may carry it.
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})



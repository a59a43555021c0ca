"""`python -m bounceflow_classifier`: run the classifier's Faust worker until SIGTERM/SIGINT.

Steps: read settings, log JSON, create the topics (and check that the joined
ones are co-partitioned), build the app, run a Faust worker on it. Faust's
worker owns the signals: SIGTERM/SIGINT stop it cleanly (offsets committed,
RocksDB closed). After a crash or SIGKILL the table comes back from the
RocksDB files in `classifier_data_dir` plus the changelog topic, and the
input offsets resume from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import faust
import uvloop

from bounceflow import lifecycle
from bounceflow.logs import configure_logging

from . import agents, tables
from .app import PartitionMismatch, create_app, prepare_topics, topics_of
from .settings import ClassifierSettings

log = logging.getLogger("bounceflow_classifier")


def build(settings: ClassifierSettings, partitions: int) -> faust.App:
    """The app with its table, agents and timer, ready for a worker."""
    app = create_app(settings, partitions)
    table = tables.sent_messages_table(app, partitions)
    agents.register(app, settings, topics_of(app, settings), table)
    return app


def main() -> int:
    settings = ClassifierSettings()
    configure_logging(settings.log_level, service="classifier")
    # Faust's Kafka consumer runs in a thread with a loop of its own, made by
    # `asyncio.new_event_loop()`: with this policy that loop is uvloop too.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = lifecycle.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        partitions = loop.run_until_complete(prepare_topics(settings))
    except PartitionMismatch as exc:
        log.error("cannot start: %s", exc)
        return 2
    app = build(settings, partitions)
    app.conf.datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    log.info("starting", extra={"app_id": app.conf.id, "partitions": partitions, "http_port": settings.classifier_http_port})
    worker = faust.Worker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()  # returns only via SystemExit
    return 0


if __name__ == "__main__":
    sys.exit(main())

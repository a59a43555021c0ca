"""Shared pytest fixtures: a real Kafka broker (KRaft, no Docker).

- ``kafka_broker`` (session): a ``KafkaBroker`` started in a temp dir on free
  ports, or, when ``BOUNCEFLOW_TEST_KAFKA=host:port`` is set, an
  ``ExternalKafka`` for that running broker (dev speed-up: ``scripts/kafka.sh
  start`` once, then ``BOUNCEFLOW_TEST_KAFKA=127.0.0.1:9092 pytest``).
  Both have ``.bootstrap``; only a managed one has ``stop()/start()/restart()``
  (check ``.managed``).
- ``topic_prefix`` (function): unique per test, e.g. ``"t3f9a1c2e-"``; prefix
  topic and consumer group names with it so tests never share state.
- ``start_server`` (function): ``await start_server(cls, **kwargs)`` starts
  ``cls(**kwargs)`` (anything with async ``start()``/``stop()``: the MX
  simulator, the webhook sink) and stops it after the test.
- ``create_topics(bootstrap, names, partitions=4)``: async helper (aiokafka admin).
"""
from __future__ import annotations

import os
import secrets

import pytest

from kafka_broker import ExternalKafka, KafkaBroker, create_topics, install_jars

__all__ = ["create_topics"]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    external = os.environ.get("BOUNCEFLOW_TEST_KAFKA")
    if external:
        yield ExternalKafka(external)
        return
    install_jars()
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{secrets.token_hex(4)}-"


@pytest.fixture
async def start_server():
    started = []

    async def start(cls, **kwargs):
        server = cls(**kwargs)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()

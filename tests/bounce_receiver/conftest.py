"""Fixtures for bounce-receiver tests: an in-process receiver on loopback per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bounceflow.verp import VerpCodec, new_message_id
from bounceflow_bounce_receiver.service import BounceReceiverService
from bounceflow_bounce_receiver.settings import ReceiverSettings
from kafka_broker import create_topics
from bounce_receiver.receiver_harness import DOMAINS, SECRETS, committed_records, free_port



@dataclass
class Receiver:
    service: BounceReceiverService
    settings: ReceiverSettings

    @property
    def port(self) -> int:
        return self.service.smtp_port

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.receiver_http_port}"

    @property
    def topic(self) -> str:
        return self.settings.topic("raw-bounce")

    def verp(self, message_id: str | None = None, domain: str = DOMAINS[0], secret: str = SECRETS[0]) -> str:
        return VerpCodec([secret]).address(message_id or new_message_id(), domain)

    async def records(self):
        return await committed_records(self.settings.kafka_bootstrap, self.topic)


@pytest.fixture
async def start_receiver(kafka_broker, topic_prefix):
    """`await start_receiver(**settings)`: a running receiver, stopped after the test."""
    started: list[BounceReceiverService] = []

    async def start(*, clock=None, create_topic: bool = True, **overrides) -> Receiver:
        values = dict(
            kafka_bootstrap=kafka_broker.bootstrap,
            topic_prefix=topic_prefix,
            verp_secrets=SECRETS,
            bounce_domains=DOMAINS,
            receiver_smtp_port=0,
            receiver_http_port=free_port(),
            receiver_hostname="mx.bounces.test",
            receiver_max_message_size=256 * 1024,
            kafka_ack_timeout=5.0,
        )
        values.update(overrides)
        settings = ReceiverSettings(**values)
        if create_topic:
            await create_topics(settings.kafka_bootstrap, [settings.topic("raw-bounce")])
        service = BounceReceiverService(settings, **({"clock": clock} if clock else {}))
        await service.start()
        started.append(service)
        return Receiver(service, settings)

    yield start
    for service in reversed(started):
        await service.stop()

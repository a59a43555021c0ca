"""Fixtures for sender tests: MX simulators, a sender on real Kafka, result readers."""

from __future__ import annotations

import pytest
import trustme

from bounceflow.accounts import Account, AccountsFile, write_accounts
from bounceflow_devkit.mx_simulator import MxSimulator
from bounceflow_sender.service import SenderService
from bounceflow_sender.settings import SenderSettings
from kafka_broker import create_topics
from sender.sender_harness import BOUNCE_DOMAIN, SECRETS, Publisher, ResultReader, free_port

TOPICS = ["outgoing", "outgoing-retry", "delivery-result"]


@pytest.fixture
def start_mx(start_server):
    """`await start_mx(**kwargs)`: a running MxSimulator on loopback, stopped after the test."""

    def start(cls=MxSimulator, **kwargs):
        return start_server(cls, **kwargs)

    return start


@pytest.fixture
def accounts_file(tmp_path):
    path = tmp_path / "accounts.json"
    write_accounts(path, AccountsFile(accounts=[Account(name="demo", bounce_domain=BOUNCE_DOMAIN)]))
    return path


@pytest.fixture
async def kafka(kafka_broker, topic_prefix):
    """Topics created, a publisher for `outgoing` and a reader of `delivery-result`."""
    await create_topics(kafka_broker.bootstrap, [topic_prefix + t for t in TOPICS], partitions=4)
    publisher = Publisher(kafka_broker.bootstrap, topic_prefix)
    results = ResultReader(kafka_broker.bootstrap, topic_prefix)
    await publisher.start()
    await results.start()
    yield publisher, results
    await results.stop()
    await publisher.stop()


@pytest.fixture
def sender_settings(kafka_broker, topic_prefix, accounts_file):
    """`sender_settings(mx_port, **overrides)`: settings pointing every domain at one MX."""

    def make(mx_port: int | None = None, **overrides) -> SenderSettings:
        values = dict(
            kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix, verp_secrets=SECRETS,
            bounce_domains=["bounces.default.test"], accounts_file=str(accounts_file),
            sender_http_port=free_port(), sender_helo_name="sender.test",
            sender_retry_schedule=[0.3], sender_max_age=3600, sender_retry_hold_max=5,
            sender_connect_timeout=5, sender_command_timeout=5, sender_shutdown_grace=5,
            kafka_ack_timeout=10,
        )
        if mx_port is not None:
            values["sender_static_routes"] = {"*": f"127.0.0.1:{mx_port}"}
        values.update(overrides)
        return SenderSettings(**values)

    return make


@pytest.fixture
async def start_sender():
    """`await start_sender(settings)`: a running SenderService, stopped after the test."""
    running = []

    async def start(settings: SenderSettings) -> SenderService:
        service = SenderService(settings)
        await service.start()
        running.append(service)
        return service

    yield start
    for service in running:
        if not getattr(service, "stopped", False):
            await service.stop()


@pytest.fixture(scope="session")
def test_ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def mx_tls(test_ca):
    """A server context for an MX named 127.0.0.1 / mx.sim.test, and the CA file that verifies it."""
    cert = test_ca.issue_cert("127.0.0.1", "mx.sim.test")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context

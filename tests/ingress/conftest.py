"""Fixtures for ingress tests: accounts, and an in-process ingress on loopback per test."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from bounceflow.accounts import Account, AccountsFile, hash_api_key, hash_password, write_accounts
from bounceflow_ingress.service import IngressService
from bounceflow_ingress.settings import IngressSettings
from ingress.ingress_harness import SmtpLines, committed_outgoing
from kafka_broker import create_topics

HOSTNAME = "ingress.test"


@dataclass
class Login:
    account: str
    username: str
    password: str
    api_key: str


@pytest.fixture(scope="session")
def logins() -> dict[str, Login]:
    """Fresh credentials per run (never in the repo)."""
    return {
        name: Login(name, f"{name}-user", secrets.token_urlsafe(12), "bf_" + secrets.token_urlsafe(18))
        for name in ("acme", "notrack", "restricted")
    }


@pytest.fixture(scope="session")
def accounts_file(tmp_path_factory, logins) -> str:
    def account(name: str, **extra) -> Account:
        login = logins[name]
        return Account(
            name=name,
            smtp_username=login.username,
            smtp_password_hash=hash_password(login.password),
            api_key_hashes=[hash_api_key(login.api_key)],
            **extra,
        )

    path = tmp_path_factory.mktemp("accounts") / "accounts.json"
    write_accounts(
        path,
        AccountsFile(
            accounts=[
                account("acme", allowed_sender_domains=["example.com", "example.org", "yourdomain.com"]),
                account("notrack", track_bounces=False),
                account("restricted", allowed_sender_domains=["restricted.example"]),
            ]
        ),
    )
    return str(path)


@dataclass
class Ingress:
    service: IngressService
    settings: IngressSettings

    @property
    def smtp_port(self) -> int:
        return self.service.smtp_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.http_port}"

    async def records(self):
        return await committed_outgoing(self.settings.kafka_bootstrap, self.settings.topic("outgoing"))

    async def smtp(self, login: Login | None = None) -> SmtpLines:
        client = await SmtpLines.connect(self.smtp_port)
        code, _ = await client.cmd("EHLO client.test")
        assert code == 250
        if login is not None:
            await client.login(login.username, login.password)
        return client


@pytest.fixture
def ingress_settings(kafka_broker, topic_prefix, accounts_file):
    """`ingress_settings(**overrides)`: settings for an in-process ingress."""

    def build(**overrides) -> IngressSettings:
        values = dict(
            kafka_bootstrap=kafka_broker.bootstrap,
            topic_prefix=topic_prefix,
            accounts_file=accounts_file,
            ingress_smtp_port=0,
            ingress_http_port=0,
            ingress_hostname=HOSTNAME,
            ingress_auth_plaintext_loopback=True,
            kafka_ack_timeout=10.0,
            ingress_kafka_producers=2,
        )
        values.update(overrides)
        return IngressSettings(**values)

    return build


@pytest.fixture
async def start_ingress(ingress_settings):
    """`await start_ingress(**settings)`: a running ingress, stopped after the test."""
    started: list[IngressService] = []

    async def start(*, create_topic: bool = True, **overrides) -> Ingress:
        settings = ingress_settings(**overrides)
        if create_topic:
            await create_topics(settings.kafka_bootstrap, [settings.topic("outgoing")])
        service = IngressService(settings)
        await service.start()
        started.append(service)
        return Ingress(service, settings)

    yield start
    for service in started:
        await service.stop()


@pytest.fixture
async def ingress(start_ingress) -> Ingress:
    return await start_ingress()

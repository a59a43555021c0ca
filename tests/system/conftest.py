"""The whole system as `make run` starts it, on free ports, for end-to-end tests.

One stack per test module (starting five processes costs seconds); every test
starts its own MX simulator and webhook endpoint on the ports the stack was
configured with, so tests do not see each other's mail.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bounceflow.accounts import Account, AccountsFile, Webhook, hash_api_key, hash_password, new_webhook_secret, write_accounts
from bounceflow.kafka import ensure_topics
from bounceflow.settings import CommonSettings
from bounceflow_devkit.stack import Stack, isolated_env, services_without_simulator

BOUNCE_DOMAIN = "bounces.localhost"


@dataclass
class System:
    stack: Stack
    env: dict[str, str]
    ports: dict[str, int]
    password: str
    api_key: str
    webhook_secret: str
    verp_secret: str
    var_dir: Path

    def read_api(self, path: str, **params) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.ports['notifier_http']}{path}",
            params=params, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=10,
        )

    async def wait_rows(self, path: str, predicate, timeout: float = 60.0, **params) -> list[dict]:
        """Poll a read-API list endpoint until a row matches `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            response = await asyncio.to_thread(self.read_api, path, **params)
            if response.status_code == 200:
                rows = [r for r in response.json()["items"] if predicate(r)]
                if rows:
                    return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching row in {path} after {timeout}s: {response.status_code} {response.text[:500]}")
            await asyncio.sleep(0.25)


@pytest.fixture(scope="module")
def system(kafka_broker, tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("stack")
    password, api_key = secrets.token_urlsafe(12), "bf_" + secrets.token_urlsafe(16)
    webhook_secret, verp_secret = new_webhook_secret(), secrets.token_urlsafe(24)
    prefix = f"sys{secrets.token_hex(3)}-"
    env, ports = isolated_env(var_dir, kafka_broker.bootstrap, prefix, verp_secret, BOUNCE_DOMAIN,
                              sender_retry_schedule="1,2")
    hooks = f"http://127.0.0.1:{ports['webhooks']}"
    write_accounts(var_dir / "accounts.json", AccountsFile(accounts=[Account(
        name="demo", smtp_username="demo", smtp_password_hash=hash_password(password),
        api_key_hashes=[hash_api_key(api_key)], bounce_domain=BOUNCE_DOMAIN,
        bounce_webhook=Webhook(url=f"{hooks}/bounces", secret=webhook_secret),
        failure_webhook=Webhook(url=f"{hooks}/failures", secret=webhook_secret),
    ), Account(
        # Bounce tracking off (an account setting for SMTP, as in the seeds).
        name="plain", smtp_username="plain", smtp_password_hash=hash_password(password),
        bounce_domain=BOUNCE_DOMAIN, track_bounces=False,
    )]))
    settings = CommonSettings(kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=prefix)
    asyncio.run(ensure_topics(settings))
    stack = Stack(var_dir=var_dir, env=env, services=services_without_simulator())
    try:
        stack.start()
    except RuntimeError:
        stack.stop()
        raise
    try:
        yield System(stack, env, ports, password, api_key, webhook_secret, verp_secret, var_dir)
    finally:
        stack.stop()

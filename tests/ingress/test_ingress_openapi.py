"""The committed OpenAPI document matches the app, and a schemathesis run finds no server error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bounceflow_devkit.stack import free_port
from bounceflow_ingress.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "ingress-openapi.json"
MAX_EXAMPLES = 60
RUNNER = Path(__file__).with_name("schemathesis_run.py")  # runs in a process of its own, see there


async def test_committed_openapi_matches_the_app(ingress):
    assert COMMITTED.read_text() == render(ingress.service.app), (
        "schemas/ingress-openapi.json is stale: python -m bounceflow_ingress.openapi --write"
    )


async def test_openapi_is_served(ingress):
    async with httpx.AsyncClient(base_url=ingress.url) as client:
        served = (await client.get("/openapi.json")).json()
    assert served["paths"].keys() == {"/v1/send"}


@pytest.fixture
def ingress_process(ingress_settings):
    """The ingress as its own process, as users run it: `python -m bounceflow_ingress`; yields its URL."""
    settings = ingress_settings()
    http_port = free_port()
    env = {**os.environ,
           "BOUNCEFLOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "BOUNCEFLOW_TOPIC_PREFIX": settings.topic_prefix,
           "BOUNCEFLOW_ACCOUNTS_FILE": settings.accounts_file, "BOUNCEFLOW_INGRESS_HTTP_PORT": str(http_port),
           "BOUNCEFLOW_INGRESS_SMTP_PORT": str(free_port()), "BOUNCEFLOW_INGRESS_HOSTNAME": settings.ingress_hostname,
           "BOUNCEFLOW_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "bounceflow_ingress"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "ingress not healthy within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_schemathesis_finds_no_server_error(ingress_process, logins):
    """Generated bodies (valid and not) against the live service and broker: no 5xx, responses as documented."""
    done = subprocess.run([sys.executable, str(RUNNER), str(COMMITTED), ingress_process, logins["acme"].api_key,
                           str(MAX_EXAMPLES)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seen = {int(status): count for status, count in result["seen"].items()}
    assert result["examples"] > 0, "the documented examples are part of the run"
    assert all(status < 500 for status in seen), seen
    assert seen.get(200, 0) > 0 and seen.get(422, 0) > 0, f"both accepted and refused bodies were tried: {seen}"

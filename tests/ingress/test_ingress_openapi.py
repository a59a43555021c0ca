"""The committed OpenAPI document matches the app, and a schemathesis run finds no server error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from bounceflow_devkit.stack import free_port
from bounceflow_ingress.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "ingress-openapi.json"
MAX_EXAMPLES = 60


def load_operation():
    """`POST /v1/send` from the committed document, with its strategies built."""
    operation = schemathesis.openapi.from_path(str(COMMITTED)).get_all_operations().__next__().ok()
    operation.as_strategy()
    return operation


# Built while the module is collected: schemathesis imports much of itself
# lazily, and pytest assertion-rewrites its modules (it is a pytest plugin)
# when they are first imported. Mid-test, beside the threads of earlier
# tests, that ast.parse hits CPython 3.11's gh-106905 ("AST constructor
# recursion depth mismatch"); at collection nothing else runs.
OPERATION = load_operation()


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
    """The ingress as its own process, as users run it: `python -m bounceflow_ingress`.

    Not in-process on purpose: schemathesis then runs in this process's main
    thread with no server threads beside it. (CPython 3.11's gh-106905: ast
    building in one thread while another runs Python code can fail with a
    spurious "AST constructor recursion depth mismatch".)
    """
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
    operation = OPERATION
    headers = {"Authorization": f"Bearer {logins['acme'].api_key}"}
    seen: dict[int, int] = {}

    examples = [strategy for strategy in operation.get_strategies_from_examples()]
    assert examples, "the documented examples are part of the run"

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(*examples, operation.as_strategy()))
    def run(case):
        response = case.call(base_url=ingress_process, headers=headers, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(
            response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )

    run()
    assert all(status < 500 for status in seen), seen
    assert seen.get(200, 0) > 0 and seen.get(422, 0) > 0, f"both accepted and refused bodies were tried: {seen}"

"""The committed OpenAPI document matches the app, and a schemathesis run finds no server error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from bounceflow_ingress.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "ingress-openapi.json"
MAX_EXAMPLES = 60


async def test_committed_openapi_matches_the_app(ingress):
    assert COMMITTED.read_text() == render(ingress.service.app), (
        "schemas/ingress-openapi.json is stale: python -m bounceflow_ingress.openapi --write"
    )


async def test_openapi_is_served(ingress):
    import httpx

    async with httpx.AsyncClient(base_url=ingress.url) as client:
        served = (await client.get("/openapi.json")).json()
    assert served["paths"].keys() == {"/v1/send"}


async def test_schemathesis_finds_no_server_error(ingress, logins):
    """Generated bodies (valid and not) against the live service and broker: no 5xx, responses as documented."""
    schema = schemathesis.openapi.from_path(str(COMMITTED))
    operation = schema.get_all_operations().__next__().ok()
    headers = {"Authorization": f"Bearer {logins['acme'].api_key}"}
    seen: dict[int, int] = {}

    examples = [strategy for strategy in operation.get_strategies_from_examples()]
    assert examples, "the documented examples are part of the run"

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(*examples, operation.as_strategy()))
    def run(case):
        response = case.call(base_url=ingress.url, headers=headers, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(
            response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )

    await asyncio.to_thread(run)
    assert all(status < 500 for status in seen), seen
    assert seen.get(200, 0) > 0 and seen.get(422, 0) > 0, f"both accepted and refused bodies were tried: {seen}"

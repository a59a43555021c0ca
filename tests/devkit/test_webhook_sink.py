"""The customer's webhook endpoint of the devkit: what it records and answers."""

from __future__ import annotations

import httpx
import pytest

from bounceflow_devkit.webhook_sink import WebhookSink


@pytest.fixture
async def sink():
    sink = WebhookSink(fail_first=1, fail_status=503)
    await sink.start()
    yield sink
    await sink.stop()


async def test_records_posts_and_fails_the_first_as_asked(sink: WebhookSink) -> None:
    async with httpx.AsyncClient() as client:
        first = await client.post(sink.url("bounces"), content=b'{"a": 1}', headers={"Webhook-Id": "msg_1"})
        second = await client.post(sink.url("bounces"), content=b"x" * 100_000,
                                   headers=[("X-Twice", "one"), ("X-Twice", "two")])
        refused = await client.get(sink.url("bounces"))
    assert (first.status_code, second.status_code, refused.status_code) == (503, 204, 405)
    assert second.content == b""
    [failed] = sink.failed_calls
    assert (failed.path, failed.body, failed.headers["webhook-id"]) == ("/bounces", b'{"a": 1}', "msg_1")
    [call] = await sink.wait_for(1, timeout=5, path="/bounces")
    assert call.body == b"x" * 100_000
    assert call.headers["x-twice"] == "one"  # the first of repeated headers, as dict(request.headers) gave
    assert call.headers["content-length"] == "100000"

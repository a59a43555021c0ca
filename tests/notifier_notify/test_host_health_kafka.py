"""Spill by host health, on the real broker: a healthy endpoint gets a burst on the first try;
a failing, dead or slow one is spilled to `notification-retry` and never holds up another host."""
from __future__ import annotations

import asyncio
import functools

import pytest

from bounceflow_devkit.webhook_sink import WebhookSink

from notifier_notify.notify_harness import produce, retries, save_accounts, settings_for, started, wait_settled
from notifier_notify.notify_records import account, classified


@pytest.fixture
def sinks(start_server):
    """`await sinks(**kwargs)`: a running WebhookSink, stopped after the test."""
    return functools.partial(start_server, WebhookSink)


async def _a_at_server_b_at_sink(tmp_path, handler, sinks):
    """Account A's webhook on a bare asyncio server answering with `handler`, B's on a sink."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    up = await sinks()
    save_accounts(tmp_path / "accounts.json",
                  account("a", bounce_url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"),
                  account("b", bounce_url=up.url("b")))
    return server, up


def _bounces(name: str, count: int) -> list:
    # One message id: one partition, records in the order given (A's ahead of B's).
    return [classified("autoreply", account_name=name, envelope_from="", message_id="same-key") for _ in range(count)]


async def test_a_burst_beyond_the_backlog_reaches_a_healthy_endpoint_on_the_first_try(
        kafka_broker, topic_prefix, tmp_path, sinks):
    sink = await sinks()
    save_accounts(tmp_path / "accounts.json", account(bounce_url=sink.url("b")))
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            notifier_host_concurrency=2, notifier_host_backlog=5, notifier_max_in_flight=50)
    bounces = _bounces("acme", 300)  # 60 times the backlog, 6 times what the dispatcher holds
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", bounces)
        await wait_settled(settings, "classified-bounce", len(bounces), timeout=60)
    finally:
        await dispatcher.stop()
    assert sink.failed_calls == [] and len(sink.calls) == len(bounces)
    assert {c.headers["webhook-id"] for c in sink.calls} == {f"{b.event_id}:bounce-webhook" for b in bounces}
    assert await retries(settings) == []


async def test_a_failing_endpoint_spills_beyond_the_backlog_while_another_is_served(
        kafka_broker, topic_prefix, tmp_path, sinks):
    down = await sinks(fail_first=10**6, fail_status=503)
    up = await sinks()
    save_accounts(tmp_path / "accounts.json", account("a", bounce_url=down.url("a")), account("b", bounce_url=up.url("b")))
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            notifier_host_concurrency=2, notifier_host_backlog=5,
                            notification_retry_schedule=[3600])  # no second pass during the test
    a_bounces, b_bounces = _bounces("a", 100), _bounces("b", 10)
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", a_bounces + b_bounces)
        await up.wait_for(len(b_bounces), timeout=30)
        await wait_settled(settings, "classified-bounce", len(a_bounces) + len(b_bounces))
    finally:
        await dispatcher.stop()
    pending = await retries(settings)
    assert sorted(p.event_id for p in pending) == sorted(f"{b.event_id}:bounce-webhook" for b in a_bounces)
    spilled = [p for p in pending if "is failing" in (p.last_error or "")]
    tried = [p for p in pending if p.last_error == "HTTP 503"]
    assert len(tried) == len(down.failed_calls) and len(spilled) == len(a_bounces) - len(tried)
    assert len(spilled) > 0 and up.failed_calls == []


async def test_a_dead_endpoint_holds_the_dispatcher_only_until_its_first_attempts_time_out(
        kafka_broker, topic_prefix, tmp_path, sinks):
    release = asyncio.Event()

    async def never_answer(reader, writer):
        await release.wait()
        writer.close()

    dead, up = await _a_at_server_b_at_sink(tmp_path, never_answer, sinks)
    # A never-seen host counts as healthy, so A's records fill every slot until its first timeouts.
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            webhook_timeout=0.5, notifier_host_concurrency=2, notifier_host_backlog=3,
                            notifier_max_in_flight=10, notification_retry_schedule=[3600])
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", _bounces("a", 40) + _bounces("b", 5))
        await up.wait_for(5, timeout=30)
    finally:
        release.set()
        await dispatcher.stop()
        dead.close()


async def test_a_slow_but_answering_endpoint_does_not_starve_another(kafka_broker, topic_prefix, tmp_path, sinks):
    release = asyncio.Event()
    answered = 0

    async def answer_when_released(reader, writer):
        # HTTP/1.1 keep-alive: read one request, answer 204 once released, repeat.
        nonlocal answered
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                await release.wait()
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    slow, up = await _a_at_server_b_at_sink(tmp_path, answer_when_released, sinks)
    # Attempts never time out here: only the wait in line bounds how long A keeps the slots.
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            webhook_timeout=600, notifier_host_concurrency=2, notifier_host_backlog=3,
                            notifier_host_queue_wait=0.3, notifier_max_in_flight=10,
                            notification_retry_schedule=[3600])
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", _bounces("a", 40) + _bounces("b", 5))
        await up.wait_for(5, timeout=30)
        assert answered == 0  # B was served while A's first calls were still unanswered
        release.set()
        await wait_settled(settings, "classified-bounce", 45)
    finally:
        release.set()
        await dispatcher.stop()
        slow.close()
    waited = [p for p in await retries(settings) if "in line" in (p.last_error or "")]
    assert waited and answered + len(await retries(settings)) == 40

"""The dispatcher on the real broker: seed examples, signing, retries, dead letters, replay, SSRF."""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
import urllib.parse

import pytest
from standardwebhooks import Webhook as ReferenceWebhook

from bounceflow_devkit.mailbox import MailSink
from bounceflow_devkit.webhook_sink import WebhookSink
from bounceflow_notifier.replay import ReplayFilter, replay

from notifier_notify.notify_harness import (
    dead_letters, produce, save_accounts, settings_for, started, until, wait_settled,
)
from notifier_notify.notify_records import SEED_EXAMPLES, account, classified, refusal

FORWARDED_CATEGORIES = ["dsn-failure", "dsn-delay", "dsn-success", "autoreply", "nonstandard-bounce"]
EXPECTED = {  # seed example -> categories forwarded to bounce@yourdomain.com
    "notify-never": {"autoreply", "nonstandard-bounce"},
    "no-envelope": set(),
    "notify-failure": {"dsn-failure", "autoreply", "nonstandard-bounce"},
    "dsn-object": {"dsn-failure", "autoreply", "nonstandard-bounce"},
}


@pytest.fixture
async def webhook_sink():
    sink = WebhookSink(port=0)
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def mail_sink():
    sink = MailSink(port=0)
    await sink.start()
    yield sink
    await sink.stop()


def _secret(acct, kind="bounce_webhook") -> str:
    return getattr(acct, kind).secret.get_secret_value()


async def test_seed_examples_forward_and_notify(kafka_broker, topic_prefix, tmp_path, webhook_sink, mail_sink):
    acct = account(bounce_url=webhook_sink.url("bounce"), failure_url=webhook_sink.url("failure"))
    save_accounts(tmp_path / "accounts.json", acct)
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            notifier_forward_routes={"*": f"127.0.0.1:{mail_sink.port}"})
    bounces = {(example, category): classified(category, **SEED_EXAMPLES[example])
               for example in EXPECTED for category in FORWARDED_CATEGORIES}
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", bounces.values())
        await wait_settled(settings, "classified-bounce", len(bounces))
    finally:
        await dispatcher.stop()

    # Every bounce reached the bounce feedback loop, DSN failures the failure loop too, signed.
    bounce_calls = [c for c in webhook_sink.calls if c.path == "/bounce"]
    failure_calls = [c for c in webhook_sink.calls if c.path == "/failure"]
    assert len(bounce_calls) == len(bounces)
    assert len(failure_calls) == len(EXPECTED)
    for call in bounce_calls:
        payload = ReferenceWebhook(_secret(acct)).verify(call.body, call.headers)
        assert call.headers["webhook-id"] == f"{payload['event_id']}:bounce-webhook"
    assert {json.loads(c.body)["source"] for c in failure_calls} == {"dsn"}

    # Exactly the expected forwards, each with MAIL FROM:<> to the customer's envelope.
    by_event = {}
    for mail in mail_sink.received:
        message = email.message_from_bytes(mail.data, policy=email.policy.compat32)
        by_event[message["X-Bounceflow-Forwarded"]] = (mail, message)
    expected = {b.event_id: key for key, b in bounces.items() if key[1] in EXPECTED[key[0]]}
    assert set(by_event) == set(expected), "forwarded set differs from the seed rules"
    for event_id, (mail, message) in by_event.items():
        assert mail.mail_from == "<>" and mail.rcpt_tos == ["bounce@yourdomain.com"]
        example, category = expected[event_id]
        if (example, category) == ("dsn-object", "dsn-failure"):
            parts = {p.get_content_type(): p for p in message.get_payload()}
            per_message, per_recipient = parts["message/delivery-status"].get_payload()[:2]
            assert per_message["Original-Envelope-Id"] == "unique-identifier"
            assert per_recipient["Original-Recipient"] == "rfc822;info@example.com"
            assert "text/rfc822-headers" in parts and b"SECRET BODY LINE" not in mail.data
        elif category == "dsn-failure":
            assert b"SECRET BODY LINE" in mail.data  # RET not HDRS: the full message comes back


async def test_smtp_refusal_calls_the_failure_webhook_form_encoded(kafka_broker, topic_prefix, tmp_path, webhook_sink):
    acct = account(failure_url=webhook_sink.url("failure"), fmt="form")
    save_accounts(tmp_path / "accounts.json", acct)
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json")
    results = [refusal(), refusal(status="deferred", final=False), refusal(status="delivered")]
    dispatcher = await started(settings)
    try:
        await produce(settings, "delivery-result", results)
        await wait_settled(settings, "delivery-result", len(results))
    finally:
        await dispatcher.stop()
    assert len(webhook_sink.calls) == 1
    call = webhook_sink.calls[0]
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    ReferenceWebhook(_secret(acct, "failure_webhook")).verify(call.body, call.headers, json_parse=False)
    fields = dict(urllib.parse.parse_qsl(call.body.decode(), keep_blank_values=True))
    assert fields["id"] == results[0].message_id and fields["source"] == "smtp"
    assert fields["smtp_code"] == "550" and fields["rcptto"] == "nobody@example.com"
    assert call.headers["webhook-id"] == f"{results[0].event_id}:failure-webhook"


async def test_retries_keep_the_webhook_id_until_delivered(kafka_broker, topic_prefix, tmp_path):
    sink = WebhookSink(port=0, fail_first=2, fail_status=503)
    await sink.start()
    acct = account(bounce_url=sink.url("b"))
    save_accounts(tmp_path / "accounts.json", acct)
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json")
    bounce = classified("autoreply", envelope_from="")
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", [bounce])
        calls = await sink.wait_for(1, timeout=30)
    finally:
        await dispatcher.stop()
        await sink.stop()
    ids = {c.headers["webhook-id"] for c in sink.failed_calls + calls}
    assert len(sink.failed_calls) == 2 and ids == {f"{bounce.event_id}:bounce-webhook"}
    ReferenceWebhook(_secret(acct)).verify(calls[0].body, calls[0].headers)
    assert len(calls) == 1


async def test_dead_letter_after_the_last_try_then_replay_delivers(kafka_broker, topic_prefix, tmp_path):
    sink = WebhookSink(port=0, fail_first=1000, fail_status=500)
    await sink.start()
    acct = account(bounce_url=sink.url("b"))
    save_accounts(tmp_path / "accounts.json", acct)
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            notification_retry_schedule=[0.1, 0.1])
    bounce = classified("nonstandard-bounce", envelope_from="")
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", [bounce])
        letters = await until(lambda: dead_letters(settings), 30, "a dead letter")
        assert len(sink.failed_calls) == 3 and sink.calls == []  # 1 + len(schedule) tries
        letter = letters[0]
        assert letter.notification.event_id == f"{bounce.event_id}:bounce-webhook"
        assert "gave up after 3 attempts" in letter.reason and letter.notification.account == "acme"

        sink.fail_first = len(sink.failed_calls)  # the customer fixed their endpoint
        replayed = await replay(settings, ReplayFilter(account="acme"))
        assert [r.notification.event_id for r in replayed] == [letter.notification.event_id]
        calls = await sink.wait_for(1, timeout=30)
        assert calls[0].headers["webhook-id"] == letter.notification.event_id
        assert json.loads(calls[0].body)["event_id"] == bounce.event_id
        assert await replay(settings, ReplayFilter(account="someone-else")) == []
    finally:
        await dispatcher.stop()
        await sink.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://169.254.169.254/latest/meta-data/"])
async def test_private_webhook_urls_are_dead_lettered_never_called(kafka_broker, topic_prefix, tmp_path, webhook_sink, url):
    acct = account(bounce_url=url.format(port=webhook_sink.port))
    save_accounts(tmp_path / "accounts.json", acct)
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            webhook_allow_private=False)
    dispatcher = await started(settings)
    try:
        await produce(settings, "classified-bounce", [classified("autoreply", envelope_from="")])
        letters = await until(lambda: dead_letters(settings), 30, "a dead letter")
    finally:
        await dispatcher.stop()
    assert "webhook_allow_private is off" in letters[0].reason
    assert webhook_sink.calls == [] and webhook_sink.failed_calls == []


async def test_dead_endpoint_of_one_account_does_not_delay_another(kafka_broker, topic_prefix, tmp_path, webhook_sink):
    hanging: list[asyncio.StreamWriter] = []
    release = asyncio.Event()

    async def never_answer(reader, writer):
        hanging.append(writer)
        await release.wait()
        writer.close()

    dead = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    dead_port = dead.sockets[0].getsockname()[1]
    a = account("a", bounce_url=f"http://127.0.0.1:{dead_port}/hook")
    b = account("b", bounce_url=webhook_sink.url("b"))
    save_accounts(tmp_path / "accounts.json", a, b)
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            webhook_timeout=120.0, notifier_host_concurrency=2, notifier_host_backlog=5)
    a_bounces = [classified("autoreply", account_name="a", envelope_from="", message_id="same-key") for _ in range(20)]
    b_bounces = [classified("autoreply", account_name="b", envelope_from="", message_id="same-key") for _ in range(5)]
    dispatcher = await started(settings)
    try:
        # Same key: same partition, A's records first.
        await produce(settings, "classified-bounce", a_bounces + b_bounces)
        await webhook_sink.wait_for(len(b_bounces), timeout=30)
        assert len(hanging) >= 1 and not release.is_set()  # A's calls are still hanging meanwhile
    finally:
        release.set()
        await dispatcher.stop()
        dead.close()


async def test_restart_mid_retry_loses_nothing(kafka_broker, topic_prefix, tmp_path):
    sink = WebhookSink(port=0, fail_first=1, fail_status=503)
    await sink.start()
    save_accounts(tmp_path / "accounts.json", account(bounce_url=sink.url("b")))
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json",
                            notification_retry_schedule=[4])
    bounce = classified("autoreply", envelope_from="")
    first = await started(settings)
    try:
        await produce(settings, "classified-bounce", [bounce])
        await wait_settled(settings, "classified-bounce", 1)  # the retry record is acknowledged
    finally:
        await first.stop()  # the retry it held in memory was never committed
    assert len(sink.failed_calls) == 1 and sink.calls == []
    second = await started(settings)
    try:
        calls = await sink.wait_for(1, timeout=30)
    finally:
        await second.stop()
        await sink.stop()
    assert calls[0].headers["webhook-id"] == sink.failed_calls[0].headers["webhook-id"]


async def test_dispatcher_fetches_more_bytes_than_the_common_setting(kafka_broker, topic_prefix, tmp_path):
    """A bounce carries its mail: the dispatcher's own fetch_min_bytes, the common max wait bounding the delay."""
    save_accounts(tmp_path / "accounts.json", account())
    settings = settings_for(kafka_broker.bootstrap, topic_prefix, tmp_path / "accounts.json")
    assert settings.notifier_dispatch_fetch_min_bytes > settings.kafka_fetch_min_bytes
    dispatcher = await started(settings.model_copy(update={"notifier_dispatch_fetch_min_bytes": 54321}))
    try:
        assert dispatcher._consumer._fetch_min_bytes == 54321
        assert dispatcher._consumer._fetch_max_wait_ms == settings.kafka_fetch_max_wait_ms
    finally:
        await dispatcher.stop()

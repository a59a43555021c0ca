"""The whole NotifierService (broker + chDB): a bounce is logged, sent to the webhook and forwarded."""
from __future__ import annotations

import email
import email.policy

import httpx
from standardwebhooks import Webhook as ReferenceWebhook

from bounceflow_devkit.mailbox import MailSink
from bounceflow_devkit.webhook_sink import WebhookSink
from bounceflow_notifier.service import NotifierService

from notifier.notifier_harness import notifier_settings, table_count, wait_for
from notifier_notify.notify_harness import produce, save_accounts
from notifier_notify.notify_records import SEED_EXAMPLES, account, classified


async def test_service_logs_notifies_and_forwards(kafka_broker, topic_prefix, tmp_path):
    hooks, mailbox = WebhookSink(port=0), MailSink(port=0)
    await hooks.start()
    await mailbox.start()
    settings = notifier_settings(kafka_broker.bootstrap, topic_prefix, tmp_path, webhook_allow_private=True,
                                 notifier_forward_routes={"*": f"127.0.0.1:{mailbox.port}"})
    acct = account("acme", bounce_url=hooks.url("b"))
    save_accounts(tmp_path / "accounts.json", acct)
    bounce = classified("dsn-failure", **SEED_EXAMPLES["dsn-object"])
    service = NotifierService(settings)
    await service.start()
    try:
        await produce(settings, "classified-bounce", [bounce])
        calls = await hooks.wait_for(1, timeout=30)
        await mailbox.wait_for(lambda: len(mailbox.received) == 1, timeout=30)

        async def logged() -> bool:
            return service.log_writer.migrated and await table_count(service, "bounce_log") == 1
        await wait_for(logged, 30, "bounce_log row")
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"http://127.0.0.1:{settings.notifier_http_port}/health")).json()
        assert health["checks"]["dispatcher"] is True
    finally:
        await service.stop()
        await hooks.stop()
        await mailbox.stop()
    assert ReferenceWebhook(acct.bounce_webhook.secret.get_secret_value()).verify(calls[0].body, calls[0].headers)["id"] \
        == bounce.message_id
    forwarded = email.message_from_bytes(mailbox.received[0].data, policy=email.policy.compat32)
    assert forwarded["X-Bounceflow-Forwarded"] == bounce.event_id

"""Bad input never blocks a partition; retries live in Kafka and survive a restart."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from bounceflow.models import PendingDelivery
from bounceflow_devkit.mx_simulator import MxSimulator
from sender.sender_harness import mime, outgoing


async def test_garbage_on_outgoing_fails_and_does_not_block_the_next_record(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    key = b"same-key"  # same key: same partition, so the good record sits right behind the garbage
    await publisher.raw("outgoing", b"\x00not json at all", key=key)
    await publisher.raw("outgoing", b'{"message_id": "x"}', key=key)
    good = outgoing("accept+1@example.com")
    await publisher.raw("outgoing", good.to_bytes(), key=key)

    delivered = await results.final(good.message_id)
    assert delivered.status == "delivered"
    bad = await results.wait_for(lambda r: [x for x in r.results if x.message_id.startswith("unparseable-")]
                                 if len([x for x in r.results if x.message_id.startswith("unparseable-")]) == 2
                                 else None)
    for result in bad:
        assert (result.status, result.final, result.reason) == ("failed", True, "systemerror")
        assert "unparseable outgoing record (key 'same-key')" in result.reply_text
    assert len({r.event_id for r in bad}) == 2


async def test_invalid_recipient_fails_with_a_clear_reason(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    bad = await publisher.send(outgoing("not an address"))
    no_domain = await publisher.send(outgoing("user@"))

    for message in (bad, no_domain):
        result = await results.final(message.message_id)
        assert (result.status, result.reason, result.attempt) == ("failed", "syntaxerror", 1)
        assert "invalid recipient address" in result.reply_text
    assert mx.received == []


async def test_invalid_envelope_sender_fails_when_untracked(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    message = await publisher.send(outgoing("accept+2@example.com", track=False, envelope_from="bad sender"))

    result = await results.final(message.message_id)
    assert (result.status, result.reason) == ("failed", "syntaxerror") and "envelope sender" in result.reply_text


async def test_broken_base64_fails(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    message = outgoing("accept+3@example.com").model_copy(update={"mime_b64": "!!!not base64"})
    await publisher.send(message)

    result = await results.final(message.message_id)
    assert (result.status, result.reason) == ("failed", "systemerror") and "base64" in result.reply_text


async def test_garbage_on_the_retry_topic_fails_too(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port))
    await publisher.raw("outgoing-retry", b"[1, 2, 3]", key=b"k")

    [result] = await results.wait_for(lambda r: r.results)
    assert result.reason == "systemerror" and "unparseable outgoing-retry record" in result.reply_text


async def test_pending_retry_survives_a_sender_restart(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx(defer_times=1)
    settings = sender_settings(mx.port, sender_retry_schedule=[3])
    first = await start_sender(settings)
    message = await publisher.send(outgoing("defer+4@example.com"))
    deferred = await results.wait_for(lambda r: r.of(message.message_id))
    assert deferred[0].status == "deferred"
    await first.stop()  # the retry is due in 3 s: only the next sender can make it
    assert mx.received == []

    await start_sender(settings)
    final = await results.final(message.message_id)
    assert (final.status, final.attempt) == ("delivered", 2) and len(mx.received) == 1


async def test_a_far_retry_is_requeued_instead_of_holding_its_partition(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx()
    await start_sender(sender_settings(mx.port, sender_retry_hold_max=0.5))
    now = datetime.now(timezone.utc)
    later = outgoing("accept+5@example.com")
    soon = outgoing("accept+6@example.com")
    for message, delay in ((later, 2.0), (soon, 0.0)):  # same key below: same partition, `later` first
        pending = PendingDelivery(message=message, attempt=2, not_before=now + timedelta(seconds=delay),
                                  first_attempt_at=now)
        await publisher.raw("outgoing-retry", pending.to_bytes(), key=b"one-partition")

    done_soon = await results.final(soon.message_id)
    done_later = await results.final(later.message_id)
    assert done_soon.status == done_later.status == "delivered"
    assert done_soon.finished_at < done_later.finished_at  # `soon` was not stuck behind `later`
    assert done_later.started_at >= now + timedelta(seconds=2)


class PipeliningMx(MxSimulator):
    """The MX simulator advertising PIPELINING (aiosmtpd reads pipelined commands line by line)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        hello = self.handler.handle_EHLO

        async def handle_EHLO(server, session, envelope, hostname, responses):
            responses = await hello(server, session, envelope, hostname, responses)
            responses.insert(-1, "250-PIPELINING")
            return responses

        self.handler.handle_EHLO = handle_EHLO


async def test_pipelined_transactions_and_connection_reuse(start_mx, kafka, sender_settings, start_sender):
    publisher, results = kafka
    mx = await start_mx(cls=PipeliningMx)
    await start_sender(sender_settings(mx.port, sender_destination_concurrency=1))
    recipients = ["accept+7@example.com", "refuse-rcpt+8@example.com", "refuse-data+9@example.com",
                  "accept+10@example.com", "accept+11@example.com"]
    messages = [await publisher.send(outgoing(r, data=mime(body=b".dot\r\nbody\r\n"))) for r in recipients]

    statuses = [(await results.final(m.message_id)).status for m in messages]
    assert statuses == ["delivered", "failed", "failed", "delivered", "delivered"]
    # Which mails arrived, not in which order: the messages sit on different partitions.
    assert sorted(m.rcpt_tos[0] for m in mx.received) == sorted(r for r in recipients if r.startswith("accept"))
    assert all(m.data.endswith(b".dot\r\nbody\r\n") for m in mx.received)
    assert len({m.peer for m in mx.received}) == 1  # one connection (limit 1), reused after refusals


async def test_mx_that_refuses_connections_defers(kafka, sender_settings, start_sender):
    from sender.sender_harness import free_port

    publisher, results = kafka
    await start_sender(sender_settings(free_port(), sender_retry_schedule=[0.2], sender_max_age=0.5))
    message = await publisher.send(outgoing("accept+12@example.com"))

    final = await results.final(message.message_id)
    first = results.of(message.message_id)[0]
    assert (first.status, first.reason, first.final) == ("deferred", "networkerror", False)
    assert first.reply_text.startswith("connect to 127.0.0.1")
    assert (final.status, final.reason) == ("failed", "expired") and "connect to 127.0.0.1" in final.reply_text

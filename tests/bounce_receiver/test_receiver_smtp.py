"""The MX over real SMTP sessions on loopback, against the real broker.

Every test reads the raw-bounce topic back with a read_committed consumer up
to its end offsets, so "exactly these records, nothing else" is checked, not
assumed.
"""

from __future__ import annotations

import pytest

from bounceflow.verp import new_message_id
from bounce_receiver.receiver_harness import DOMAINS, SECRETS, SmtpWire, bounce_mime, free_port, send_bounce, stuff


async def test_valid_verp_bounce_is_recorded_keyed_by_its_message_id(start_receiver):
    receiver = await start_receiver()
    message_id = new_message_id()
    rcpt = receiver.verp(message_id)
    body = bounce_mime(message_id)
    reply = await send_bounce(receiver.port, "", [rcpt], body)
    assert reply.code == 250 and reply.text.startswith("2.0.0"), reply
    [(key, record)] = await receiver.records()
    assert key == message_id.encode()
    assert record.message_id == message_id and record.rcpt_to == rcpt and record.source == "smtp"
    assert record.mail_from == "" and record.mime == body
    assert record.remote_ip == "127.0.0.1" and record.helo == "mx.remote.test"


async def test_upper_cased_verp_address_on_a_second_domain_is_accepted(start_receiver):
    receiver = await start_receiver()
    message_id = new_message_id()
    rcpt = receiver.verp(message_id, domain=DOMAINS[1]).upper()
    assert (await send_bounce(receiver.port, "", [rcpt], bounce_mime())).code == 250
    [(key, record)] = await receiver.records()
    assert key == message_id.encode() and record.rcpt_to == rcpt


async def test_rotated_secret_verifies_only_while_configured(start_receiver):
    message_id = new_message_id()
    receiver = await start_receiver()  # SECRETS = [current, previous]
    old = receiver.verp(message_id, secret=SECRETS[1])
    assert (await send_bounce(receiver.port, "", [old], bounce_mime())).code == 250
    assert [r.message_id for _, r in await receiver.records()] == [message_id]

    rotated_out = await start_receiver(verp_secrets=[SECRETS[0]], create_topic=False,
                                       topic_prefix=receiver.settings.topic_prefix + "x-")
    wire = await SmtpWire.connect(rotated_out.port)
    await wire.cmd("EHLO mx.remote.test")
    await wire.cmd("MAIL FROM:<>")
    assert str(await wire.cmd(f"RCPT TO:<{old}>")).startswith("550 5.1.1")
    await wire.quit()


@pytest.mark.parametrize(
    "make_rcpt",
    [
        pytest.param(lambda r: r.verp()[:-len(DOMAINS[0])] + "evil.example", id="other-domain"),
        pytest.param(lambda r: r.verp(secret="attacker-guess"), id="bad-signature"),
        pytest.param(lambda r: f"alice@{DOMAINS[0]}", id="non-verp-local-part"),
        pytest.param(lambda r: f"b.{new_message_id()}@{DOMAINS[0]}", id="verp-without-signature"),
        pytest.param(lambda r: "someone@example.org", id="open-relay-attempt"),
    ],
)
async def test_everything_not_ours_gets_550_5_1_1_at_rcpt(start_receiver, make_rcpt):
    receiver = await start_receiver()
    wire = await SmtpWire.connect(receiver.port)
    assert (await wire.cmd("EHLO mx.remote.test")).code == 250
    assert (await wire.cmd("MAIL FROM:<>")).code == 250
    reply = await wire.cmd(f"RCPT TO:<{make_rcpt(receiver)}>")
    assert reply.code == 550 and reply.text.startswith("5.1.1"), reply
    assert (await wire.cmd("DATA")).code == 503  # nothing accepted, nothing to send
    await wire.quit()
    assert await receiver.records() == []


@pytest.mark.parametrize("mail_from", ["", "ooo-reply@remote.test"], ids=["null-sender", "ordinary-sender"])
async def test_dsn_and_auto_reply_senders_are_both_accepted(start_receiver, mail_from):
    receiver = await start_receiver()
    assert (await send_bounce(receiver.port, mail_from, [receiver.verp()], b"Subject: Out of office\r\n\r\nAway.\r\n")).code == 250
    [(_, record)] = await receiver.records()
    assert record.mail_from == mail_from


async def test_role_addresses_are_recorded_with_key_none(start_receiver):
    receiver = await start_receiver()
    arf = b"Content-Type: multipart/report; report-type=feedback-report\r\n\r\ncomplaint\r\n"
    assert (await send_bounce(receiver.port, "fbl@isp.test", [f"abuse@{DOMAINS[1]}"], arf)).code == 250
    assert (await send_bounce(receiver.port, "", ["Postmaster"], b"Subject: hi\r\n\r\n")).code == 250
    records = await receiver.records()
    assert sorted(r.rcpt_to for _, r in records) == ["Postmaster", f"abuse@{DOMAINS[1]}"]
    assert all(key is None and r.message_id is None for key, r in records)
    assert {r.meta["role"] for _, r in records} == {"abuse", "postmaster"}


async def test_multiple_rcpts_give_one_record_each_in_one_mail(start_receiver):
    receiver = await start_receiver()
    ids = [new_message_id() for _ in range(3)]
    rcpts = [receiver.verp(ids[0]), receiver.verp(ids[1], domain=DOMAINS[1]), receiver.verp(ids[2]), f"postmaster@{DOMAINS[0]}"]
    wire = await SmtpWire.connect(receiver.port)
    await wire.cmd("EHLO mx.remote.test")
    await wire.cmd("MAIL FROM:<>")
    for rcpt in rcpts[:2]:
        assert (await wire.cmd(f"RCPT TO:<{rcpt}>")).code == 250
    assert (await wire.cmd(f"RCPT TO:<alice@{DOMAINS[0]}>")).code == 550  # refused one in the middle
    for rcpt in rcpts[2:] + [rcpts[0].upper()]:  # a repeated recipient is one bounce
        assert (await wire.cmd(f"RCPT TO:<{rcpt}>")).code == 250
    assert (await wire.data(bounce_mime())).code == 250
    await wire.quit()
    records = await receiver.records()
    assert sorted(r.rcpt_to for _, r in records) == sorted(rcpts)
    assert {key for key, _ in records} == {i.encode() for i in ids} | {None}
    assert len({r.event_id for _, r in records}) == 4
    assert len({r.meta["receipt"] for _, r in records}) == 1


async def test_kafka_unavailable_gives_451_and_the_mx_keeps_serving(start_receiver, kafka_broker, topic_prefix):
    receiver = await start_receiver(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_ack_timeout=2.0, create_topic=False)
    for _ in range(2):  # every attempt fails the same way, the server stays up
        reply = await send_bounce(receiver.port, "", [receiver.verp()], bounce_mime())
        assert reply.code == 451 and reply.text.startswith("4.3.0"), reply


async def test_pipelining_is_offered_and_a_pipelined_bounce_gets_its_replies_together(start_receiver):
    receiver = await start_receiver()
    message_id = new_message_id()
    rcpt = receiver.verp(message_id)
    wire = await SmtpWire.connect(receiver.port)
    assert "PIPELINING" in (await wire.cmd("EHLO mx.remote.test")).text.upper().split("\n")
    # MAIL, a refused and an accepted RCPT, DATA in one write (RFC 2920): one write comes back.
    wire.writer.write(f"MAIL FROM:<>\r\nRCPT TO:<alice@{DOMAINS[0]}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
    replies = (await wire.reader.read(65536)).decode().splitlines()
    assert [r[:3] for r in replies] == ["250", "550", "250", "354"]
    body = bounce_mime(message_id)
    wire.writer.write(stuff(body) + b".\r\n")
    assert (await wire.read_reply()).code == 250
    await wire.quit()
    [(key, record)] = await receiver.records()
    assert key == message_id.encode() and record.rcpt_to == rcpt

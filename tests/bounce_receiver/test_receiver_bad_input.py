"""Bad input never crashes the MX or leaves a partial record.

After each bad session a good one follows on the same server; reading the
topic back then shows that the server still serves and that exactly the
expected records exist.
"""

from __future__ import annotations

import pytest

from bounceflow.verp import new_message_id
from bounce_receiver.receiver_harness import SmtpWire, bounce_mime, send_bounce

LIMIT = 64 * 1024


async def follow_up(receiver) -> str:
    """A good session after the bad one; returns its message id."""
    message_id = new_message_id()
    reply = await send_bounce(receiver.port, "", [receiver.verp(message_id)], bounce_mime(message_id))
    assert reply.code == 250, reply
    return message_id


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"Content-Type: multipart/mixed; boundary=\"never-closed\r\n\r\n--never-closed\r\nContent-Type: \r\n\r\n"
                     b"=?utf-8?B?not base64?=\r\n--wrong\r\n", id="malformed-mime"),
        pytest.param(bytes(range(256)).replace(b"\r\n", b"").replace(b"\n", b"\x0b") * 3 + b"\r\n\x00\xff\xfe\x80 garbage\r\n",
                     id="8bit-garbage"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"Subject: long line\r\n\r\n" + b"x" * 5000 + b"\r\n", id="line-over-998"),
        pytest.param(b".leading dot\r\n..two dots\r\n.\r\nnot the end\r\n", id="dot-stuffing"),
    ],
)
async def test_odd_bodies_are_recorded_byte_for_byte(start_receiver, body):
    receiver = await start_receiver(receiver_max_message_size=LIMIT)
    message_id = new_message_id()
    assert (await send_bounce(receiver.port, "", [receiver.verp(message_id)], body)).code == 250
    follow = await follow_up(receiver)
    records = {r.message_id: r for _, r in await receiver.records()}
    assert set(records) == {message_id, follow}
    assert records[message_id].mime == (body if not body or body.endswith(b"\r\n") else body + b"\r\n")


async def test_body_over_the_limit_gets_552_5_3_4_and_no_record(start_receiver):
    receiver = await start_receiver(receiver_max_message_size=LIMIT)
    wire = await SmtpWire.connect(receiver.port)
    body = b"Subject: big\r\n\r\n" + (b"y" * 900 + b"\r\n") * (LIMIT // 900 + 10)
    reply = await wire.send("", [receiver.verp()], body)
    assert reply.code == 552 and reply.text.startswith("5.3.4"), reply
    # The session goes on: the same connection can still deliver a good bounce.
    message_id = new_message_id()
    for line in ("MAIL FROM:<>", f"RCPT TO:<{receiver.verp(message_id)}>"):
        assert (await wire.cmd(line)).code == 250
    assert (await wire.data(bounce_mime())).code == 250
    await wire.quit()
    assert [r.message_id for _, r in await receiver.records()] == [message_id]


async def test_declared_size_over_the_limit_is_refused_at_mail(start_receiver):
    receiver = await start_receiver(receiver_max_message_size=LIMIT)
    wire = await SmtpWire.connect(receiver.port)
    assert f"SIZE {LIMIT}" in (await wire.cmd("EHLO mx.remote.test")).text
    reply = await wire.cmd(f"MAIL FROM:<> SIZE={LIMIT + 1}")
    assert reply.code == 552 and reply.text.startswith("5.3.4"), reply
    await wire.quit()


async def test_client_hanging_up_mid_data_leaves_no_record(start_receiver):
    receiver = await start_receiver()
    wire = await SmtpWire.connect(receiver.port)
    for line in ("EHLO mx.remote.test", "MAIL FROM:<>", f"RCPT TO:<{receiver.verp()}>"):
        assert (await wire.cmd(line)).code == 250
    assert (await wire.cmd("DATA")).code == 354
    wire.writer.write(b"Subject: cut off\r\n\r\nhalf a bou")
    await wire.writer.drain()
    await wire.close()
    follow = await follow_up(receiver)
    assert [r.message_id for _, r in await receiver.records()] == [follow]


async def test_protocol_garbage_does_not_kill_the_session(start_receiver):
    receiver = await start_receiver()
    wire = await SmtpWire.connect(receiver.port)
    assert (await wire.cmd(b"\xff\xfe\x00 garbage")).code == 500
    assert (await wire.cmd("RCPT TO:<x@y>")).code == 503  # before HELO/MAIL
    assert (await wire.cmd("EHLO mx.remote.test")).code == 250
    assert (await wire.cmd("MAIL FROM:<>")).code == 250
    assert (await wire.cmd("MAIL FROM:<>")).code == 503  # nested
    assert (await wire.cmd("DATA")).code == 503  # no recipient
    assert (await wire.cmd("RSET")).code == 250
    assert (await wire.cmd("AUTH PLAIN AGFsaWNlAHg=")).code >= 500  # an MX has no AUTH
    await wire.quit()
    follow = await follow_up(receiver)
    assert [r.message_id for _, r in await receiver.records()] == [follow]

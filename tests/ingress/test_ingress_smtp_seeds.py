"""The SMTP transcripts of the seeds, against a real broker: what lands on `outgoing`."""

from __future__ import annotations

import asyncio
import base64

from bounceflow.models import MESSAGE_ID_HEADER, DsnRequest
from ingress.ingress_harness import parsed_mime

TRACKING_DISABLED_MIME = b"From: <info@example.com>\r\nTo: <recipient@example.com>\r\nThis is example content. \r\n"
RETURN_PATH_MIME = (
    b"From: <info@example.com>\r\nTo: <recipient@example.com>\r\nReturn-Path: <bounce@example.com>\r\n"
    b"\r\nThis is example content. \r\n"
)


async def test_tracking_seed_plain_transcript(ingress, logins):
    """smtpeter-bounce-tracking.md, first transcript; acme tracks bounces by default."""
    client = await ingress.smtp(logins["acme"])
    assert await client.cmd("MAIL FROM:<info@example.com>") == (250, "2.1.0 Sender OK")
    assert await client.cmd("RCPT TO:<recipient@example.com>") == (250, "2.1.5 Recipient OK")
    code, text = await client.data(TRACKING_DISABLED_MIME)
    await client.close()
    assert code == 250 and text.startswith("2.0.0 Queued as ")

    [record] = await ingress.records()
    assert text.endswith(record.message_id)
    assert (record.account, record.source) == ("acme", "smtp")
    assert (record.envelope_from, record.recipient) == ("info@example.com", "recipient@example.com")
    assert record.track_bounces is True
    assert record.dsn == DsnRequest()
    mime = base64.b64decode(record.mime_b64)
    assert mime.endswith(TRACKING_DISABLED_MIME), "the customer's bytes are kept"
    headers = parsed_mime(record)
    assert headers[MESSAGE_ID_HEADER] == record.message_id
    assert headers["Message-ID"].endswith("@ingress.test>"), "added because the message had none"


async def test_tracking_seed_return_path_transcript_without_tracking(ingress, logins):
    """Second transcript (note `MAIL FROM: <...>` with a space); the account does not track."""
    client = await ingress.smtp(logins["notrack"])
    assert (await client.cmd("MAIL FROM: <info@example.com>"))[0] == 250
    assert (await client.cmd("RCPT TO: <recipient@example.com>"))[0] == 250
    code, _ = await client.data(RETURN_PATH_MIME)
    await client.close()
    assert code == 250

    [record] = await ingress.records()
    assert record.track_bounces is False
    assert record.envelope_from == "info@example.com"
    assert parsed_mime(record)["Return-Path"] == "<bounce@example.com>", "the sender decides on Return-Path"


async def test_null_sender_seed(ingress, logins):
    """smtpeter-bounce-protocol-nl.md: MAIL FROM:<> is valid and means no bounces reach the customer."""
    client = await ingress.smtp(logins["acme"])
    assert await client.cmd("MAIL FROM:<>") == (250, "2.1.0 Sender OK")
    assert await client.cmd("RCPT TO:<info@smtpeter.com>") == (250, "2.1.5 Recipient OK")
    code, _ = await client.data(b"From: info@example.com\r\nSubject: no bounces\r\n\r\nbody\r\n")
    await client.close()
    assert code == 250

    [record] = await ingress.records()
    assert record.envelope_from == ""
    assert record.recipient == "info@smtpeter.com"


async def test_dsn_parameters_seed(ingress, logins):
    """The DSN example: RET/ENVID on MAIL, NOTIFY/ORCPT on RCPT, stored per recipient, case kept."""
    client = await ingress.smtp(logins["acme"])
    assert (await client.cmd("MAIL FROM:<alice@example.org> RET=HDRS ENVID=yourid"))[0] == 250
    assert (await client.cmd("RCPT TO:<bob@example.com> NOTIFY=SUCCESS ORCPT=rfc822;bob@example.com"))[0] == 250
    code, _ = await client.data(b"From: alice@example.org\r\nMessage-ID: <m1@example.org>\r\n\r\nhi\r\n")
    await client.close()
    assert code == 250

    [record] = await ingress.records()
    assert record.dsn == DsnRequest(notify=["SUCCESS"], ret="HDRS", envid="yourid", orcpt="rfc822;bob@example.com")
    assert parsed_mime(record)["Message-ID"] == "<m1@example.org>", "an existing Message-ID is kept"


async def test_dsn_case_and_xtext_survive(ingress, logins):
    """The aiosmtpd 1.4 trap: ENVID/ORCPT must not be upper-cased; xtext is decoded."""
    client = await ingress.smtp(logins["acme"])
    assert (await client.cmd("MAIL FROM:<Alice@Example.org> ret=full envid=MixedCase+2BId+3D1 SIZE=100"))[0] == 250
    assert (await client.cmd("RCPT TO:<Bob@example.com> notify=failure,delay ORCPT=rfc822;Bob+2Bx@Example.com"))[0] == 250
    assert (await client.cmd("RCPT TO:<carol@example.com>"))[0] == 250
    code, _ = await client.data(b"From: alice@example.org\r\n\r\nhi\r\n")
    await client.close()
    assert code == 250

    records = {r.recipient: r for r in await ingress.records()}
    assert set(records) == {"Bob@example.com", "carol@example.com"}
    bob, carol = records["Bob@example.com"], records["carol@example.com"]
    assert bob.envelope_from == "Alice@Example.org"
    assert bob.dsn == DsnRequest(notify=["FAILURE", "DELAY"], ret="FULL", envid="MixedCase+Id=1",
                                 orcpt="rfc822;Bob+x@Example.com")
    assert carol.dsn == DsnRequest(ret="FULL", envid="MixedCase+Id=1"), "RET/ENVID apply to every recipient"


async def test_one_record_per_recipient_each_with_its_id(ingress, logins):
    client = await ingress.smtp(logins["acme"])
    await client.cmd("MAIL FROM:<info@example.com>")
    for n in range(3):
        assert (await client.cmd(f"RCPT TO:<r{n}@example.net>"))[0] == 250
    code, text = await client.data(b"From: info@example.com\r\nX-Bounceflow-Id: forged\r\n\r\nhi\r\n")
    await client.close()
    assert code == 250

    records = await ingress.records()
    assert sorted(r.recipient for r in records) == ["r0@example.net", "r1@example.net", "r2@example.net"]
    assert len({r.message_id for r in records}) == 3
    assert set(text.removeprefix("2.0.0 Queued as ").split()) == {r.message_id for r in records}
    message_ids = set()
    for record in records:
        mime = parsed_mime(record)
        assert mime.get_all(MESSAGE_ID_HEADER) == [record.message_id], "a forged id header is replaced"
        message_ids.add(mime["Message-ID"])
    assert len(message_ids) == 1, "one message, one Message-ID across the recipients' copies"


async def test_pipelining_and_two_transactions_in_one_session(ingress, logins):
    """PIPELINING: the commands go out together; then a second message on the same connection."""
    client = await ingress.smtp(logins["acme"])
    client.writer.write(b"MAIL FROM:<info@example.com>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\n")
    assert [(await client.reply())[0] for _ in range(3)] == [250, 250, 250]
    assert (await client.data(b"From: info@example.com\r\n\r\none\r\n"))[0] == 250
    assert (await client.cmd("MAIL FROM:<info@example.com>"))[0] == 250
    assert (await client.cmd("RCPT TO:<c@example.net>"))[0] == 250
    assert (await client.data(b"From: info@example.com\r\n\r\ntwo\r\n"))[0] == 250
    await client.close()
    assert sorted(r.recipient for r in await ingress.records()) == ["a@example.net", "b@example.net", "c@example.net"]


async def test_replies_to_a_pipelined_group_come_back_in_one_write(ingress, logins):
    client = await ingress.smtp(logins["acme"])
    client.writer.write(b"MAIL FROM:<info@example.com>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<bad@>\r\nDATA\r\n")
    replies = (await asyncio.wait_for(client.reader.read(65536), 10)).decode().splitlines()
    assert [r[:3] for r in replies] == ["250", "250", "553", "354"]
    client.writer.write(b"From: info@example.com\r\n\r\none\r\n.\r\n")
    assert (await client.reply())[0] == 250
    await client.close()
    assert [r.recipient for r in await ingress.records()] == ["a@example.net"]


async def test_ehlo_advertises_the_extensions(ingress):
    client = await ingress.smtp()
    code, text = await client.cmd("EHLO again.test")
    await client.close()
    assert code == 250
    for extension in ("PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES", "AUTH LOGIN PLAIN"):
        assert extension in text.splitlines(), extension

"""What the SMTP side refuses, and with which answer; nothing refused reaches `outgoing`."""

from __future__ import annotations

import base64
import smtplib
import ssl

import aiosmtplib
import pytest
import trustme

from bounceflow_ingress import smtp_handler as replies


async def test_no_open_relay_without_auth(ingress):
    client = await ingress.smtp()
    assert await client.cmd("MAIL FROM:<info@example.com>") == (530, "5.7.0 Authentication required")
    assert (await client.cmd("RCPT TO:<victim@example.net>"))[0] == 530
    assert (await client.cmd("DATA"))[0] == 530
    await client.close()
    assert await ingress.records() == []


async def test_wrong_password_is_535(ingress, logins):
    client = await ingress.smtp()
    token = base64.b64encode(f"\0{logins['acme'].username}\0wrong".encode()).decode()
    assert await client.cmd(f"AUTH PLAIN {token}") == (535, "5.7.8 Authentication credentials invalid")
    assert (await client.cmd("MAIL FROM:<info@example.com>"))[0] == 530
    await client.close()


async def test_auth_login_with_challenges(ingress, logins):
    login = logins["acme"]
    client = await ingress.smtp()
    assert (await client.cmd("AUTH LOGIN"))[0] == 334
    assert (await client.cmd(base64.b64encode(login.username.encode()).decode()))[0] == 334
    assert (await client.cmd(base64.b64encode(login.password.encode()).decode()))[0] == 235
    assert (await client.cmd("MAIL FROM:<info@example.com>"))[0] == 250
    await client.close()


async def test_failed_logins_are_rate_limited(start_ingress, logins):
    ingress = await start_ingress(ingress_auth_max_failures=3)
    client = await ingress.smtp()
    bad = base64.b64encode(f"\0{logins['acme'].username}\0nope".encode()).decode()
    for _ in range(3):
        assert (await client.cmd(f"AUTH PLAIN {bad}"))[0] == 535
    good = base64.b64encode(f"\0{logins['acme'].username}\0{logins['acme'].password}".encode()).decode()
    assert await client.cmd(f"AUTH PLAIN {good}") == (454, replies.AUTH_RATE_LIMITED[4:])
    await client.close()
    other = await ingress.smtp()
    assert (await other.cmd(f"AUTH PLAIN {good}"))[0] == 454, "the limit is per client address, not per session"
    await other.close()


async def test_sender_domain_not_allowed(ingress, logins):
    client = await ingress.smtp(logins["restricted"])
    code, text = await client.cmd("MAIL FROM:<info@example.com>")
    assert (code, text) == (550, "5.7.1 Sender address info@example.com is not allowed for this login")
    assert (await client.cmd("MAIL FROM:<news@restricted.example>"))[0] == 250
    assert (await client.cmd("RCPT TO:<r@example.net>"))[0] == 250
    code, text = await client.data(b"From: ceo@example.com\r\n\r\nphish\r\n")
    assert (code, text) == (550, "5.7.1 From address ceo@example.com is not allowed for this login")
    await client.close()
    assert await ingress.records() == []


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("MAIL FROM:<a@example.com> RET=PARTIAL", "RET must be FULL or HDRS, not 'PARTIAL'"),
        ("MAIL FROM:<a@example.com> RET=HDRS RET=FULL", "RET given twice"),
        ("MAIL FROM:<a@example.com> ENVID=bad+zz", "ENVID: bad xtext escape at position 4 (expected +XX, upper-case hex)"),
        ("MAIL FROM:<a@example.com> ENVID=" + "x" * 101, "ENVID longer than 100 characters"),
    ],
)
async def test_bad_mail_dsn_values_are_501(ingress, logins, command, reason):
    client = await ingress.smtp(logins["acme"])
    assert await client.cmd(command) == (501, f"5.5.4 {reason}")
    assert (await client.cmd("MAIL FROM:<a@example.com>"))[0] == 250, "the refused MAIL left no state behind"
    await client.close()


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ("NOTIFY=SOMETIMES", "unknown NOTIFY value 'SOMETIMES'; use NEVER, SUCCESS, FAILURE or DELAY"),
        ("NOTIFY=NEVER,FAILURE", "NOTIFY=NEVER cannot be combined with other values"),
        ("NOTIFY=", None),
        ("ORCPT=bob@example.com", "ORCPT must be addr-type;address, e.g. rfc822;bob@example.com"),
        ("ORCPT=rfc822;nobody", "ORCPT rfc822 address 'nobody' has no @"),
    ],
)
async def test_bad_rcpt_dsn_values_are_refused(ingress, logins, params, reason):
    client = await ingress.smtp(logins["acme"])
    assert (await client.cmd("MAIL FROM:<a@example.com>"))[0] == 250
    code, text = await client.cmd(f"RCPT TO:<b@example.net> {params}")
    if reason is None:  # `NOTIFY=` is a syntax error aiosmtpd itself catches
        assert code == 501
    else:
        assert (code, text) == (501, f"5.5.4 {reason}")
    assert (await client.cmd("DATA"))[0] == 503, "the recipient was not added"
    await client.close()


async def test_unknown_parameter_is_555(ingress, logins):
    client = await ingress.smtp(logins["acme"])
    code, text = await client.cmd("MAIL FROM:<a@example.com> FOO=bar")
    assert code == 555 and text.startswith("5.5.4 ")
    await client.close()


async def test_size_over_limit_is_refused_at_mail(start_ingress, logins):
    ingress = await start_ingress(ingress_max_message_size=1000)
    client = await ingress.smtp(logins["acme"])
    code, text = await client.cmd("MAIL FROM:<a@example.com> SIZE=1001")
    assert code == 552 and text.startswith("5.3.4 ")
    assert (await client.cmd("MAIL FROM:<a@example.com> SIZE=1000"))[0] == 250
    assert (await client.cmd("RCPT TO:<b@example.net>"))[0] == 250
    code, text = await client.data(b"From: a@example.com\r\n\r\n" + b"x" * 70 + b"\r\n" * 20 + b"y" * 990 + b"\r\n")
    assert code == 552 and text.startswith("5.3.4 "), "DATA beyond the limit is refused too"
    await client.close()
    assert await ingress.records() == []


async def test_malformed_addresses(ingress, logins):
    client = await ingress.smtp(logins["acme"])
    code, text = await client.cmd("MAIL FROM:<not an address>")
    assert code == 553 and text.startswith("5.1.7 Bad sender address syntax")
    code, text = await client.cmd("MAIL FROM:<info@example.com>")
    assert (await client.cmd("RCPT TO:<postmaster>"))[:1] == (553,)
    code, text = await client.cmd("RCPT TO:<a@b@example.net>")
    assert code == 553 and text.startswith("5.1.3 ")
    await client.close()


async def test_auth_needs_tls_off_loopback_setting(start_ingress, logins):
    ingress = await start_ingress(ingress_auth_plaintext_loopback=False)
    client = await ingress.smtp()
    code, text = await client.cmd("EHLO client.test")
    assert not any(line.startswith("AUTH") for line in text.splitlines()), "AUTH not offered without TLS"
    code, text = await client.cmd("AUTH PLAIN AGEAYg==")
    assert code == 538
    await client.close()


@pytest.fixture(scope="module")
def test_ca():
    return trustme.CA()


@pytest.fixture
def tls_files(test_ca, tmp_path):
    cert = test_ca.issue_cert("ingress.test", "127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


async def test_starttls_then_auth_then_send(start_ingress, logins, test_ca, tls_files):
    """STARTTLS with a certificate from a test CA, verified by the client; AUTH only after it."""
    cert, key = tls_files
    ingress = await start_ingress(ingress_tls_cert=cert, ingress_tls_key=key, ingress_auth_plaintext_loopback=False)
    client_context = ssl.create_default_context()
    test_ca.configure_trust(client_context)
    login = logins["acme"]
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=ingress.smtp_port, start_tls=False, tls_context=client_context)
    await smtp.connect()
    await smtp.ehlo()
    assert smtp.supports_extension("starttls")
    assert not smtp.supports_extension("auth")
    with pytest.raises(aiosmtplib.SMTPException):
        await smtp.login(login.username, login.password)
    await smtp.starttls()
    await smtp.ehlo()
    assert smtp.supports_extension("auth")
    await smtp.login(login.username, login.password)
    errors, _ = await smtp.sendmail(
        "info@example.com", ["tls@example.net"], b"From: info@example.com\r\nSubject: tls\r\n\r\nover TLS\r\n",
        mail_options=["RET=HDRS", "ENVID=tls-1"], rcpt_options=["NOTIFY=FAILURE"],
    )
    await smtp.quit()
    assert errors == {}
    [record] = await ingress.records()
    assert record.recipient == "tls@example.net"
    assert record.dsn.envid == "tls-1" and record.dsn.notify == ["FAILURE"]


async def test_python_smtplib_client(ingress, logins):
    """The stdlib client as customers use it (sendmail with DSN options)."""
    import asyncio

    login = logins["acme"]

    def send():
        with smtplib.SMTP("127.0.0.1", ingress.smtp_port) as client:
            client.login(login.username, login.password)
            return client.sendmail(
                "info@example.com", ["x@example.net", "y@example.net"],
                b"From: info@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
                mail_options=["RET=FULL"], rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
            )

    assert await asyncio.to_thread(send) == {}
    records = await ingress.records()
    assert sorted(r.recipient for r in records) == ["x@example.net", "y@example.net"]
    assert all(r.dsn.notify == ["SUCCESS", "FAILURE"] and r.dsn.ret == "FULL" for r in records)

"""Builders for the classifier stream tests: outgoing records and RFC 3464 bounces."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone

from bounceflow.models import MESSAGE_ID_HEADER, DsnRequest, OutgoingMessage, RawBounce


def new_id() -> str:
    return uuid.uuid4().hex


def outgoing(message_id: str, *, recipient: str = "bob@example.net", account: str = "demo",
             submitted_at: datetime | None = None) -> OutgoingMessage:
    mime = (f"From: alice@example.com\r\nTo: {recipient}\r\nSubject: hello\r\n"
            f"{MESSAGE_ID_HEADER}: {message_id}\r\n\r\nhi\r\n").encode()
    return OutgoingMessage(
        message_id=message_id,
        account=account,
        source="rest",
        submitted_at=submitted_at or datetime.now(timezone.utc),
        envelope_from="alice@example.com",
        recipient=recipient,
        track_bounces=True,
        dsn=DsnRequest(notify=["FAILURE", "DELAY"], ret="HDRS", envid="cust-env-1"),
        mime_b64=base64.b64encode(mime).decode(),
    )


def dsn_mime(message_id: str, *, recipient: str = "bob@example.net", status: str = "5.1.1",
             diagnostic: str = "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown") -> bytes:
    """A plain RFC 3464 failure report whose returned headers carry our id header."""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: b.x@bounces.localhost\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BND"\r\n'
        "\r\n"
        "--BND\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "--BND\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mail.example.net\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--BND\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: alice@example.com\r\n"
        f"To: {recipient}\r\n"
        "Subject: hello\r\n"
        f"{MESSAGE_ID_HEADER}: {message_id}\r\n"
        "\r\n"
        "--BND--\r\n"
    ).encode()


def raw_bounce(mime: bytes, *, message_id: str | None, event_id: str | None = None,
               received_at: datetime | None = None) -> RawBounce:
    return RawBounce(
        event_id=event_id or new_id(),
        message_id=message_id,
        mail_from="",
        rcpt_to=f"b.{message_id or 'none'}.sig@bounces.localhost",
        received_at=received_at or datetime.now(timezone.utc),
        mime_b64=base64.b64encode(mime).decode(),
    )

"""Builders of the mails the internet sends back: DSNs, auto-replies, ARF, plain bounces.

The simulated MX sends these, and classifier tests use them as fixtures next
to the real corpus. Pure functions: original message bytes in, returned
mail bytes (CRLF, as on the wire) out, built with the stdlib `email`
package. The original keeps its headers wherever the real thing returns it,
so our X-Bounceflow-Id header (bounceflow.models.MESSAGE_ID_HEADER) travels
back.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage, Message, MIMEPart
from email.utils import format_datetime, make_msgid

_POLICY = email.policy.SMTP  # CRLF line ends, as on the wire

# Action (RFC 3464 §2.3.3) -> (subject, human-readable text of the report).
_DSN_TEXT = {
    "failed": (
        "Undelivered Mail Returned to Sender",
        "This is the mail system at host {mta}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "<{recipient}>: host {remote} said: {diagnostic}\n",
    ),
    "delayed": (
        "Delayed Mail (still being retried)",
        "This is the mail system at host {mta}.\n\n"
        "####################################################################\n"
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
        "####################################################################\n\n"
        "Your message could not be delivered for some time.\n"
        "It will be retried until it is 5 days old.\n\n"
        "<{recipient}>: host {remote} said: {diagnostic}\n",
    ),
    "delivered": (
        "Successful Mail Delivery Report",
        "This is the mail system at host {mta}.\n\n"
        "Your message was successfully delivered to the destination(s)\n"
        "listed below.\n\n"
        "<{recipient}>: delivery via {remote}: {diagnostic}\n",
    ),
}

# Plain-text bounce styles that are not RFC 3464 reports: (from local part,
# subject, text before the copy of the message).
_NONSTANDARD_STYLES = {
    "qmail": (
        "MAILER-DAEMON",
        "failure notice",
        "Hi. This is the qmail-send program at {mta}.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<{recipient}>:\n"
        "{remote} does not like recipient.\n"
        "Remote host said: {diagnostic}\n"
        "Giving up on {remote}.\n\n"
        "--- Below this line is a copy of the message.\n\n",
    ),
    "exim": (
        "Mailer-Daemon",
        "Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  {recipient}\n"
        "    SMTP error from remote mail server after RCPT TO:<{recipient}>:\n"
        "    host {remote}: {diagnostic}\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n",
    ),
}


@dataclass(frozen=True)
class _Original:
    """The parts of the original message a returned mail refers to."""

    message: EmailMessage
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> _Original:
        return cls(email.message_from_bytes(raw, policy=_POLICY), raw)

    @property
    def header_block(self) -> str:
        """The original header section as text (for RET=HDRS)."""
        head = self.raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        return head.decode("utf-8", errors="replace") + "\n"

    @property
    def text(self) -> str:
        """The whole original as text (for bounces that paste it inline)."""
        return self.raw.replace(b"\r\n", b"\n").decode("utf-8", errors="replace")

    def sender(self) -> str:
        """Where a returned mail goes when the caller did not say: Return-Path, else From."""
        for name in ("Return-Path", "From"):
            value = self.message.get(name)
            if value:
                return email.utils.parseaddr(str(value))[1] or "postmaster"
        return "postmaster"


def dsn_failure(
    original: bytes,
    recipient: str,
    *,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 Recipient address rejected: User unknown",
    reporting_mta: str = "mx.sim.test",
    **options,
) -> bytes:
    """An RFC 3464 failure report (Action: failed) for `recipient`.

    `options`: see `delivery_status_report` (to, envid, ret, original_recipient,
    remote_mta, arrival_date, date).
    """
    return delivery_status_report(original, recipient, action="failed", status=status,
                                  diagnostic=diagnostic, reporting_mta=reporting_mta, **options)


def dsn_delay(
    original: bytes,
    recipient: str,
    *,
    status: str = "4.4.1",
    diagnostic: str = "451 4.4.1 Connection timed out",
    reporting_mta: str = "mx.sim.test",
    **options,
) -> bytes:
    """An RFC 3464 delay report (Action: delayed, Will-Retry-Until) for `recipient`."""
    return delivery_status_report(original, recipient, action="delayed", status=status,
                                  diagnostic=diagnostic, reporting_mta=reporting_mta, **options)


def dsn_success(
    original: bytes,
    recipient: str,
    *,
    status: str = "2.0.0",
    diagnostic: str = "250 2.0.0 Ok: delivered to mailbox",
    reporting_mta: str = "mx.sim.test",
    **options,
) -> bytes:
    """An RFC 3464 success report (Action: delivered) for `recipient`."""
    return delivery_status_report(original, recipient, action="delivered", status=status,
                                  diagnostic=diagnostic, reporting_mta=reporting_mta, **options)


def delivery_status_report(
    original: bytes,
    recipient: str,
    *,
    action: str,
    status: str,
    diagnostic: str,
    reporting_mta: str,
    to: str | None = None,
    envid: str | None = None,
    ret: str = "FULL",
    original_recipient: str | None = None,
    remote_mta: str | None = None,
    arrival_date: datetime | None = None,
    date: datetime | None = None,
) -> bytes:
    """A multipart/report; report-type=delivery-status mail (RFC 3464).

    Parts: human-readable text, message/delivery-status, and the returned
    message: the full message (message/rfc822), or only its headers
    (text/rfc822-headers) when `ret` is HDRS. `to` defaults to the original's
    Return-Path/From; `original_recipient` is the ORCPT value (`rfc822;addr`
    or a bare address).
    """
    orig = _Original.parse(original)
    date = date or datetime.now(timezone.utc)
    remote = remote_mta or reporting_mta
    subject, text = _DSN_TEXT[action]

    message = _envelope_headers(
        f"MAILER-DAEMON@{reporting_mta} (Mail Delivery System)", to or orig.sender(), subject, reporting_mta, date
    )
    message["Content-Type"] = "multipart/report; report-type=delivery-status"

    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    if envid:
        per_message["Original-Envelope-Id"] = envid
    per_message["Arrival-Date"] = format_datetime(arrival_date or date)

    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    if original_recipient:
        per_recipient["Original-Recipient"] = (
            original_recipient if ";" in original_recipient else f"rfc822; {original_recipient}"
        )
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = f"dns; {remote}"
    per_recipient["Diagnostic-Code"] = f"smtp; {diagnostic}"
    per_recipient["Last-Attempt-Date"] = format_datetime(date)
    if action == "delayed":
        per_recipient["Will-Retry-Until"] = format_datetime(date + timedelta(days=5))

    report = MIMEPart(policy=_POLICY)
    report["Content-Type"] = "message/delivery-status"
    report.set_payload([per_message, per_recipient])

    message.set_payload([
        _text_part(text.format(mta=reporting_mta, recipient=recipient, remote=remote, diagnostic=diagnostic),
                   "Notification"),
        report,
        _returned_part(orig, ret),
    ])
    return message.as_bytes(policy=_POLICY)


def autoreply(
    original: bytes,
    recipient: str,
    *,
    reporting_mta: str = "mx.sim.test",
    to: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """An RFC 3834 out-of-office reply from `recipient` (Auto-Submitted: auto-replied).

    Like most real ones it does not quote the original; it refers to it with
    In-Reply-To/References.
    """
    orig = _Original.parse(original)
    subject = str(orig.message.get("Subject", "") or "your message")
    message = _envelope_headers(recipient, to or orig.sender(), f"Out of Office: {subject}", reporting_mta,
                                date or datetime.now(timezone.utc))
    if orig.message.get("Message-ID"):
        message["In-Reply-To"] = str(orig.message["Message-ID"])
        message["References"] = str(orig.message["Message-ID"])
    message.set_content(
        "Hello,\n\n"
        "I am out of the office until next Monday with limited access to e-mail.\n"
        "Your message has not been forwarded. For urgent matters please contact\n"
        "the front desk.\n\n"
        "Kind regards\n"
    )
    return message.as_bytes(policy=_POLICY)


def nonstandard_bounce(
    original: bytes,
    recipient: str,
    *,
    diagnostic: str = "550 5.1.1 Unknown user",
    reporting_mta: str = "mx.sim.test",
    style: str = "qmail",
    to: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """A plain-text MTA bounce that is no RFC 3464 report, the original pasted below.

    `style` is one of `qmail`, `exim`.
    """
    orig = _Original.parse(original)
    local, subject, text = _NONSTANDARD_STYLES[style]
    message = _envelope_headers(f"{local}@{reporting_mta}", to or orig.sender(), subject, reporting_mta,
                                date or datetime.now(timezone.utc))
    body = text.format(mta=reporting_mta, recipient=recipient, remote=reporting_mta, diagnostic=diagnostic) + orig.text
    message.set_content(body, cte="7bit" if body.isascii() else "8bit")
    return message.as_bytes(policy=_POLICY)


def arf_complaint(
    original: bytes,
    recipient: str,
    *,
    reporting_mta: str = "mx.sim.test",
    mail_from: str | None = None,
    to: str | None = None,
    source_ip: str = "192.0.2.1",
    feedback_type: str = "abuse",
    date: datetime | None = None,
) -> bytes:
    """An RFC 5965 abuse report (multipart/report; report-type=feedback-report).

    Comes from `feedback@<reporting_mta>`; `mail_from` is the original
    envelope sender (Original-Mail-From), `recipient` the complaining user.
    """
    orig = _Original.parse(original)
    date = date or datetime.now(timezone.utc)
    message = _envelope_headers(f"Feedback Loop <feedback@{reporting_mta}>", to or orig.sender(),
                                "Abuse report", reporting_mta, date, auto_submitted=False)
    message["Content-Type"] = "multipart/report; report-type=feedback-report"

    fields = Message()
    fields["Feedback-Type"] = feedback_type
    fields["User-Agent"] = "bounceflow-devkit-fbl/1.0"
    fields["Version"] = "1"
    fields["Original-Mail-From"] = f"<{mail_from or orig.sender()}>"
    fields["Original-Rcpt-To"] = f"<{recipient}>"
    fields["Arrival-Date"] = format_datetime(date)
    fields["Reporting-MTA"] = f"dns; {reporting_mta}"
    fields["Source-IP"] = source_ip
    report = MIMEPart(policy=_POLICY)
    report["Content-Type"] = "message/feedback-report"
    report.set_payload([fields])

    message.set_payload([
        _text_part(f"This is an email abuse report for an email message received from IP {source_ip}.\n"
                   f"The user <{recipient}> marked it as spam.\n", "Notification"),
        report,
        _returned_part(orig, "FULL"),
    ])
    return message.as_bytes(policy=_POLICY)


def _envelope_headers(
    sender: str, to: str, subject: str, mta: str, date: datetime, *, auto_submitted: bool = True
) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = make_msgid(domain=mta)
    if auto_submitted:
        message["Auto-Submitted"] = "auto-replied"
    message["MIME-Version"] = "1.0"
    return message


def _text_part(text: str, description: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    part.set_content(text, charset="us-ascii", cte="7bit")
    part["Content-Description"] = description
    return part


def _returned_part(orig: _Original, ret: str) -> MIMEPart:
    """The returned message: whole (message/rfc822) or headers only (RET=HDRS)."""
    part = MIMEPart(policy=_POLICY)
    if ret.upper() == "HDRS":
        block = orig.header_block
        part.set_content(block, subtype="rfc822-headers", cte="7bit" if block.isascii() else "8bit")
        part["Content-Description"] = "Undelivered Message Headers"
    else:
        part.set_content(orig.message, cte="8bit" if not orig.raw.isascii() else "7bit")
        part["Content-Description"] = "Undelivered Message"
    return part

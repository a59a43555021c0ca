"""The aiosmtpd handler of the ingress: who may send, and what happens at DATA.

Hooks only decide and answer; the message is built by `submission` and
written by `publisher`. Relaying needs AUTH (aiosmtpd answers `530 5.7.0`
before any hook when the session is not authenticated), so this is no open
relay. Per-login rules come from the accounts file: the sender domains an
account may use, and its `track_bounces` default (SMTP cannot set it per
message).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from email.utils import getaddresses

from aiosmtpd.smtp import Envelope, Session

from bounceflow.accounts import Account, AccountStore
from bounceflow.kafka import KafkaUnavailable
from bounceflow_ingress import metrics
from bounceflow_ingress.auth_limit import FailureLimiter
from bounceflow_ingress.dsn_params import DsnParamError, MailDsn, combine, parse_mail_params, parse_rcpt_params
from bounceflow_ingress.publisher import Publisher
from bounceflow_ingress.submission import (
    RecipientRequest,
    Submission,
    SubmissionError,
    address_problem,
    build_records,
    header_values,
)

log = logging.getLogger(__name__)

INTERFACE = "smtp"

SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_RATE_LIMITED = "454 4.7.0 Too many failed logins, try again later"
AUTH_ABORTED = "501 5.7.0 Auth aborted"
AUTH_BAD_BASE64 = "501 5.5.2 Cannot decode base64"
AUTH_BAD_PLAIN = "501 5.5.2 Cannot split PLAIN credentials"
DSN_INVALID = "501 5.5.4 {reason}"
BAD_SENDER_SYNTAX = "553 5.1.7 Bad sender address syntax: {reason}"
BAD_RECIPIENT_SYNTAX = "553 5.1.3 Bad recipient address syntax: {reason}"
SENDER_NOT_ALLOWED = "550 5.7.1 Sender address {address} is not allowed for this login"
FROM_NOT_ALLOWED = "550 5.7.1 From address {address} is not allowed for this login"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_LARGE_IN_TOTAL = "552 5.3.4 Message too large for this many recipients; send fewer per message"
KAFKA_UNAVAILABLE = "451 4.3.0 Temporary failure storing the message, try again later"
QUEUED = "250 2.0.0 Queued as {ids}"

USERNAME_CHALLENGE = "Username:"
PASSWORD_CHALLENGE = "Password:"
NULL_SENDER = "<>"
_MAX_IDS_IN_REPLY = 10


class IngressHandler:
    """aiosmtpd hooks (`handle_EHLO`, `handle_AUTH`, `handle_MAIL`, `handle_RCPT`, `handle_DATA`)."""

    def __init__(
        self,
        accounts: AccountStore,
        publisher: Publisher,
        limiter: FailureLimiter,
        hostname: str,
        max_recipients: int,
        max_total_bytes: int,
    ) -> None:
        self._accounts = accounts
        self._publisher = publisher
        self._limiter = limiter
        self._hostname = hostname
        self._max_recipients = max_recipients
        self._max_total_bytes = max_total_bytes

    async def handle_EHLO(self, server, session: Session, envelope: Envelope, hostname: str, responses: list[str]):
        session.host_name = hostname
        extensions = ["250-PIPELINING", "250-DSN", "250-ENHANCEDSTATUSCODES"]
        return [*responses[:-1], *extensions, responses[-1]]

    async def handle_AUTH(self, server, session: Session, envelope: Envelope, args: list[str]):
        """PLAIN and LOGIN, checked off the event loop (scrypt), rate-limited per address."""
        peer = _peer_key(session)
        if self._limiter.blocked(peer):
            metrics.rejected(INTERFACE, "auth_rate_limited")
            return AUTH_RATE_LIMITED
        credentials = await _read_credentials(server, args)
        if isinstance(credentials, str):
            return credentials  # an error reply, or None when aiosmtpd already answered
        if credentials is None:
            return None
        username, password = credentials
        account = await asyncio.to_thread(self._accounts.authenticate_smtp, username, password)
        if account is None:
            self._limiter.failed(peer)
            metrics.rejected(INTERFACE, "auth_failed")
            log.info("smtp auth failed", extra={"peer": peer})
            return AUTH_INVALID
        self._limiter.succeeded(peer)
        session.authenticated = True
        session.auth_data = account
        log.info("smtp auth ok", extra={"peer": peer, "account": account.name})
        return AUTH_OK

    async def handle_MAIL(self, server, session: Session, envelope: Envelope, address: str, options: list[str]):
        account: Account = session.auth_data
        sender = "" if address == NULL_SENDER else address
        if sender and (problem := address_problem(sender)):
            metrics.rejected(INTERFACE, "bad_address")
            return BAD_SENDER_SYNTAX.format(reason=problem)
        try:
            mail_dsn = parse_mail_params(options)
        except DsnParamError as exc:
            metrics.rejected(INTERFACE, "bad_dsn")
            return DSN_INVALID.format(reason=exc)
        if not account.may_send_as(sender):
            metrics.rejected(INTERFACE, "sender_not_allowed")
            return SENDER_NOT_ALLOWED.format(address=sender)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.dsn_mail = mail_dsn
        envelope.recipients = []
        return SENDER_OK

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, options: list[str]):
        if problem := address_problem(address):
            metrics.rejected(INTERFACE, "bad_address")
            return BAD_RECIPIENT_SYNTAX.format(reason=problem)
        try:
            rcpt_dsn = parse_rcpt_params(options)
        except DsnParamError as exc:
            metrics.rejected(INTERFACE, "bad_dsn")
            return DSN_INVALID.format(reason=exc)
        if len(envelope.rcpt_tos) >= self._max_recipients:
            metrics.rejected(INTERFACE, "too_many_recipients")
            return TOO_MANY_RECIPIENTS
        mail_dsn: MailDsn = getattr(envelope, "dsn_mail", MailDsn())
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.recipients.append(RecipientRequest(address=address, dsn=combine(mail_dsn, rcpt_dsn)))
        return RECIPIENT_OK

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        account: Account = session.auth_data
        content: bytes = envelope.original_content
        refusal = self._check_content(account, content, len(envelope.recipients))
        if refusal is not None:
            return refusal
        submission = Submission(
            account=account.name,
            source=INTERFACE,
            envelope_from="" if envelope.mail_from == NULL_SENDER else envelope.mail_from,
            recipients=tuple(envelope.recipients),
            track_bounces=account.track_bounces,
            mime=content,
        )
        try:
            records = build_records(submission, self._hostname)
        except SubmissionError as exc:
            metrics.rejected(INTERFACE, "bad_message")
            return f"554 5.6.0 {exc.message}"
        ids = [r.message_id for r in records]
        started = time.perf_counter()
        try:
            await self._publisher.publish(records)
        except KafkaUnavailable as exc:
            metrics.rejected(INTERFACE, "kafka_unavailable")
            log.warning("not accepted: kafka unavailable", extra={"message_ids": ids, "error": str(exc)})
            return KAFKA_UNAVAILABLE
        metrics.accepted(INTERFACE, len(records), time.perf_counter() - started)
        for record in records:
            log.info("accepted", extra={"message_id": record.message_id, "account": account.name, "source": INTERFACE})
        return QUEUED.format(ids=_ids_text(ids))

    def _check_content(self, account: Account, content: bytes, recipients: int) -> str | None:
        """Refusal reply for the DATA content, or None."""
        if len(content) * recipients > self._max_total_bytes:
            metrics.rejected(INTERFACE, "too_large_in_total")
            return TOO_LARGE_IN_TOTAL
        if not account.allowed_sender_domains:
            return None  # any From is allowed: no need to parse it
        for _, address in getaddresses(header_values(content, "From")):
            if address and not account.may_send_as(address):
                metrics.rejected(INTERFACE, "from_not_allowed")
                return FROM_NOT_ALLOWED.format(address=address)
        return None


def _ids_text(ids: list[str]) -> str:
    if len(ids) <= _MAX_IDS_IN_REPLY:
        return " ".join(ids)
    return " ".join(ids[:_MAX_IDS_IN_REPLY]) + f" (and {len(ids) - _MAX_IDS_IN_REPLY} more)"


def _peer_key(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


async def _read_credentials(server, args: list[str]) -> tuple[str, str] | str | None:
    """(username, password) from AUTH PLAIN/LOGIN, or an error reply (None: already answered)."""
    mechanism = args[0].upper()
    if mechanism == "PLAIN":
        blob = await _initial_or_challenge(server, args, "")
        if not isinstance(blob, bytes):
            return blob
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            return AUTH_BAD_PLAIN
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
    username = await _initial_or_challenge(server, args, USERNAME_CHALLENGE)
    if not isinstance(username, bytes):
        return username
    password = await server.challenge_auth(PASSWORD_CHALLENGE)
    if not isinstance(password, bytes):
        return None  # challenge_auth answered already
    return username.decode("utf-8", "replace"), password.decode("utf-8", "replace")


async def _initial_or_challenge(server, args: list[str], challenge: str) -> bytes | str | None:
    if len(args) > 1:
        try:
            return base64.b64decode(args[1], validate=True)
        except (binascii.Error, ValueError):
            return AUTH_BAD_BASE64
    blob = await server.challenge_auth(challenge)
    return blob if isinstance(blob, bytes) else None


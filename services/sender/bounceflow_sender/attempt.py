"""One record in, the records to publish out: a pipeline of named steps.

`Attempts.outgoing()` and `Attempts.retry()` turn a consumed record into the
`DeliveryResult` for this attempt and, when deferred, the `PendingDelivery`
for the next one. A record that cannot be parsed, or a message that cannot
be sent as it is (invalid recipient or envelope, broken base64), still yields
a failed result with a clear reason: nothing is dropped, nothing blocks.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import ValidationError

from bounceflow.accounts import AccountStore
from bounceflow.models import DeliveryResult, OutgoingMessage, PendingDelivery
from bounceflow.verp import VerpCodec

from bounceflow_sender import envelope
from bounceflow_sender.delivery import Deliverer, Transaction
from bounceflow_sender.metrics import ATTEMPTS, BAD_RECORDS, DELIVERY_SECONDS, REQUEUED
from bounceflow_sender.outcomes import Outcome, local_failure
from bounceflow_sender.retries import Job, RetryPolicy, decide
from bounceflow_sender.settings import SenderSettings
from bounceflow_sender.smtp_client import encode_data

log = logging.getLogger(__name__)

REASON_UNPARSEABLE = "systemerror"
REASON_BAD_ADDRESS = "syntaxerror"


@dataclass(frozen=True)
class Output:
    """A record to publish: topic (unprefixed name), key, value."""

    topic: str
    key: str
    value: bytes


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class Attempts:
    """Builds and runs delivery attempts."""

    def __init__(self, settings: SenderSettings, deliverer: Deliverer, accounts: AccountStore) -> None:
        self._settings = settings
        self._deliverer = deliverer
        self._accounts = accounts
        self._codec = VerpCodec(settings.verp_secret_values())
        self._policy = RetryPolicy(settings.sender_retry_schedule, settings.sender_max_age)

    async def outgoing(self, key: bytes | None, value: bytes, where: str) -> list[Output]:
        """A record of `outgoing`: attempt 1."""
        try:
            message = OutgoingMessage.from_bytes(value)
        except (ValidationError, ValueError, TypeError) as exc:
            return [self.unparseable("outgoing", key, where, exc)]
        return await self.run(Job(message, 1, utcnow()))

    def retry_due_in(self, value: bytes) -> float:
        """Seconds until a retry record is due (0 when due, or unparseable: handled at once)."""
        try:
            pending = PendingDelivery.from_bytes(value)
        except (ValidationError, ValueError, TypeError):
            return 0.0
        return max(0.0, (_aware(pending.not_before) - utcnow()).total_seconds())

    async def retry(self, key: bytes | None, value: bytes, where: str) -> list[Output]:
        """A record of `outgoing-retry`: attempt n when due, else back to the tail of the topic."""
        try:
            pending = PendingDelivery.from_bytes(value)
        except (ValidationError, ValueError, TypeError) as exc:
            return [self.unparseable("outgoing-retry", key, where, exc)]
        if _aware(pending.not_before) > utcnow():
            REQUEUED.inc()
            return [Output("outgoing-retry", pending.message.message_id, value)]
        job = Job(pending.message, pending.attempt, _aware(pending.first_attempt_at))
        return await self.run(job)

    async def run(self, job: Job) -> list[Output]:
        """Attempt delivery, decide what follows, and say what to publish."""
        started, clock = utcnow(), time.perf_counter()
        message = job.message
        mail_from = ""
        mime, outcome = self._refusal(message)
        if outcome is None:
            mail_from, outcome = self._mail_from(message, mime)
        if outcome is None:
            outcome = await self._deliver(message, mime, mail_from)
        finished = utcnow()
        DELIVERY_SECONDS.observe(time.perf_counter() - clock)
        decision = decide(job, outcome, finished, self._policy)
        ATTEMPTS.labels(decision.outcome.status, str(decision.final).lower()).inc()
        result = self._result(job, mail_from, decision.outcome, decision.final, started, finished)
        self._log(result)
        outputs = [Output("delivery-result", message.message_id, result.to_bytes())]
        if decision.retry is not None:
            outputs.append(Output("outgoing-retry", message.message_id, decision.retry.to_bytes()))
        return outputs

    def _refusal(self, message: OutgoingMessage) -> tuple[bytes, Outcome | None]:
        """The decoded MIME (decoded once per attempt), or why the message cannot be sent."""
        if not envelope.is_valid_address(message.recipient):
            return b"", local_failure(REASON_BAD_ADDRESS, f"invalid recipient address {message.recipient!r}")
        try:
            return base64.b64decode(message.mime_b64, validate=True), None
        except (binascii.Error, ValueError):
            return b"", local_failure(REASON_UNPARSEABLE, "mime_b64 is not valid base64")

    def _mail_from(self, message: OutgoingMessage, mime: bytes) -> tuple[str, Outcome | None]:
        account = self._accounts.get(message.account)
        domain = (account.bounce_domain if account else None) or self._settings.bounce_domains[0]
        try:
            mail_from = envelope.mail_from(message, self._codec, domain, mime)
        except ValueError as exc:
            return "", local_failure(REASON_UNPARSEABLE, f"cannot build the VERP address: {exc}")
        if mail_from and not envelope.is_valid_address(mail_from):
            return mail_from, local_failure(REASON_BAD_ADDRESS, f"invalid envelope sender {mail_from!r}")
        return mail_from, None

    async def _deliver(self, message: OutgoingMessage, mime: bytes, mail_from: str) -> Outcome:
        data = encode_data(envelope.rewrite_mime(mime, message.message_id))
        transaction = Transaction(
            message_id=message.message_id,
            recipient=message.recipient,
            mail_from=mail_from,
            data=data,
            dsn=envelope.dsn_parameters(message, next_hop_has_dsn=True),
        )
        try:
            return await self._deliverer.deliver(transaction, envelope.recipient_domain(message.recipient))
        except Exception as exc:  # a bug must not stall the partition: defer, log, retry later
            log.exception("delivery raised; deferring", extra={"message_id": message.message_id})
            return Outcome("deferred", "systemerror", None, None, f"internal error: {type(exc).__name__}: {exc}",
                           "local")

    def _result(self, job, mail_from, outcome: Outcome, final, started, finished) -> DeliveryResult:
        message = job.message
        return DeliveryResult(
            event_id=f"{message.message_id}:{job.attempt}",
            message_id=message.message_id,
            account=message.account,
            recipient=message.recipient,
            envelope_from=message.envelope_from,
            mail_from=mail_from,
            status=outcome.status,
            final=final,
            attempt=job.attempt,
            smtp_code=outcome.smtp_code,
            enhanced_status=outcome.enhanced_status,
            reply_text=outcome.reply_text,
            reason=outcome.reason,
            remote_host=outcome.remote_host,
            remote_ip=outcome.remote_ip,
            started_at=started,
            finished_at=finished,
        )

    def unparseable(self, topic: str, key: bytes | None, where: str, error: Exception) -> Output:
        """A failed result for a record we cannot read; its id names where the record sits."""
        BAD_RECORDS.labels(topic).inc()
        message_id = f"unparseable-{where}"
        shown_key = key.decode("utf-8", "replace") if key is not None else None
        now = utcnow()
        result = DeliveryResult(
            event_id=f"{message_id}:1", message_id=message_id, account="", recipient="",
            envelope_from="", mail_from="", status="failed", final=True, attempt=1,
            reply_text=f"unparseable {topic} record (key {shown_key!r}): {_short(error)}",
            reason=REASON_UNPARSEABLE, started_at=now, finished_at=now,
        )
        log.error("unparseable record", extra={"message_id": message_id, "topic": topic, "key": shown_key})
        ATTEMPTS.labels("failed", "true").inc()
        return Output("delivery-result", message_id, result.to_bytes())

    @staticmethod
    def _log(result: DeliveryResult) -> None:
        level = logging.INFO if result.status != "failed" else logging.WARNING
        if log.isEnabledFor(level):
            log.log(level, result.status, extra={
                "message_id": result.message_id, "attempt": result.attempt, "final": result.final,
                "smtp_code": result.smtp_code, "reason": result.reason, "remote_host": result.remote_host,
                "reply": result.reply_text,
            })


def _short(error: Exception) -> str:
    text = str(error).replace("\n", " ")
    return text[:300]

"""The aiosmtpd handler of the MX: who may send, which RCPTs we take, what DATA becomes.

Hooks decide and answer; the records of a mail are prepared by a pure
function (`raw_bounces`) and then written by the TransactionalWriter. `250` is
answered only after Kafka committed every record of the mail.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import datetime, timezone

from aiosmtpd.smtp import SMTP, Envelope, Session

from bounceflow.kafka import KafkaUnavailable
from bounceflow.models import RawBounce
from bounceflow.verp import new_message_id
from bounceflow_bounce_receiver import metrics, replies
from bounceflow_bounce_receiver.limits import RateLimiter
from bounceflow.kafka_writer import OutRecord, TransactionalWriter
from bounceflow_bounce_receiver.recipients import RecipientDecision, RecipientPolicy

log = logging.getLogger(__name__)


class ReceiverEnvelope(Envelope):
    """An aiosmtpd envelope that also keeps the decision for each accepted RCPT."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions: list[RecipientDecision] = []


def raw_bounces(
    envelope: ReceiverEnvelope, session: Session, received_at: datetime, new_id: Callable[[], str] = new_message_id
) -> list[RawBounce]:
    """One RawBounce per accepted RCPT of a received mail (pure: no I/O)."""
    mail_from = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
    mime_b64 = base64.b64encode(envelope.original_content or b"").decode("ascii")
    receipt = new_id()
    peer = session.peer
    remote_ip = peer[0] if isinstance(peer, tuple) and peer else None
    meta = {"receipt": receipt, "recipients": str(len(envelope.decisions))}
    if session.ssl is not None:
        meta["tls"] = "yes"
    return [
        RawBounce(
            event_id=f"{receipt}.{index}",
            message_id=decision.message_id,
            source="smtp",
            mail_from=mail_from,
            rcpt_to=decision.address,
            remote_ip=remote_ip,
            helo=session.host_name,
            received_at=received_at,
            mime_b64=mime_b64,
            meta=meta | ({"role": decision.role} if decision.role else {}),
        )
        for index, decision in enumerate(envelope.decisions)
    ]


class BounceHandler:
    """aiosmtpd hooks: rate limit at MAIL, recipient policy at RCPT, Kafka at DATA."""

    def __init__(
        self, policy: RecipientPolicy, writer: TransactionalWriter, rate: RateLimiter, max_recipients: int
    ) -> None:
        self.policy = policy
        self.writer = writer
        self.rate = rate
        self.max_recipients = max_recipients

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's EHLO reply plus PIPELINING, and never AUTH: an MX needs none.

        PIPELINING: MTAs that send many bounces (Postfix, Exchange) then send
        MAIL, RCPT and DATA in one packet; the server answers them together
        (`bounceflow.smtp_replies`).
        """
        session.host_name = hostname
        kept = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        kept.insert(-1, "250-PIPELINING")
        return kept

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        """Any sender is fine (`<>` for DSNs, real ones for auto-replies) within the IP's rate."""
        ip = _ip(session)
        if not self.rate.allow(ip):
            metrics.REJECTED.labels("rate_limited").inc()
            log.info("rate limited", extra={"remote_ip": ip})
            return replies.RATE_LIMITED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: ReceiverEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        """550 5.1.1 for anything but a signed VERP address or a role address on our domains."""
        decision = self.policy.decide(address)
        if not decision.accepted:
            metrics.REJECTED.labels(decision.refusal.value).inc()
            log.info("recipient refused", extra={"reason": decision.refusal.value, "remote_ip": _ip(session)})
            return replies.NO_SUCH_USER
        if any(d.address.lower() == decision.address.lower() for d in envelope.decisions):
            return replies.RCPT_OK  # the same recipient twice is one bounce
        if len(envelope.decisions) >= self.max_recipients:
            metrics.REJECTED.labels("too_many_recipients").inc()
            return replies.TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.decisions.append(decision)
        return replies.RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: ReceiverEnvelope) -> str:
        """Write one raw-bounce per accepted RCPT; 250 only once Kafka committed them all."""
        records = raw_bounces(envelope, session, datetime.now(timezone.utc))
        try:
            with metrics.WRITE_SECONDS.time():
                await self.writer.write([OutRecord(r.message_id, r.to_bytes()) for r in records])
        except KafkaUnavailable as exc:
            metrics.REJECTED.labels("kafka_unavailable").inc()
            for record in records:
                log.warning(
                    "bounce not recorded, answered 451",
                    extra={"message_id": record.message_id, "event_id": record.event_id, "error": str(exc)},
                )
            return replies.KAFKA_UNAVAILABLE
        metrics.BYTES.inc(len(envelope.original_content or b""))
        for record in records:
            metrics.ACCEPTED.labels("verp" if record.message_id else "role").inc()
            log.info(
                "bounce recorded",
                extra={
                    "message_id": record.message_id,
                    "event_id": record.event_id,
                    "rcpt_to": record.rcpt_to,
                    "mail_from": record.mail_from,
                    "remote_ip": record.remote_ip,
                },
            )
        return replies.QUEUED.format(count=len(records))

    async def handle_exception(self, error: Exception) -> str:
        """An unexpected error in a hook: log it and ask the client to retry."""
        log.error("smtp session error", exc_info=error)
        return replies.INTERNAL_ERROR


def _ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)

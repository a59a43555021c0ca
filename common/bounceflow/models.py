"""Payloads of every Kafka topic: the contract between the services.

These pydantic models are the source of truth; `schemas/*.json` is generated
from them (`bounceflow schemas --write`) and a test fails when the two drift.
Every record carries `schema_version` so a consumer can refuse what it does
not understand. Raw MIME travels base64-encoded (`*_b64` fields).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# Header we add to every outgoing message so that a bounce whose envelope was
# rewritten (no usable VERP address) can still be linked by its returned copy.
MESSAGE_ID_HEADER = "X-Bounceflow-Id"

NotifyValue = Literal["NEVER", "SUCCESS", "FAILURE", "DELAY"]
Category = Literal[
    "dsn-failure",
    "dsn-delay",
    "dsn-success",
    "autoreply",
    "complaint",
    "nonstandard-bounce",
    "unknown",
]
BounceType = Literal["hard", "soft"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="Version of this record's schema."
    )

    def to_bytes(self) -> bytes:
        """Serialise for the wire (UTF-8 JSON)."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes):
        """Parse a wire value; raises pydantic.ValidationError on bad input."""
        return cls.model_validate_json(data)


class DsnRequest(BaseModel):
    """What the customer asked for with RFC 3461 (SMTP params or REST `dsn`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: list[NotifyValue] | None = Field(
        default=None,
        description="NOTIFY values; null when the customer gave none "
        "(RFC 3461 default: FAILURE, plus DELAY at the MTA's discretion).",
    )
    ret: Literal["FULL", "HDRS"] | None = Field(default=None, description="RET value.")
    envid: str | None = Field(default=None, description="Customer's ENVID (xtext-decoded).")
    orcpt: str | None = Field(
        default=None, description="ORCPT as `addr-type;address`, e.g. `rfc822;bob@example.com`."
    )


class OutgoingMessage(_Record):
    """Topic `outgoing`, key = message_id. One record per recipient."""

    message_id: str = Field(description="Our id for this (message, recipient); also the VERP id.")
    account: str = Field(description="Account that submitted the message.")
    source: Literal["smtp", "rest"] = Field(description="Which ingress interface took it.")
    submitted_at: datetime = Field(description="When the ingress accepted it (UTC).")
    envelope_from: str = Field(
        description="Envelope sender the customer gave; empty string for `<>` / omitted."
    )
    recipient: str = Field(description="Envelope recipient.")
    track_bounces: bool = Field(description="Replace the envelope with our VERP address.")
    dsn: DsnRequest = Field(default_factory=DsnRequest)
    mime_b64: str = Field(description="The message as submitted, base64.")

    @property
    def mime(self) -> bytes:
        return base64.b64decode(self.mime_b64)


class DeliveryResult(_Record):
    """Topic `delivery-result`, key = message_id. One record per attempt."""

    event_id: str = Field(description="Stable id of this attempt: `<message_id>:<attempt>`.")
    message_id: str
    account: str
    recipient: str
    envelope_from: str = Field(description="The customer's envelope sender ('' for <>).")
    mail_from: str = Field(description="MAIL FROM actually used ('' for <>).")
    status: Literal["delivered", "deferred", "failed"]
    final: bool = Field(description="No further attempt will be made for this message.")
    attempt: int = Field(ge=1)
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply_text: str | None = Field(default=None, description="The remote's reply or our error.")
    reason: str | None = Field(
        default=None, description="Sisimai-style reason for failures (e.g. `expired`)."
    )
    remote_host: str | None = None
    remote_ip: str | None = None
    started_at: datetime
    finished_at: datetime


class RawBounce(_Record):
    """Topic `raw-bounce`, key = message_id from the VERP address (null when unknown)."""

    event_id: str = Field(description="Stable id of this received bounce (one per RCPT).")
    message_id: str | None = Field(description="Id from the signed VERP address, if any.")
    source: Literal["smtp", "webhook", "pop3"] = "smtp"
    mail_from: str = Field(description="MAIL FROM of the incoming bounce ('' for <>).")
    rcpt_to: str = Field(description="RCPT TO of the incoming bounce.")
    remote_ip: str | None = None
    helo: str | None = None
    received_at: datetime
    mime_b64: str = Field(description="The bounce as received, base64.")
    meta: dict[str, str] = Field(default_factory=dict, description="Source-specific extras.")

    @property
    def mime(self) -> bytes:
        return base64.b64decode(self.mime_b64)


class RecipientStatus(BaseModel):
    """What a bounce says about one recipient."""

    model_config = ConfigDict(extra="forbid")

    recipient: str | None = None
    original_recipient: str | None = None
    action: str | None = Field(default=None, description="failed | delayed | delivered | …")
    status: str | None = Field(default=None, description="Enhanced status code, e.g. 5.1.1.")
    smtp_code: int | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None
    reason: str | None = Field(default=None, description="Sisimai vocabulary, e.g. userunknown.")
    bounce_type: BounceType | None = None


class Classification(BaseModel):
    """The normalised result of parsing one returned mail."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    is_bounce: bool = Field(description="A failure or delay report.")
    bounce_type: BounceType | None = None
    reason: str | None = None
    status: str | None = None
    smtp_code: int | None = None
    recipient: str | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None
    action: str | None = None
    feedback_type: str | None = Field(default=None, description="ARF Feedback-Type.")
    recipients: list[RecipientStatus] = Field(default_factory=list)
    original_message_id: str | None = Field(
        default=None, description="Message-ID of the returned message."
    )
    linked_message_id: str | None = Field(
        default=None, description=f"Our id from the {MESSAGE_ID_HEADER} header of the returned message."
    )
    original_envelope_id: str | None = Field(default=None, description="Original-Envelope-Id.")
    error: str | None = Field(default=None, description="Why parsing fell short, if it did.")


class ClassifiedBounce(_Record):
    """Topic `classified-bounce`, key = message_id (the raw bounce's event id when unmatched)."""

    event_id: str = Field(description="The raw bounce's event id.")
    message_id: str | None
    matched: bool = Field(description="Linked to a message we sent.")
    account: str | None = None
    recipient: str | None = Field(default=None, description="Recipient of the original message.")
    envelope_from: str | None = Field(
        default=None, description="The customer's original envelope ('' for <>)."
    )
    track_bounces: bool | None = None
    dsn: DsnRequest = Field(default_factory=DsnRequest)
    mail_from: str
    rcpt_to: str
    received_at: datetime
    classified_at: datetime
    mime_b64: str
    classification: Classification


class PendingDelivery(_Record):
    """Topic `outgoing-retry`, key = message_id: a deferred message waiting for its next attempt."""

    message: OutgoingMessage
    attempt: int = Field(ge=2, description="Number of the attempt this record schedules.")
    not_before: datetime = Field(description="Do not try again before this time (UTC).")
    first_attempt_at: datetime
    last_error: str | None = None


NotificationKind = Literal["bounce-webhook", "failure-webhook", "forward"]


class PendingNotification(_Record):
    """Topic `notification-retry`, key = event_id: a webhook call or forward to try again."""

    event_id: str = Field(description="Stable id; also the webhook idempotency key.")
    kind: NotificationKind
    account: str
    target: str = Field(description="Webhook URL or forward address.")
    message_id: str | None = None
    attempt: int = Field(ge=2, description="Number of the attempt this record schedules.")
    not_before: datetime
    first_attempt_at: datetime
    last_error: str | None = None
    payload_b64: str = Field(description="Exactly what is sent: webhook body or MIME to forward.")
    content_type: str | None = Field(default=None, description="Webhook body content type.")
    mail_from: str | None = Field(default=None, description="Forward: MAIL FROM ('' for <>).")


class DeadLetter(_Record):
    """Topic `notification-dead-letter`, key = event_id: gave up after the last try.

    `bounceflow replay-dlq` puts these back on `notification-retry`.
    """

    notification: PendingNotification
    failed_at: datetime
    reason: str


class DeferredBounce(_Record):
    """Topic `raw-bounce-retry`, key = message_id: a bounce whose message was not (yet) in
    the classifier's table of sent messages; the join is tried again until `give_up_at`."""

    bounce: RawBounce
    attempt: int = Field(ge=2, description="Number of the join attempt this record schedules.")
    not_before: datetime = Field(description="Do not try the join again before this time (UTC).")
    first_attempt_at: datetime = Field(description="When the first join attempt missed.")
    give_up_at: datetime = Field(description="After this, publish the bounce unmatched.")


TOPIC_MODELS: dict[str, type[_Record]] = {
    "outgoing": OutgoingMessage,
    "delivery-result": DeliveryResult,
    "raw-bounce": RawBounce,
    "raw-bounce-retry": DeferredBounce,
    "classified-bounce": ClassifiedBounce,
    "outgoing-retry": PendingDelivery,
    "notification-retry": PendingNotification,
    "notification-dead-letter": DeadLetter,
}

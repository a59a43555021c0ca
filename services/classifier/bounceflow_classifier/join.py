"""What to do with one bounce: the classifier's decisions, as pure functions.

Each step returns an explicit outcome the agents carry out:
`Publish` (to classified-bounce), `Rekey` (back to raw-bounce under the
message id found in the returned message) or `Defer` (to raw-bounce-retry,
to try the join again later). No I/O here: the agents look the message up in
the table and pass the result in.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from bounceflow.models import (
    MESSAGE_ID_HEADER,
    Classification,
    ClassifiedBounce,
    DeferredBounce,
    DsnRequest,
    RawBounce,
)

from .parsing import parse_bounce
from .tables import SentMessage, as_utc

REKEY_META = "linked_by"  # meta key on a re-keyed raw bounce: where its id came from


@dataclass(frozen=True)
class JoinPolicy:
    """How long a sent message is joinable, and how a missed join is retried."""

    ttl: timedelta
    retry_interval: timedelta
    retry_timeout: timedelta


@dataclass(frozen=True)
class Publish:
    """Publish to classified-bounce under `key`."""

    key: str
    record: ClassifiedBounce


@dataclass(frozen=True)
class Rekey:
    """Re-publish to raw-bounce under `key` (the partition that holds its message)."""

    key: str
    record: RawBounce


@dataclass(frozen=True)
class Defer:
    """Publish to raw-bounce-retry; the join is tried again after `record.not_before`."""

    key: str
    record: DeferredBounce


Outcome = Publish | Rekey | Defer


def classify(raw: RawBounce) -> Classification:
    """Parse the bounce's MIME; undecodable input gives `unknown` with the error, never raises."""
    try:
        mime = base64.b64decode(raw.mime_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        return Classification(category="unknown", is_bounce=False, error=f"mime_b64 is not base64: {exc}")
    try:
        return parse_bounce(mime)
    except Exception as exc:  # the parser promises not to raise; a bug there must not stop the stream
        return Classification(category="unknown", is_bounce=False, error=f"parser failed: {type(exc).__name__}: {exc}"[:300])


def joinable(sent: SentMessage | None, raw: RawBounce, policy: JoinPolicy) -> bool:
    """The entry exists and had not expired when the bounce was received."""
    return sent is not None and as_utc(raw.received_at) - sent.submitted_at <= policy.ttl


def on_raw_bounce(
    key: str | None,
    raw: RawBounce,
    classification: Classification,
    sent: SentMessage | None,
    now: datetime,
    policy: JoinPolicy,
) -> Outcome:
    """First join attempt of a bounce from raw-bounce (`sent` = table entry for `key`)."""
    if key is None:
        return _without_key(raw, classification, now)
    if joinable(sent, raw, policy):
        return matched(key, raw, classification, sent, now)
    if sent is not None:  # expired: waiting will not bring it back
        return unmatched(key, raw, classification, now)
    return Defer(
        key,
        DeferredBounce(
            bounce=raw,
            attempt=2,
            not_before=now + policy.retry_interval,
            first_attempt_at=now,
            give_up_at=now + policy.retry_timeout,
        ),
    )


def on_deferred(
    key: str,
    deferred: DeferredBounce,
    classification: Classification,
    sent: SentMessage | None,
    now: datetime,
    policy: JoinPolicy,
) -> Outcome:
    """A later join attempt of a deferred bounce (called at or after `not_before`)."""
    raw = deferred.bounce
    if joinable(sent, raw, policy):
        return matched(key, raw, classification, sent, now)
    if sent is not None or now >= as_utc(deferred.give_up_at):
        return unmatched(key, raw, classification, now)
    return Defer(
        key,
        deferred.model_copy(update={"attempt": deferred.attempt + 1, "not_before": now + policy.retry_interval}),
    )


def _without_key(raw: RawBounce, classification: Classification, now: datetime) -> Outcome:
    linked = raw.message_id or classification.linked_message_id
    if linked:
        via = "raw-bounce message_id" if raw.message_id else MESSAGE_ID_HEADER
        return Rekey(linked, raw.model_copy(update={"message_id": linked, "meta": {**raw.meta, REKEY_META: via}}))
    return unmatched(None, raw, classification, now)


def matched(
    message_id: str, raw: RawBounce, classification: Classification, sent: SentMessage, now: datetime
) -> Publish:
    """The bounce linked to the message we sent, with what the notifier needs to forward it."""
    return Publish(
        message_id,
        ClassifiedBounce(
            event_id=raw.event_id,
            message_id=message_id,
            matched=True,
            account=sent.account,
            recipient=sent.recipient,
            envelope_from=sent.envelope_from,
            track_bounces=sent.track_bounces,
            dsn=sent.dsn,
            mail_from=raw.mail_from,
            rcpt_to=raw.rcpt_to,
            received_at=raw.received_at,
            classified_at=now,
            mime_b64=raw.mime_b64,
            classification=classification,
        ),
    )


def unmatched(
    message_id: str | None, raw: RawBounce, classification: Classification, now: datetime
) -> Publish:
    """The bounce without a sent message (unknown, expired or no id): key = its event id."""
    return Publish(
        raw.event_id,
        ClassifiedBounce(
            event_id=raw.event_id,
            message_id=message_id,
            matched=False,
            dsn=DsnRequest(),
            mail_from=raw.mail_from,
            rcpt_to=raw.rcpt_to,
            received_at=raw.received_at,
            classified_at=now,
            mime_b64=raw.mime_b64,
            classification=classification,
        ),
    )


def undecodable_record(
    key: str | None, value: bytes | None, where: str, received_at: datetime, error: str, now: datetime
) -> Publish:
    """A raw-bounce record that is no RawBounce at all: published as `unknown`, never dropped.

    `where` (`topic:partition:offset`) is its stable event id; the record's
    bytes travel in `mime_b64` so nothing is lost.
    """
    raw = RawBounce(
        event_id=where,
        message_id=key,
        mail_from="",
        rcpt_to="",
        received_at=received_at,
        mime_b64=base64.b64encode(value or b"").decode(),
    )
    classification = Classification(category="unknown", is_bounce=False, error=error[:300])
    return unmatched(key, raw, classification, now)

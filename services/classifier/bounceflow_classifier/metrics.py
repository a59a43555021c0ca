"""Prometheus metrics of the classifier stream (served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CLASSIFIED = Counter(
    "bounceflow_classifier_classified_total",
    "Bounces published to classified-bounce, by category and whether they matched a sent message.",
    ["category", "matched"],
)
JOIN_RETRIES = Counter(
    "bounceflow_classifier_join_retries_total",
    "Bounces deferred to raw-bounce-retry because their message was not in the table (yet).",
)
REKEYED = Counter(
    "bounceflow_classifier_rekeyed_total",
    "Bounces without a key re-published to raw-bounce under the id found in the returned message.",
)
UNDECODABLE = Counter(
    "bounceflow_classifier_undecodable_total",
    "Records or MIME that could not be decoded (published as `unknown` with the error).",
    ["what"],
)
OUTGOING_RECORDED = Counter(
    "bounceflow_classifier_outgoing_recorded_total", "Outgoing messages stored in the table."
)
OUTGOING_SKIPPED = Counter(
    "bounceflow_classifier_outgoing_skipped_total",
    "Outgoing records not stored, by reason (invalid, expired).",
    ["reason"],
)
TABLE_EXPIRED = Counter(
    "bounceflow_classifier_table_expired_total", "Table entries deleted by the expiry sweep."
)
TABLE_ENTRIES = Gauge(
    "bounceflow_classifier_table_entries", "Entries in this worker's table partitions at the last sweep."
)

"""Prometheus metrics of the sender (served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ATTEMPTS = Counter(
    "bounceflow_sender_attempts_total", "Delivery attempts by outcome.", ["status", "final"]
)
DELIVERY_SECONDS = Histogram(
    "bounceflow_sender_delivery_seconds", "Time of one delivery attempt (routing to last reply).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
IN_FLIGHT = Gauge("bounceflow_sender_in_flight", "Records being processed right now.", ["topic"])
BAD_RECORDS = Counter(
    "bounceflow_sender_bad_records_total", "Records that could not be parsed (failed results).", ["topic"]
)
REQUEUED = Counter(
    "bounceflow_sender_retry_requeued_total", "Retry records put back at the tail of outgoing-retry."
)

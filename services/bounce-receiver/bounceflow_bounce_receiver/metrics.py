"""Prometheus metrics of the bounce-receiver (served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ACCEPTED = Counter(
    "bounceflow_receiver_accepted_total",
    "Raw bounces written to Kafka (one per accepted RCPT of a mail that got 250).",
    ["kind"],  # verp | role
)
REJECTED = Counter(
    "bounceflow_receiver_rejected_total",
    "Refusals, by reason.",
    # bad_signature | unknown_domain | malformed | too_big | rate_limited |
    # too_many_connections | too_many_recipients | kafka_unavailable
    ["reason"],
)
BYTES = Counter(
    "bounceflow_receiver_bytes_total", "Bytes of accepted mail (once per mail, before base64)."
)
WRITE_SECONDS = Histogram(
    "bounceflow_receiver_kafka_write_seconds",
    "Time from end of DATA until Kafka acknowledged the mail's records.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

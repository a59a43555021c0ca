"""Prometheus metrics of the ingress (served on `/metrics`).

Module-level, like every prometheus_client user: one registry per process.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ACCEPTED = Counter(
    "bounceflow_ingress_accepted_messages",
    "Outgoing records acknowledged by Kafka (one per recipient).",
    ["interface"],
)
SUBMISSIONS = Counter(
    "bounceflow_ingress_accepted_submissions",
    "Submissions (SMTP DATA or REST request) answered with success.",
    ["interface"],
)
REJECTED = Counter(
    "bounceflow_ingress_rejected",
    "Refused commands or requests, by reason.",
    ["interface", "reason"],
)
PUBLISH_LATENCY = Histogram(
    "bounceflow_ingress_publish_seconds",
    "From a complete submission to Kafka's acknowledgement of all its records.",
    ["interface"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def rejected(interface: str, reason: str) -> None:
    """Count one refusal."""
    REJECTED.labels(interface=interface, reason=reason).inc()

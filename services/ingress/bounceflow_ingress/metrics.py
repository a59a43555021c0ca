"""Prometheus metrics of the ingress (served on `/metrics`).

Module-level, like every prometheus_client user: one registry per process.
"""

from __future__ import annotations

import functools

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


def accepted(interface: str, records: int, publish_seconds: float) -> None:
    """Count one accepted submission of `records` records and its publish latency."""
    latency, accepted_records, submissions = _accepted_children(interface)
    latency.observe(publish_seconds)
    accepted_records.inc(records)
    submissions.inc()


@functools.lru_cache(maxsize=None)
def _accepted_children(interface: str) -> tuple:
    # `labels()` hashes and looks up the label values on every call; these run per message.
    return (PUBLISH_LATENCY.labels(interface=interface), ACCEPTED.labels(interface=interface),
            SUBMISSIONS.labels(interface=interface))

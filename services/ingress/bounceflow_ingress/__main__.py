"""`python -m bounceflow_ingress`: run the ingress until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import sys

from bounceflow.kafka import ensure_topics
from bounceflow import lifecycle
from bounceflow.lifecycle import run_until_signal
from bounceflow.logs import configure_logging
from bounceflow_ingress.service import IngressService
from bounceflow_ingress.settings import IngressSettings

log = logging.getLogger("bounceflow_ingress")

TOPIC_ATTEMPTS = 30


async def _ensure_outgoing(settings: IngressSettings) -> None:
    """Create `outgoing` if missing; Kafka may still be starting, so try for a while."""
    for attempt in range(1, TOPIC_ATTEMPTS + 1):
        try:
            await ensure_topics(settings, ["outgoing"])
            return
        except Exception as exc:
            if attempt == TOPIC_ATTEMPTS:
                raise
            log.warning("kafka not ready, retrying", extra={"attempt": attempt, "error": str(exc)})
            await asyncio.sleep(1)


async def run(settings: IngressSettings) -> None:
    await _ensure_outgoing(settings)
    await run_until_signal(IngressService(settings))


def main() -> int:
    settings = IngressSettings()
    configure_logging(settings.log_level, service="ingress")
    lifecycle.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())

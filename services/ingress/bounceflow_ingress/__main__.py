"""`python -m bounceflow_ingress`: run the ingress until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bounceflow.kafka import ensure_topics
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
    service = IngressService(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    await service.start()
    # After start: uvicorn's serve() swaps in its own SIGTERM/SIGINT handlers
    # (and re-raises what it caught when it ends); ours must win.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await service.stop()


def main() -> int:
    settings = IngressSettings()
    configure_logging(settings.log_level, service="ingress")
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())

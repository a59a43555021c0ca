"""`python -m bounceflow_notifier`: run the notifier until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

from bounceflow.logs import configure_logging
from bounceflow_notifier.service import NotifierService
from bounceflow_notifier.settings import NotifierSettings


async def run(settings: NotifierSettings) -> None:
    """Start the service, wait for a stop signal, stop it cleanly."""
    service = NotifierService(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()


def main() -> None:
    settings = NotifierSettings()
    configure_logging(settings.log_level, service="notifier")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

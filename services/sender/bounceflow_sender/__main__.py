"""`python -m bounceflow_sender`: run the sender until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

from bounceflow.logs import configure_logging

from bounceflow_sender.service import SenderService
from bounceflow_sender.settings import SenderSettings


async def main() -> None:
    settings = SenderSettings()
    configure_logging(settings.log_level, service="sender")
    service = SenderService(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""`python -m bounceflow_bounce_receiver`: run the MX until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

from bounceflow.logs import configure_logging
from bounceflow_bounce_receiver.service import BounceReceiverService
from bounceflow_bounce_receiver.settings import ReceiverSettings


async def _run(settings: ReceiverSettings) -> None:
    service = BounceReceiverService(settings)
    stop = asyncio.Event()
    await service.start()
    # After start: uvicorn (the HTTP endpoints) installs its own signal
    # handlers when it starts serving; ours must be the ones in place.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await service.stop()


def main() -> None:
    """Entry point: settings from the environment, JSON logs, run."""
    settings = ReceiverSettings()
    configure_logging(settings.log_level, service="bounce-receiver")
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()

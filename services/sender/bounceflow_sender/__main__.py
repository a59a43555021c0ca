"""`python -m bounceflow_sender`: run the sender until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio

from bounceflow import lifecycle
from bounceflow.lifecycle import run_until_signal
from bounceflow.logs import configure_logging

from bounceflow_sender.service import SenderService
from bounceflow_sender.settings import SenderSettings


async def main() -> None:
    settings = SenderSettings()
    configure_logging(settings.log_level, service="sender")
    await run_until_signal(SenderService(settings))


if __name__ == "__main__":
    lifecycle.run(main())

"""`python -m bounceflow_bounce_receiver`: run the MX until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio

from bounceflow import lifecycle
from bounceflow.lifecycle import run_until_signal
from bounceflow.logs import configure_logging
from bounceflow_bounce_receiver.service import BounceReceiverService
from bounceflow_bounce_receiver.settings import ReceiverSettings


async def _run(settings: ReceiverSettings) -> None:
    await run_until_signal(BounceReceiverService(settings))


def main() -> None:
    """Entry point: settings from the environment, JSON logs, run."""
    settings = ReceiverSettings()
    configure_logging(settings.log_level, service="bounce-receiver")
    lifecycle.run(_run(settings))


if __name__ == "__main__":
    main()

"""`python -m bounceflow_notifier`: run the notifier until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio

from bounceflow import lifecycle
from bounceflow.lifecycle import run_until_signal
from bounceflow.logs import configure_logging
from bounceflow_notifier.service import NotifierService
from bounceflow_notifier.settings import NotifierSettings


async def run(settings: NotifierSettings) -> None:
    """Start the service, wait for a stop signal, stop it cleanly."""
    await run_until_signal(NotifierService(settings))


def main() -> None:
    settings = NotifierSettings()
    configure_logging(settings.log_level, service="notifier")
    lifecycle.run(run(settings))


if __name__ == "__main__":
    main()

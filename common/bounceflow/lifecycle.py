"""How a service process runs: start, wait for SIGTERM/SIGINT, stop cleanly.

Every asyncio service's `__main__` ends in `run_until_signal(service)`, so
all of them stop the same way: on the signal, `stop()` lets work in flight
finish (and commit its offsets) before the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import uvloop

log = logging.getLogger(__name__)


T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop: the services spend most of their CPU in socket and
    protocol handling, which uvloop does in C."""
    return uvloop.run(main)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop, for code that drives its own loop (the Faust worker)."""
    return uvloop.new_event_loop()


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_signal(service: Service) -> None:
    """Start `service`, wait for SIGTERM or SIGINT, then stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await service.stop()

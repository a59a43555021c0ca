"""A service process stops cleanly on SIGTERM: stop() runs, the signal is not lost."""

import asyncio
import os
import signal

from bounceflow.lifecycle import run_until_signal


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()

    async def start(self) -> None:
        self.events.append("start")
        self.started.set()

    async def stop(self) -> None:
        self.events.append("stop")


async def test_sigterm_stops_the_service():
    service = Recorder()
    runner = asyncio.create_task(run_until_signal(service))
    await asyncio.wait_for(service.started.wait(), 5)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(runner, 5)
    assert service.events == ["start", "stop"]
    # The handlers are gone again: nothing of ours lingers in the loop.
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)


async def test_a_failed_start_still_stops_what_was_started():
    class Broken(Recorder):
        async def start(self) -> None:
            self.events.append("start")
            raise RuntimeError("port in use")

    service = Broken()
    try:
        await run_until_signal(service)
    except RuntimeError:
        pass
    assert service.events == ["start", "stop"]

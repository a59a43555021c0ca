"""How many attempts may wait for one endpoint host, decided by the host's health.

A healthy host gets a burst promptly: its events wait in line (the
dispatcher's `notifier_max_in_flight` bounds how many records are held, and
its fetch loop stops fetching at that bound). A host that is not keeping up
gets the bounded line: at most `notifier_host_backlog` waiting, the rest go
to `notification-retry` untried, so it cannot hold the dispatcher.

The rule (`HostHealth`, pure):

- *failing* after an attempt failed (timeout, connection error, non-2xx,
  SMTP 4xx); healthy again after an attempt succeeds;
- *behind* when an event waited `notifier_host_queue_wait` seconds in the
  line without being attempted (it is spilled then); caught up again when an
  attempt starts with nobody waiting behind it. A success alone does not end
  it: a slow host still answers, and letting its line grow again at every
  answer would clog the dispatcher again at once;
- a never-seen host counts as healthy, so a burst to a fresh endpoint is not
  spilled before its first answer.

The line is bounded while the host is failing or behind; on entering that
state the events beyond the backlog are spilled at once, newest first (the
oldest have waited longest). `HostGate` applies the rule with asyncio: a FIFO
of waiters and a deadline per waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from enum import Enum


class Turn(Enum):
    """What `HostGate.enter` came to."""

    GO = "go"          # attempt now; call `leave` afterwards
    FULL = "full"      # the bounded line was full: not attempted
    WAITED = "waited"  # waited `max_wait` in line: not attempted
    SHED = "shed"      # the host stopped keeping up while this waited: not attempted


@dataclass
class HostHealth:
    """Pure state of one host: failing (last attempt failed) and behind (an event gave up waiting)."""

    failing: bool = False
    behind: bool = False

    @property
    def bounded(self) -> bool:
        """Whether the line is limited to the backlog."""
        return self.failing or self.behind

    def attempt_finished(self, ok: bool) -> None:
        self.failing = not ok

    def gave_up_waiting(self) -> None:
        self.behind = True

    def attempt_started(self, still_waiting: int) -> None:
        if still_waiting == 0:
            self.behind = False


def may_wait(health: HostHealth, waiting: int, backlog: int) -> bool:
    """Whether one more event may join the line (the dispatcher's own limit bounds a healthy line)."""
    return not health.bounded or waiting < backlog


def excess(health: HostHealth, waiting: int, backlog: int) -> int:
    """How many waiting events to spill now (newest first)."""
    return max(0, waiting - backlog) if health.bounded else 0


class HostGate:
    """At most `limit` attempts in flight to one host; a line behind them as `HostHealth` allows.

    Use: `turn = await gate.enter()`; only on `Turn.GO` attempt, then
    `gate.leave(ok)` (in a `finally`).
    """

    def __init__(self, limit: int, backlog: int, max_wait: float) -> None:
        self._limit = limit
        self._backlog = backlog
        self._max_wait = max_wait
        self.health = HostHealth()
        self.active = 0
        self._line: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        return len(self._line)

    async def enter(self) -> Turn:
        """Wait for a turn, or say why this event is not attempted."""
        if self.active < self._limit and not self._line:
            self._start()
            return Turn.GO
        if not may_wait(self.health, len(self._line), self._backlog):
            return Turn.FULL
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        self._line.append(turn)
        # A deadline by callback, not by cancelling this task: a turn handed over
        # and a deadline firing at once cannot both happen.
        deadline = loop.call_later(self._max_wait, self._give_up, turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result() is Turn.GO:
                self.leave(None)  # handed a turn we will not use: pass it on
            elif turn in self._line:
                self._line.remove(turn)
            raise
        finally:
            deadline.cancel()

    def leave(self, ok: bool | None) -> None:
        """An attempt is over: `ok` is its outcome (None: not made), the next in line goes."""
        self.active -= 1
        if ok is not None:
            self.health.attempt_finished(ok)
            self._shed_excess()
        while self._line and self.active < self._limit:
            turn = self._line.popleft()
            if not turn.done():
                self._start()
                turn.set_result(Turn.GO)

    def _start(self) -> None:
        self.active += 1
        self.health.attempt_started(len(self._line))

    def _give_up(self, turn: asyncio.Future) -> None:
        if turn.done() or turn not in self._line:
            return
        self._line.remove(turn)
        turn.set_result(Turn.WAITED)
        self.health.gave_up_waiting()
        self._shed_excess()

    def _shed_excess(self) -> None:
        for _ in range(excess(self.health, len(self._line), self._backlog)):
            turn = self._line.pop()
            if not turn.done():
                turn.set_result(Turn.SHED)

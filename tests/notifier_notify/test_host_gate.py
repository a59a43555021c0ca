"""The host gate's rule (pure) and the gate itself on the event loop, without sockets."""
from __future__ import annotations

import asyncio

from bounceflow_notifier.host_gate import HostGate, HostHealth, Turn, excess, may_wait


# --- the rule -------------------------------------------------------------

def test_a_new_host_is_healthy_and_its_line_is_not_bounded_by_the_backlog():
    health = HostHealth()
    assert not health.bounded
    assert may_wait(health, waiting=10_000, backlog=200)
    assert excess(health, waiting=10_000, backlog=200) == 0


def test_failing_after_a_failed_attempt_healthy_after_a_success():
    health = HostHealth()
    health.attempt_finished(ok=False)
    assert health.failing and health.bounded
    assert may_wait(health, 199, 200) and not may_wait(health, 200, 200)
    assert excess(health, 250, 200) == 50
    health.attempt_finished(ok=True)
    assert not health.bounded and may_wait(health, 5000, 200)


def test_behind_after_a_give_up_until_an_attempt_starts_with_nobody_waiting():
    health = HostHealth()
    health.gave_up_waiting()
    assert health.behind and health.bounded
    health.attempt_finished(ok=True)  # a slow host still answers: that alone is not catching up
    assert health.bounded
    health.attempt_started(still_waiting=3)
    assert health.bounded
    health.attempt_started(still_waiting=0)
    assert not health.bounded


def test_a_zero_backlog_refuses_every_waiter_of_a_bounded_host():
    health = HostHealth(failing=True)
    assert not may_wait(health, 0, 0)
    assert excess(health, 4, 0) == 4


# --- the gate ---------------------------------------------------------------

async def _enter_many(gate: HostGate, count: int) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(gate.enter()) for _ in range(count)]
    await asyncio.sleep(0)  # let every task reach its place in line
    return tasks


async def test_a_healthy_host_queues_a_burst_far_beyond_the_backlog():
    gate = HostGate(limit=2, backlog=3, max_wait=3600)
    tasks = await _enter_many(gate, 50)
    assert gate.active == 2 and gate.waiting == 48
    started = 0
    while started < 50:
        done = [t for t in tasks if t.done()]
        assert all(t.result() is Turn.GO for t in done)
        for t in done:
            tasks.remove(t)
            started += 1
            gate.leave(True)
        await asyncio.sleep(0)
    assert gate.active == 0 and gate.waiting == 0


async def test_a_failure_sheds_the_newest_beyond_the_backlog_and_refuses_newcomers():
    gate = HostGate(limit=1, backlog=3, max_wait=3600)
    tasks = await _enter_many(gate, 10)  # 1 in flight, 9 waiting
    gate.leave(False)  # failed: the line is cut to 3 (the oldest), then the next goes
    await asyncio.sleep(0)
    results = [t.result() if t.done() else None for t in tasks]
    assert results == [Turn.GO, Turn.GO, None, None] + [Turn.SHED] * 6
    tasks += await _enter_many(gate, 1)  # the third place in line
    assert await gate.enter() is Turn.FULL
    gate.leave(True)  # healthy again: the line is open
    await asyncio.sleep(0)
    extra = await _enter_many(gate, 20)
    assert not any(t.done() for t in extra) and gate.waiting == 22
    for t in tasks + extra:
        t.cancel()


async def test_waiters_of_a_slow_host_give_up_and_it_counts_as_behind():
    gate = HostGate(limit=1, backlog=2, max_wait=0.01)
    tasks = await _enter_many(gate, 6)
    await asyncio.gather(*tasks[1:])  # nothing leaves: the waiters give up
    # The first to give up makes the host behind: the two newest beyond the backlog go at once.
    assert [t.result() for t in tasks] == [Turn.GO] + [Turn.WAITED] * 3 + [Turn.SHED] * 2
    assert gate.health.behind and gate.waiting == 0


async def test_a_host_that_is_behind_has_a_bounded_line_until_it_catches_up():
    gate = HostGate(limit=1, backlog=2, max_wait=3600)
    assert await gate.enter() is Turn.GO
    gate.health.behind = True
    tasks = await _enter_many(gate, 4)  # 2 wait, 2 turned away
    assert [t.result() for t in tasks if t.done()] == [Turn.FULL, Turn.FULL]
    gate.leave(True)  # answered, but one still waits behind the next: still behind
    await asyncio.sleep(0)
    assert gate.health.behind
    gate.leave(True)  # the last waiter starts with nobody behind it: caught up
    await asyncio.sleep(0)
    assert not gate.health.behind and gate.active == 1 and gate.waiting == 0


async def test_a_cancelled_waiter_leaves_the_line_and_a_handed_turn_is_passed_on():
    gate = HostGate(limit=1, backlog=5, max_wait=3600)
    first, second, third = await _enter_many(gate, 3)
    second.cancel()
    await asyncio.sleep(0)
    assert gate.waiting == 1
    gate.leave(True)
    third.cancel()  # handed the turn, cancelled before it ran: the turn must not leak
    await asyncio.sleep(0)
    assert gate.active == 0 and gate.waiting == 0
    assert await gate.enter() is Turn.GO

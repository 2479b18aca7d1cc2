"""Pacing: a burst of device steps is spread over loop iterations, so timers (deadlines) run between
them, in arrival order, and a cancelled waiter never runs."""

from __future__ import annotations

import asyncio
import time

from collectors.pacing import TURN_BUDGET_S, budget, checkpoint, paced

STEP_S = 0.001  # one step's CPU: a big decode or parse


def _busy(seconds: float) -> float:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


async def test_a_burst_of_steps_lets_a_timer_run_before_it_ends() -> None:
    steps = 200  # 200 ms of work: without pacing one loop iteration would run all of it
    done: list[int] = []
    fired_after: list[int] = []

    async def device(i: int) -> None:
        await paced(_busy, STEP_S)
        done.append(i)

    loop = asyncio.get_running_loop()
    loop.call_later(0.0, lambda: fired_after.append(len(done)))
    await asyncio.gather(*(device(i) for i in range(steps)))
    assert len(done) == steps
    assert fired_after and fired_after[0] < steps // 4, fired_after


async def test_waiting_steps_run_in_arrival_order() -> None:
    order: list[int] = []

    async def device(i: int) -> None:
        await paced(_busy, TURN_BUDGET_S / 2)
        order.append(i)

    await asyncio.gather(*(device(i) for i in range(60)))
    assert order == list(range(60))
    assert budget().waiting == 0


async def test_a_cancelled_waiter_never_runs() -> None:
    ran: list[int] = []

    async def device(i: int) -> None:
        await checkpoint()
        ran.append(i)

    budget()  # this loop's clock starts now...
    _busy(TURN_BUDGET_S * 2)  # ...and this iteration has no room left: every checkpoint below waits
    tasks = [asyncio.create_task(device(i)) for i in range(10)]
    await asyncio.sleep(0)  # each task reaches its checkpoint and queues
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert ran == [i for i in range(10) if i != 3]

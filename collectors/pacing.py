"""Share each event-loop turn between devices: no turn runs device work for more than a few milliseconds.

With a thousand devices in flight, asyncio runs every callback that is ready in one loop iteration. A
device's step after each reply (a decode, a parse, the next request) costs 0.05-0.5 ms, and hundreds of
them are ready together, so one iteration held the loop for 100 ms and more: timers fired late, so
deadlines slipped, and bench/bench_loop_stall.py's heartbeat saw the stall. Decoding is linear and big
replies go to a thread (client.py); what was left is how many small steps land in one iteration.

`checkpoint()` sits where a device's coroutine is about to do work after waiting on the network (after a
connect or a reply, before a decode or a parse). Within `TURN_BUDGET_S` of the start of the current loop
iteration it returns at once (the common case: one coroutine call). Past it, the device waits for a later
iteration, in arrival order; each iteration lets waiting devices go, oldest first, until its own budget is
spent, and the rest wait on. An iteration then runs at most about one budget of device work plus the one
step in progress and the cheap I/O callbacks, whatever the fleet sends, and timers run in between. A
device whose read is cancelled while it waits (its deadline) is dropped from the queue.

Nothing here changes what a step computes, only when it runs; `paced(fn, *args)` is a checkpoint and a
call.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import ParamSpec, TypeVar

TURN_BUDGET_S = 0.003
"""Device work per loop iteration before further steps wait for a later one (bench/bench_loop_stall.py)."""

P = ParamSpec("P")
T = TypeVar("T")


class TurnBudget:
    """The checkpoints of one event loop: when this iteration started, and who waits for a later one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, budget_s: float = TURN_BUDGET_S) -> None:
        self._loop = loop
        self._budget = budget_s
        self._turn_start = time.perf_counter()
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._bounced: list[asyncio.Future[None]] = []  # released this turn, found no room: first next turn
        self._armed = False
        self._active = False  # a checkpoint ran since the last turn started
        self._went = 0  # released waiters that found room this turn
        self._in_flight = 0  # released waiters not yet woken: nobody passes them, no new batch goes
        self._release = 16  # how many waiters the next turn wakes: about as many as found room lately

    @property
    def waiting(self) -> int:
        """Steps waiting for a later iteration."""
        return len(self._waiting) + len(self._bounced)

    def _room(self) -> bool:
        return time.perf_counter() - self._turn_start < self._budget

    async def admit(self) -> None:
        """Return at once while this iteration has room (and nobody waits); else wait for one that has."""
        self._active = True
        self._arm()
        if not self._waiting and not self._bounced and not self._in_flight and self._room():
            return
        waiter = self._loop.create_future()
        self._waiting.append(waiter)
        while True:
            try:
                await waiter
            finally:
                if waiter.done() and not waiter.cancelled():
                    self._in_flight -= 1
            if self._room():
                self._went += 1
                return
            # Released, but earlier waiters used the room: first in line for the next iteration.
            waiter = self._loop.create_future()
            self._bounced.append(waiter)
            self._arm()  # the turn that released it may have found nobody else waiting, and not re-armed

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            self._loop.call_soon(self._new_turn)

    def _new_turn(self) -> None:
        """Once per loop iteration while devices are active: a fresh start time, and the waiting steps
        released in order (each checks for room when it runs; those that find none queue up again)."""
        self._armed = False
        busy = self._active or self._waiting or self._bounced
        self._active = False
        if not busy:
            return
        self._arm()  # first, so the next iteration starts its clock before the steps released here run
        self._turn_start = time.perf_counter()
        if self._in_flight:  # the last batch has not run yet: release nothing over its head
            return
        if self._bounced:
            self._waiting.extendleft(reversed(self._bounced))
            self._bounced.clear()
        # Wake about as many as found room lately (plus a margin), not all: a woken waiter that finds no
        # room costs a task step and a new future, and hundreds of those would fill the turn themselves.
        self._release = max(16, (self._release + 2 * self._went) // 2)
        self._went = 0
        count = self._release
        while self._waiting and count:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a cancelled read (deadline) is dropped
                waiter.set_result(None)
                self._in_flight += 1
                count -= 1


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnBudget] = weakref.WeakKeyDictionary()


def budget() -> TurnBudget:
    """The running loop's TurnBudget."""
    loop = asyncio.get_running_loop()
    found = _BUDGETS.get(loop)
    if found is None:
        found = _BUDGETS[loop] = TurnBudget(loop, TURN_BUDGET_S)
    return found


async def checkpoint() -> None:
    """Wait, if this loop iteration has run device work for longer than its budget, for a later one."""
    await budget().admit()


async def paced(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` after a checkpoint."""
    await checkpoint()
    return fn(*args, **kwargs)

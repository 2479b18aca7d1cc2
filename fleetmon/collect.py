"""The collector loop: poll a cycle, record it, deliver it to the sink or to the spool, wait, repeat.

The poller is injected as `poll_cycle`, an async callable returning one cycle's samples, so this
module knows nothing about devices (collectors/ owns that) and the loop is tested with real samples.

Order and durability: while the spool holds anything, new samples are appended behind it and the spool
is replayed first, so the sink always receives samples in the order they were produced. A sample
leaves the spool only after the sink confirmed it. On stop (SIGINT/SIGTERM) the cycle in progress is
finished and delivered (or spooled), then the sink is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from collectors.sample import Sample
from fleetmon.sinks.base import Sink, SinkUnavailableError
from fleetmon.sinks.jsonl import JsonlSink
from fleetmon.sinks.spool import Spool

log = logging.getLogger(__name__)

PollCycle = Callable[[], Awaitable[list[Sample]]]
CycleHook = Callable[[Sequence[Sample], float, float], Awaitable[None]]
"""Called after each cycle was delivered or spooled: (samples, seconds the poll took, its end, epoch)."""


@dataclass
class CollectStats:
    """Counters of one collector run."""

    cycles: int = 0
    produced: int = 0
    offered: int = 0  # samples handed to the sink, replays from the spool included
    delivered: int = 0
    spooled: int = 0
    refused: int = 0


class SpooledDelivery:
    """Delivers cycles to a sink in the order they were produced, through the spool while it is down.

    The collector loop below and the service's persist job share it: one home for the ordering and
    durability rules.
    """

    def __init__(self, sink: Sink, spool: Spool, stats: CollectStats | None = None) -> None:
        self.sink = sink
        self.spool = spool
        self.stats = stats or CollectStats()
        self._sink_down = False

    async def deliver(self, samples: Sequence[Sample]) -> None:
        """Send samples to the sink in order behind anything spooled; spool whatever the sink refuses."""
        if not self.spool.is_empty():
            self._spool(samples)
            await self.drain()
            return
        self.stats.offered += len(samples)
        try:
            await self.sink.send(samples)
        except SinkUnavailableError as exc:
            self._note_down(exc)
            self._spool(samples)
            return
        self._note_up()
        self.stats.delivered += len(samples)

    @property
    def sink_down(self) -> bool:
        """True from the sink's first refusal until it took samples again."""
        return self._sink_down

    async def drain(self) -> int:
        """Replay the spool into the sink; stops quietly at the first refusal. Returns samples sent."""
        sent = 0

        async def send(batch: Sequence[Sample]) -> None:
            nonlocal sent
            self.stats.offered += len(batch)
            await self.sink.send(batch)
            sent += len(batch)

        try:
            await self.spool.replay(send)
        except SinkUnavailableError as exc:
            self._note_down(exc)
        else:
            self._note_up()
        self.stats.delivered += sent
        return sent

    def _spool(self, samples: Sequence[Sample]) -> None:
        taken = self.spool.append(samples)
        self.stats.spooled += taken
        self.stats.refused += len(samples) - taken

    def _note_down(self, exc: Exception) -> None:
        if not self._sink_down:
            log.warning("sink unavailable, spooling to %s: %s", self.spool.directory, exc)
            self._sink_down = True

    def _note_up(self) -> None:
        if self._sink_down:
            log.warning("sink available again; spool replayed")
            self._sink_down = False

    async def close(self) -> None:
        """Last attempt to empty the spool, then close the sink."""
        if not self.spool.is_empty():
            await self.drain()
        await self.sink.close()


class CollectLoop:
    """Runs poll cycles every `interval` seconds into a sink, through the spool when the sink is down."""

    def __init__(
        self,
        poll_cycle: PollCycle,
        sink: Sink,
        *,
        spool: Spool,
        interval: float = 60.0,
        out: JsonlSink | None = None,
        max_cycles: int | None = None,
    ) -> None:
        self.poll_cycle = poll_cycle
        self.stats = CollectStats()
        self.delivery = SpooledDelivery(sink, spool, self.stats)
        self.interval = interval
        self.out = out
        self.max_cycles = max_cycles
        self.on_cycle: CycleHook | None = None  # set by whoever follows the cycles (cli.collect)

    async def run(self, stop: asyncio.Event) -> CollectStats:
        """Cycle until `stop` is set (or max_cycles ran); flushes and closes the sink before returning."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                started = loop.time()
                samples = await self.poll_cycle()
                poll_seconds, poll_end = loop.time() - started, time.time()
                self.stats.cycles += 1
                self.stats.produced += len(samples)
                if self.out is not None:
                    await self.out.send(samples)
                await self.delivery.deliver(samples)
                if self.on_cycle is not None:
                    await self.on_cycle(samples, poll_seconds, poll_end)
                if self.max_cycles is not None and self.stats.cycles >= self.max_cycles:
                    break
                wait = max(0.0, self.interval - (loop.time() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.close()
        return self.stats

    async def close(self) -> None:
        """Last attempt to empty the spool, then close the sink and the --out file."""
        await self.delivery.close()
        if self.out is not None:
            await self.out.close()

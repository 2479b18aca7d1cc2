"""Poll a fleet: identify each device once, then read it every cycle, never waiting on a bad one.

Contract:
- `Poller.poll_once(targets)` returns exactly one Sample per target, in target order, failed devices
  included (state `unreachable`/`error` with the specific error code). It never raises for device
  trouble, and no device costs the cycle more than `deadline_s` once it holds a concurrency slot: the
  whole device read, identification included, runs inside one `asyncio.timeout`.
- Concurrency is one semaphore per poller (`concurrency` devices in flight; a device read may open a
  few connections at once, so file descriptors in use stay under about 5 x concurrency).
- Identities are cached per target. A device that goes down loses its cached identity, so the read that
  finds it back identifies it again (a swapped firmware or unit is noticed); `read_device` re-identifies
  by itself when a reply contradicts the cached firmware or model.
- Web side: a poller with web credentials owns ONE `WebSession` (timeouts and the bound on web
  exchanges at once, created with the poller) and each target keeps its `DeviceWeb` (digest challenge,
  VNish token) across cycles, also while it is down. Close the poller (`aclose`, or
  `async with Poller(...)`) to close the session.
- Availability is tracked per target; each transition (up -> down, down -> up) is logged once, at the
  moment it happens, never every cycle.
- `run` repeats cycles every `interval` seconds, spreading the devices' start times over the part of
  the interval the deadline leaves free (jittered), so a large fleet does not hit the network at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from collectors.connection import Limits, Timeouts
from collectors.identify import Identity
from collectors.posture import PostureSettings
from collectors.reader import read_device
from collectors.sample import Sample, is_down
from collectors.targets import Target
from collectors.web import WEB_MAX_CONNECTIONS, DeviceWeb, WebCredentials, WebSession

log = logging.getLogger(__name__)

GC_GEN0_THRESHOLD = 50_000
"""Allocations between young-generation collections in a polling process (CPython's default: 700)."""


def tune_gc_for_polling() -> None:
    """Make the cyclic garbage collector cheap for a process whose job is polling; call once at startup.

    A cycle allocates a few hundred objects per device, nearly all freed by reference counting, yet at
    the default threshold the collector ran ~600 times per 2,000-device cycle and rescanned the long-
    lived device states each time: 0.6 s of a 5 s cycle. Freezing what startup built and collecting
    the young generation every 50,000 allocations instead cut that to 0.07 s (bench/bench_poll.py).
    Process-wide, so the library never does it on import: the CLI's polling commands, the poll workers,
    the bench and `fleetmon simulate` (whose connections churn the same way; 3-8% of its CPU per device)
    do.
    """
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(max(_young, GC_GEN0_THRESHOLD), middle, old)


REPLY_CAP_BYTES = 512 * 1024
"""Largest reply the poller accepts; real replies are under 64 KiB, so a bigger one is a fault and
memory stays bounded (`concurrency` x a few connections x this, at worst)."""

START_BATCH = 64
"""Device reads a cycle starts per turn of the event loop."""

Sink = Callable[[list[Sample]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PollerSettings:
    """Explicit limits of one poller: devices in flight, the per-device deadline, the TCP connect
    deadline, the reply size cap, and the web credential profiles (None: no web calls)."""

    concurrency: int
    deadline_s: float
    connect_s: float = 1.0
    max_reply_bytes: int = REPLY_CAP_BYTES
    credentials: WebCredentials | None = None
    vnish_credentials: WebCredentials | None = None
    braiins_credentials: WebCredentials | None = None
    """Braiins OS's gRPC login: with it, a Braiins OS device whose 4028 API refuses (bosminer stopped by
    an operator's sleep) is asked over gRPC and reads `sleeping` rather than `unreachable`."""
    posture: PostureSettings = field(default_factory=PostureSettings)
    """The security-posture checks (collectors.posture)."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.deadline_s <= 0 or self.connect_s <= 0:
            raise ValueError("deadlines must be positive")

    @property
    def timeouts(self) -> Timeouts:
        """Per-connection deadlines inside the per-device one."""
        return Timeouts(
            connect=min(self.connect_s, self.deadline_s), read=self.deadline_s, device=self.deadline_s
        )


@dataclass(slots=True)
class _DeviceState:
    identity: Identity | None = None
    up: bool | None = None
    since: float = 0.0
    web: DeviceWeb | None = None


Cycle = Callable[..., Awaitable[list[Sample]]]
"""A `poll_once`: targets in, one Sample per target out; takes `spread_s` by keyword."""


SPREAD_FRACTION = 0.5
"""How much of the time a cycle's deadline leaves free its device starts are spread over; the rest is
left for what follows a cycle (storing it, publishing it) before the next one starts."""


def cycle_spread_s(interval_s: float, deadline_s: float) -> float:
    """Over how many seconds to spread the device starts of a cycle repeated every `interval_s`."""
    return max(0.0, interval_s - deadline_s) * SPREAD_FRACTION


async def repeat_cycles(
    poll_once: Cycle, deadline_s: float, interval: float, sink: Sink, targets: Sequence[Target]
) -> None:
    """Run `poll_once` every `interval` seconds until cancelled, handing each cycle's samples to `sink`;
    device starts are spread over the part of the interval the deadline leaves free. A cycle that
    overruns the interval starts the next one immediately rather than piling cycles up."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    loop = asyncio.get_running_loop()
    spread = cycle_spread_s(interval, deadline_s)
    while True:
        started = loop.time()
        samples = await poll_once(targets, spread_s=spread)
        await sink(samples)
        await asyncio.sleep(max(0.0, started + interval - loop.time()))


class Poller:
    """Reads a fleet with bounded concurrency and a hard per-device deadline; keeps identities and
    availability between cycles (one Poller per fleet, reused for every cycle)."""

    def __init__(self, settings: PollerSettings) -> None:
        self.settings = settings
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._timeouts = settings.timeouts
        self._limits = Limits(max_reply_bytes=settings.max_reply_bytes)
        self._devices: dict[Target, _DeviceState] = {}
        self._rng = random.Random()
        self._web: WebSession | None = None
        if settings.credentials is not None or settings.vnish_credentials is not None:
            self._web = WebSession(
                connect_s=settings.timeouts.connect,
                read_s=settings.deadline_s,
                max_connections=min(WEB_MAX_CONNECTIONS, settings.concurrency),
            )

    async def aclose(self) -> None:
        """Close the web session; the poller cannot read the web after."""
        if self._web is not None:
            await self._web.aclose()

    async def __aenter__(self) -> Poller:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def identity_of(self, target: Target) -> Identity | None:
        """The cached identity of a target (None before its first good read or while it is down)."""
        state = self._devices.get(target)
        return state.identity if state else None

    def is_up(self, target: Target) -> bool | None:
        """Availability as of the last cycle (None before the first)."""
        state = self._devices.get(target)
        return state.up if state else None

    async def poll_once(self, targets: Sequence[Target], *, spread_s: float = 0.0) -> list[Sample]:
        """One cycle: one Sample per target, in target order. `spread_s` > 0 staggers the device start
        times over that many seconds (with jitter); the default starts them as slots free up."""
        offsets = self._offsets(len(targets), spread_s)
        tasks: list[asyncio.Task[Sample]] = []
        try:
            for index, (target, offset) in enumerate(zip(targets, offsets, strict=True)):
                if index and index % START_BATCH == 0:
                    # Let the batch just created take its first steps (open sockets) in a loop turn of
                    # its own: a thousand at once held the loop ~130 ms (bench/bench_loop_stall.py).
                    await asyncio.sleep(0)
                tasks.append(asyncio.create_task(self._poll_device(target, offset), name=f"poll {target}"))
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    async def poll_device(self, target: Target) -> Sample:
        """Read one device now (through the same cache, semaphore and deadline as a cycle)."""
        return await self._poll_device(target, 0.0)

    async def run(self, interval: float, sink: Sink, *, targets: Sequence[Target]) -> None:
        """Poll every `interval` seconds until cancelled, handing each cycle's samples to `sink`.

        A cycle that overruns the interval (more devices than the concurrency clears in time) starts the
        next one immediately rather than piling cycles up.
        """
        await repeat_cycles(self.poll_once, self.settings.deadline_s, interval, sink, targets)

    def _offsets(self, count: int, spread_s: float) -> list[float]:
        if spread_s <= 0 or count == 0:
            return [0.0] * count
        step = spread_s / count
        return [i * step + self._rng.uniform(0.0, step) for i in range(count)]

    async def _poll_device(self, target: Target, offset: float) -> Sample:
        if offset > 0:
            await asyncio.sleep(offset)
        state = self._devices.get(target)
        if state is None:
            state = self._devices[target] = _DeviceState(web=self._device_web())
        async with self._semaphore:
            sample, identity = await self._read(target, state)
        up = not is_down(sample.state)
        # Forget a down device's identity: the read that finds it back identifies it again.
        state.identity = identity if up else None
        self._transition(target, state, up, sample)
        return sample

    def _device_web(self) -> DeviceWeb | None:
        if self._web is None:
            return None
        return self._web.device(self.settings.credentials, self.settings.vnish_credentials)

    async def _read(self, target: Target, state: _DeviceState) -> tuple[Sample, Identity | None]:
        # read_device runs the whole read inside one asyncio.timeout of `timeouts.device` (the poller's
        # deadline) and turns its expiry into a `timeout` sample: that is the hard per-device bound.
        reading = await read_device(
            target.host,
            target.port,
            timeouts=self._timeouts,
            limits=self._limits,
            web=state.web,
            known=state.identity,
            posture=self.settings.posture,
            braiins=self.settings.braiins_credentials,
        )
        return reading.sample, reading.identity

    def _transition(self, target: Target, state: _DeviceState, up: bool, sample: Sample) -> None:
        previous = state.up
        if previous == up:
            return
        now = time.monotonic()
        if not up:
            reason = sample.errors[0].code if sample.errors else sample.state.value
            if previous is None:
                log.warning("%s is down (%s)", target, reason)
            else:
                log.warning("%s went down (%s) after %.0f s up", target, reason, now - state.since)
        elif previous is not None:
            log.warning("%s is back up after %.0f s down", target, now - state.since)
        state.up = up
        state.since = now

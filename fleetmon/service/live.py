"""The current FleetSnapshot of this replica and what is derived from it, once per snapshot version.

Snapshots are taken of the fleet state by the runtime (fleetmon.service.runtime) and swapped in
whole. Readers take the reference once and work on that immutable value, so a swap mid-request is
harmless. Derived values (the /metrics body, the fleet summary) are computed once per version:
- /metrics renders lazily, at the first scrape of a new version, in a worker thread, single-flight
  (concurrent scrapes wait for the one render); every later scrape of that version returns the same
  bytes. Rendering 10,000 miners costs seconds of CPU, which must never run on the event loop nor
  once per scrape.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from fleetmon.service.exposition import render
from fleetmon.service.metrics import build_registry
from fleetmon.service.snapshot import FleetSnapshot

T = TypeVar("T")


def render_snapshot(snapshot: FleetSnapshot) -> bytes:
    """The Prometheus text of one snapshot (blocking: call it from a worker thread)."""
    return render(build_registry(lambda: snapshot))


class LiveFleet:
    """Holds the current snapshot, its version, and per-version derived values."""

    def __init__(self, snapshot: FleetSnapshot | None = None) -> None:
        self._snapshot = snapshot or FleetSnapshot(taken_at=0.0)
        self._version = 1 if snapshot is not None else 0
        self._derived: dict[str, tuple[int, object]] = {}
        self._derived_lock = threading.Lock()
        self._metrics: tuple[int, bytes] | None = None
        self._metrics_lock: asyncio.Lock | None = None
        self.renders = 0  # how many times /metrics was rendered (the cache's test and bench read it)
        self.ready = asyncio.Event()
        if snapshot is not None:
            self.ready.set()

    @property
    def snapshot(self) -> FleetSnapshot:
        """The current snapshot (an immutable value)."""
        return self._snapshot

    @property
    def version(self) -> int:
        """Increases by one at each swap; 0 before the first snapshot."""
        return self._version

    def swap(self, snapshot: FleetSnapshot) -> None:
        """Publish a new snapshot (call on the event loop thread)."""
        self._snapshot = snapshot
        self._version += 1
        self.ready.set()

    def age_s(self) -> float | None:
        """Seconds since the current snapshot was taken; None before the first."""
        return time.time() - self._snapshot.taken_at if self._version else None

    def derived(self, name: str, compute: Callable[[FleetSnapshot], T]) -> T:
        """`compute(snapshot)`, computed once per version and name (thread-safe)."""
        version, snapshot = self._version, self._snapshot
        with self._derived_lock:
            cached = self._derived.get(name)
            if cached is not None and cached[0] == version:
                return cached[1]  # type: ignore[return-value]
        value = compute(snapshot)
        with self._derived_lock:
            self._derived[name] = (version, value)
        return value

    async def metrics(self) -> bytes:
        """The /metrics body of the current version, rendered at most once per version."""
        cached = self._metrics
        if cached is not None and cached[0] == self._version:
            return cached[1]
        if self._metrics_lock is None:
            self._metrics_lock = asyncio.Lock()
        async with self._metrics_lock:
            cached = self._metrics
            if cached is not None and cached[0] == self._version:
                return cached[1]
            version, snapshot = self._version, self._snapshot
            body = await asyncio.to_thread(render_snapshot, snapshot)
            self.renders += 1
            self._metrics = (version, body)
            return body

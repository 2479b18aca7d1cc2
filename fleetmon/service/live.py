"""The current FleetSnapshot of this replica and what is derived from it, once per snapshot version.

Snapshots are taken of the fleet state by the runtime (fleetmon.service.runtime) and swapped in
whole. Readers take the reference once and work on that immutable value, so a swap mid-request is
harmless. Derived values (the /metrics body, the fleet summary) are computed once per version:
- /metrics renders lazily, at the first scrape of a new version, in a worker thread, single-flight
  (concurrent scrapes wait for the one render); every later scrape of that version reuses the same
  bytes. Rendering 10,000 miners costs about half a second of CPU, which must never run on the event
  loop nor once per scrape. The gzip form is compressed once per version too, at the first scrape that
  asks for it (`exposition.GzipHead`), and kept beside the plain body.
- Each scrape appends this process's own `process_*`/`python_*` families (`metrics.runtime_registry`),
  rendered then: they change between scrapes and cost a fraction of a millisecond.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.registry import Collector

from fleetmon.service.exposition import GzipHead, render, render_families
from fleetmon.service.metrics import build_registry, runtime_registry
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
        self._metrics: _FleetBody | None = None
        self._metrics_lock: asyncio.Lock | None = None
        self._runtime = runtime_registry()
        self.renders = 0  # how many times /metrics was rendered (the cache's test and bench read it)
        self.compressions = 0  # how many times a rendered body was gzipped (likewise)
        self.ready = asyncio.Event()
        if snapshot is not None:
            self.ready.set()

    def add_scrape_collector(self, collector: Collector) -> None:
        """Render `collector` at every scrape, beside the process families (figures that move with the
        clock, such as a site's staleness, cannot be cached per snapshot version)."""
        self._runtime.register(collector)

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

    async def metrics(self, gzip: bool = False) -> bytes:
        """The /metrics body of the current version (gzip-compressed when `gzip`): the fleet part rendered
        and compressed at most once per version, this process's runtime families rendered now."""
        fleet = self._metrics
        if fleet is None or fleet.version != self._version or (gzip and fleet.gzip is None):
            fleet = await self._fleet_body(gzip)
        runtime = render_families(self._runtime.collect())
        if gzip:
            assert fleet.gzip is not None
            return fleet.gzip.finish(runtime)
        return fleet.plain + runtime

    async def _fleet_body(self, gzip: bool) -> _FleetBody:
        """The current version's fleet body, rendered (and compressed) single-flight in a worker thread."""
        if self._metrics_lock is None:
            self._metrics_lock = asyncio.Lock()
        async with self._metrics_lock:
            fleet = self._metrics
            if fleet is None or fleet.version != self._version:
                version, snapshot = self._version, self._snapshot
                plain = await asyncio.to_thread(render_snapshot, snapshot)
                self.renders += 1
                fleet = self._metrics = _FleetBody(version, plain)
            if gzip and fleet.gzip is None:
                fleet.gzip = await asyncio.to_thread(GzipHead, fleet.plain)
                self.compressions += 1
            return fleet


@dataclass(slots=True)
class _FleetBody:
    """The fleet part of /metrics for one snapshot version: the text, and its gzip head once asked for."""

    version: int
    plain: bytes
    gzip: GzipHead | None = None

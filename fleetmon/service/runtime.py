"""What one service process runs besides HTTP: how its snapshot is kept fresh, and /probe's poller.

Two modes, chosen by the configuration:
- collector (small farm: targets configured, no MQTT): the collector loop runs in-process. Each cycle
  goes poller -> batch writer (through the spool when the database refuses) -> snapshot rebuilt from
  the database -> swap. The rollup and retention jobs run here too, every `rollup_interval_s`.
- reader (large farm: MQTT configured, or no targets): collectors publish, ingesters write; this
  replica only reads. A background task rebuilds the snapshot from the database every
  `snapshot_interval_s`, so any number of API replicas stay stateless. Rollups and retention then
  belong to a cron job (`fleetmon db rollup`, `fleetmon db retention`), not to every replica.

Configured rack PDUs (fleetmon.service.pdus) are read in both modes: with each poll cycle in collector
mode, every `snmp.interval_s` in reader mode; their latest views ride along in every snapshot.

All database work runs in worker threads; the event loop only schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors.poller import Poller, PollerSettings
from collectors.sample import Sample, is_down, utcnow
from collectors.targets import Target
from fleetmon.collect import CollectLoop
from fleetmon.config import Settings
from fleetmon.service.builder import build_snapshot
from fleetmon.service.inventory import load_inventory
from fleetmon.service.live import LiveFleet
from fleetmon.service.pdus import PduPoller
from fleetmon.service.snapshot import CollectorStats, FleetSnapshot, PduView
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.sinks.spool import Spool
from fleetmon.storage.batch import BatchWriter
from fleetmon.storage.engine import data_dir
from fleetmon.storage.errors import StorageError, StorageUnavailableError
from fleetmon.storage.retention import enforce_retention
from fleetmon.storage.rollups import run_rollups
from fleetmon.storage.writer import SampleStore, SiteSample
from fleetmon.supplychain.origin import InventoryRecord

log = logging.getLogger(__name__)

SPOOL_MAX_BYTES = 256 * 1024 * 1024


def poller_settings(settings: Settings) -> PollerSettings:
    """The poller's explicit limits and credential profiles from the configuration."""
    c = settings.collector
    return PollerSettings(
        concurrency=c.concurrency,
        deadline_s=c.timeout_s,
        connect_s=c.connect_timeout_s,
        credentials=settings.credential(c.credential_profile),
        vnish_credentials=settings.credential(c.vnish_credential_profile),
    )


@dataclass
class ServiceRuntime:
    """The engine, the live snapshot, the poller and the background tasks of one service process.

    `sites` maps each polled target to its site (the configuration gives one site; `fleetmon demo`
    polls several). Empty in reader mode.
    """

    settings: Settings
    engine: Engine
    live: LiveFleet = field(default_factory=LiveFleet)
    sites: dict[Target, str] = field(default_factory=dict)
    inventory: dict[str, InventoryRecord] = field(default_factory=dict)
    stats: dict[str, CollectorStats] = field(default_factory=dict)
    poller: Poller | None = None
    spool_dir: Path | None = None  # default: DATA_DIR/spool/service
    pdu_poller: PduPoller | None = None  # default: one over settings.pdus
    pdus: tuple[PduView, ...] = ()  # the latest PDU reads, added to every snapshot
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        for site in dict.fromkeys(self.sites.values()):
            self.stats.setdefault(site, CollectorStats(site=site))
        if self.pdu_poller is None:
            self.pdu_poller = PduPoller(self.settings)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        *,
        sites: dict[Target, str] | None = None,
        polling: PollerSettings | None = None,
    ) -> ServiceRuntime:
        """A runtime for `settings`; `sites` overrides the configured targets (every one at
        collector.site), `polling` the poller's settings from the configuration. MQTT configured means
        reader mode: no polling here whatever the targets."""
        if sites is None:
            configured = [] if settings.mqtt.url is not None else settings.collector.parsed_targets()
            sites = dict.fromkeys(configured, settings.collector.site)
        poller = Poller(polling or poller_settings(settings))
        return cls(settings=settings, engine=engine, sites=sites, poller=poller)

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every polled target, in configuration order."""
        return tuple(self.sites)

    @property
    def mode(self) -> str:
        """`collector` when this process polls devices, else `reader`."""
        return "collector" if self.sites else "reader"

    # ---- snapshot ------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Rebuild the snapshot from the database (inventory included) in a thread, and swap it in."""
        collectors = tuple(self.stats[site] for site in sorted(self.stats))

        def build() -> tuple[dict[str, InventoryRecord], FleetSnapshot]:
            try:
                inventory = load_inventory(self.engine)
                return inventory, build_snapshot(self.engine, inventory, collectors)
            except SQLAlchemyError as exc:
                raise StorageUnavailableError(f"cannot read the fleet: {exc}") from exc

        started = time.perf_counter()
        inventory, snapshot = await asyncio.to_thread(build)
        self.inventory = inventory
        self.live.swap(dataclasses.replace(snapshot, pdus=self.pdus))
        log.info(
            "snapshot %d: %d devices in %.2f s",
            self.live.version,
            len(snapshot.devices),
            time.perf_counter() - started,
        )

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the first snapshot and start the background tasks of this mode."""
        self._stop = asyncio.Event()
        try:
            await self.refresh()
        except StorageError as exc:
            log.warning("no snapshot yet, database unavailable: %s", exc)
        if self.sites:
            self._tasks.append(asyncio.create_task(self._collect(), name="fleetmon-collector"))
            self._tasks.append(asyncio.create_task(self._maintenance(), name="fleetmon-maintenance"))
        else:
            self._tasks.append(asyncio.create_task(self._read(), name="fleetmon-reader"))
            if self.settings.pdus:
                self._tasks.append(asyncio.create_task(self._read_pdus(), name="fleetmon-pdus"))

    async def stop(self) -> None:
        """Stop the background tasks: the collector finishes and stores its current cycle first."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=self.settings.collector.timeout_s + 30)
        self._tasks.clear()
        if self.pdu_poller is not None:
            self.pdu_poller.close()
        if self.poller is not None:
            await self.poller.aclose()  # its shared web client (the demo's poller too)

    async def _read(self) -> None:
        interval = self.settings.service.snapshot_interval_s
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if self._stop.is_set():
                return
            try:
                await self.refresh()
            except StorageError as exc:
                log.warning("snapshot not refreshed, database unavailable: %s", exc)

    async def poll_pdus(self) -> None:
        """Read every configured PDU now; the next snapshot carries the result."""
        if self.pdu_poller is not None and self.pdu_poller.configured:
            self.pdus = await self.pdu_poller.poll()

    async def _read_pdus(self) -> None:
        """Reader mode: read the PDUs every snmp.interval_s and put them into the current snapshot."""
        interval = self.settings.snmp.interval_s
        while not self._stop.is_set():
            await self.poll_pdus()
            if self.live.version:  # before the first database snapshot, the PDUs wait for it
                self.live.swap(dataclasses.replace(self.live.snapshot, pdus=self.pdus))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)

    def sink(self) -> FleetSink:
        """The collector's sink: batched database writes, then a snapshot rebuild."""
        return FleetSink(SampleStore(self.engine), self)

    async def _collect(self) -> None:
        spool = Spool(self.spool_dir or data_dir() / "spool" / "service", max_bytes=SPOOL_MAX_BYTES)
        loop = CollectLoop(
            self.poll_cycle, self.sink(), spool=spool, interval=self.settings.collector.interval_s
        )
        await loop.run(self._stop)

    async def poll_cycle(self) -> list[Sample]:
        """One poll of every target, recorded in the collector's own metrics (per site)."""
        assert self.poller is not None
        started = time.monotonic()
        c = self.settings.collector
        spread = max(0.0, c.interval_s - c.timeout_s) * 0.5 if self.live.version > 1 else 0.0
        samples, _ = await asyncio.gather(
            self.poller.poll_once(self.targets, spread_s=spread), self.poll_pdus()
        )
        seconds, end = time.monotonic() - started, time.time()
        polled: dict[str, int] = {}
        failures: dict[str, dict[str, int]] = {}
        for target, sample in zip(self.targets, samples, strict=True):
            site = self.sites[target]
            polled[site] = polled.get(site, 0) + 1
            if is_down(sample.state):
                reason = sample.errors[0].code if sample.errors else sample.state.value
                site_failures = failures.setdefault(site, {})
                site_failures[reason] = site_failures.get(reason, 0) + 1
        for site, count in polled.items():
            self.stats[site] = self.stats[site].after_cycle(seconds, count, failures.get(site, {}), end)
        return samples

    async def _maintenance(self) -> None:
        interval = self.settings.service.rollup_interval_s
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if self._stop.is_set():
                return
            await self.maintain()

    async def maintain(self) -> None:
        """Recompute recent rollups and enforce retention (in a thread); logs, never raises storage errors."""
        keep = self.settings.storage.retention_days
        try:
            now = utcnow()
            await asyncio.to_thread(run_rollups, self.engine, now, timedelta(hours=2))
            await asyncio.to_thread(enforce_retention, self.engine, keep, now)
        except (StorageError, SQLAlchemyError) as exc:
            log.warning("rollup/retention job failed: %s", exc)

    async def probe(self, target: Target) -> Sample:
        """Read one device now, through the poller (its semaphore, deadline and identity cache)."""
        assert self.poller is not None
        return await self.poller.poll_device(target)


class FleetSink:
    """Writes a cycle through the batch writer, each sample under its target's site, then refreshes
    the snapshot. A failed commit raises SinkUnavailableError, so the collect loop spools the cycle."""

    def __init__(self, store: SampleStore, runtime: ServiceRuntime) -> None:
        self.writer = BatchWriter(store, max_batch=2000, flush_interval=0.2, retry=False)
        self.writer.start()
        self.runtime = runtime

    async def send(self, samples: Sequence[Sample]) -> None:
        """Commit the samples, then rebuild the snapshot from the database."""
        sites = self.runtime.sites
        fallback = self.runtime.settings.collector.site
        items = [SiteSample(sites.get(Target(s.ip, s.port), fallback), s) for s in samples]
        try:
            await self.writer.write(items)
        except StorageError as exc:
            raise SinkUnavailableError(f"database refused {len(items)} samples: {exc}") from exc
        try:
            await self.runtime.refresh()
        except StorageError as exc:
            log.warning("snapshot not refreshed after the cycle: %s", exc)

    async def close(self) -> None:
        """Write what is queued and stop the writer."""
        await self.writer.close(timeout=30)

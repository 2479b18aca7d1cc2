"""What one service process runs besides HTTP: a few small jobs over one cycle loop, around one fleet state.

The process holds one live FleetState (fleetmon.service.state): samples are applied to it as they
arrive, and each change is published as a new FleetSnapshot, from which /metrics, the API, the pages
and the supply-chain figures derive. Two modes, chosen by the configuration:

- collector (small farm: targets configured, no MQTT). Jobs:
  - poll, every `collector.interval_s`: the poller reads every target (and the PDUs), the samples are
    applied to the state and the snapshot is published at once; the cycle is then handed to
  - persist, a task of its own: the batch writer stores the cycle (through the spool while the
    database refuses), then gives new devices their database ids. The database is the history and
    the other replicas' source, never a round trip before the API shows a cycle.
  - housekeeping, every `service.rollup_interval_s`: rollups and retention, the inventory and rack
    fields read again, the action jobs of collecting processes that died ended (their heartbeat went
    stale: fleetmon.service.jobs) and expired idempotency keys deleted.
- reader (large farm: MQTT configured, or no targets): collectors publish, ingesters write, this
  replica only reads. Jobs:
  - refresh, every `service.snapshot_interval_s`: storage's `newest_since` gives the samples stored
    since the newest one the state holds (minus a lookback, for late deliveries), which are applied;
    every `RESYNC_EVERY` refreshes a full resync also drops devices storage no longer holds and
    catches samples delivered later than the lookback. Rollups and retention belong to a cron job
    (`fleetmon db rollup`, `fleetmon db retention`), not to every replica.
  - pdus, every `snmp.interval_s`, when PDUs are configured.

All database work runs in worker threads (storage raises only its own StorageError tree), and so does
the CPU work of applying a cycle and building its snapshot; the event loop only schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from collectors.actions import ActionCredentials
from collectors.identify import Identity
from collectors.poller import Poller, PollerSettings, cycle_spread_s
from collectors.sample import Sample, utcnow
from collectors.targets import Target
from collectors.workers import PollerPool, auto_workers, poller_for
from fleetmon.collect import SpooledDelivery
from fleetmon.config import Settings
from fleetmon.service.jobs import JobRunner
from fleetmon.service.live import LiveFleet
from fleetmon.service.pdus import PduPoller
from fleetmon.service.power import SitePower, site_power
from fleetmon.service.sites import SiteHealth, SiteWatch, collector_sites
from fleetmon.service.snapshot import CollectorStats, FleetSnapshot, PduView, failure_reasons
from fleetmon.service.state import FleetState
from fleetmon.sinks.database import DbSink
from fleetmon.sinks.spool import Spool
from fleetmon.storage.actions import purge_idempotency
from fleetmon.storage.engine import Engine, data_dir, ensure_schema, ping
from fleetmon.storage.errors import SchemaNotReadyError, StorageError, StorageUnavailableError
from fleetmon.storage.fleet import LatestSample, device_ids, newest_since, stored_racks
from fleetmon.storage.inventory import load_inventory
from fleetmon.storage.retention import enforce_retention
from fleetmon.storage.rollups import run_rollups
from fleetmon.storage.writer import SampleStore
from fleetmon.supplychain.origin import InventoryRecord

log = logging.getLogger(__name__)

SPOOL_MAX_BYTES = 256 * 1024 * 1024
RESYNC_EVERY = 20  # reader mode: every 20th refresh reads every device's newest sample again
LOOKBACK = timedelta(minutes=5)  # reader mode: how late a stored sample may arrive and still be seen
SCHEMA_RETRY_S = 2.0  # while the database was unreachable at start: how often to try preparing it
PERSIST_QUEUE = 4  # cycles waiting for the database; a full queue holds the next poll back


def poller_settings(settings: Settings) -> PollerSettings:
    """The poller's explicit limits and credential profiles from the configuration."""
    c = settings.collector
    return PollerSettings(
        concurrency=c.concurrency,
        deadline_s=c.timeout_s,
        connect_s=c.connect_timeout_s,
        credentials=settings.credential(c.credential_profile),
        vnish_credentials=settings.credential(c.vnish_credential_profile),
        braiins_credentials=settings.credential(c.braiins_credential_profile),
    )


@dataclass
class Job:
    """One periodic job of the cycle loop: `run` every `interval_s`, the first time after `first_s`."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]
    first_s: float = 0.0


async def run_jobs(jobs: Sequence[Job], stop: asyncio.Event) -> None:
    """The one cycle loop: run each job when it is due, one at a time, until `stop` is set.

    A job that overruns its interval runs again at once rather than piling up; a job that raises is
    logged and runs again at its next time (one failing job never stops the others).
    """
    loop = asyncio.get_running_loop()
    due = {job.name: loop.time() + job.first_s for job in jobs}
    while not stop.is_set():
        job = min(jobs, key=lambda j: due[j.name])
        wait = due[job.name] - loop.time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return
        started = loop.time()
        try:
            await job.run()
        except Exception:
            log.exception("job %s failed", job.name)
        due[job.name] = started + job.interval_s


@dataclass
class ServiceRuntime:
    """The engine, the fleet state and its published snapshot, the poller and the jobs of one process.

    `sites` maps each polled target to its site (the configuration gives one site; `fleetmon demo`
    polls several). Empty in reader mode.
    """

    settings: Settings
    engine: Engine
    live: LiveFleet = field(default_factory=LiveFleet)
    fleet: FleetState = field(default_factory=FleetState)
    sites: dict[Target, str] = field(default_factory=dict)
    stats: dict[str, CollectorStats] = field(default_factory=dict)
    poller: Poller | PollerPool | None = None
    spool_dir: Path | None = None  # default: DATA_DIR/spool/service
    pdu_poller: PduPoller | None = None  # default: one over settings.pdus
    pdus: tuple[PduView, ...] = ()  # the latest PDU reads, added to every snapshot
    refreshes: int = 0
    site_watch: SiteWatch | None = None  # reader mode with MQTT: every site's collector status
    schema_ready: bool = True  # False: `serve` started while the database was unreachable
    schema_problem: str | None = None  # why the schema is not ready although the database answers
    fresh_at: float | None = None  # epoch of the last refresh (reader) or poll cycle (collector) done
    _watcher: asyncio.Task[None] | None = None
    _cycle: asyncio.Task[None] | None = None
    _persister: asyncio.Task[None] | None = None
    _persist_queue: asyncio.Queue[list[Sample] | None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _state_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    jobs: JobRunner | None = None  # collector mode: operator actions (fleetmon.service.jobs)
    action_credentials: ActionCredentials | None = None  # None: the configured profiles
    _polled: asyncio.Condition | None = None
    _poll_started: float | None = None  # time.monotonic() at the start of the last cycle applied

    def __post_init__(self) -> None:
        for site in dict.fromkeys(self.sites.values()):
            self.stats.setdefault(site, CollectorStats(site=site))
        if self.pdu_poller is None:
            self.pdu_poller = PduPoller(self.settings)
        if not self.sites and self.settings.mqtt.url is not None and self.site_watch is None:
            self.site_watch = SiteWatch(self.settings.service.site_stale_s)
            self.live.add_scrape_collector(self.site_watch)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        *,
        sites: dict[Target, str] | None = None,
        polling: PollerSettings | None = None,
        action_credentials: ActionCredentials | None = None,
    ) -> ServiceRuntime:
        """A runtime for `settings`; `sites` overrides the configured targets (every one at
        collector.site), `polling` the poller's settings and `action_credentials` the actions' profiles
        from the configuration. MQTT configured means reader mode: no polling here whatever the targets."""
        if sites is None:
            configured = [] if settings.mqtt.url is not None else settings.collector.parsed_targets()
            sites = dict.fromkeys(configured, settings.collector.site)
        workers = settings.collector.workers
        count = workers if isinstance(workers, int) else auto_workers(len(sites))
        poller = poller_for(polling or poller_settings(settings), count)
        return cls(
            settings=settings,
            engine=engine,
            sites=sites,
            poller=poller,
            action_credentials=action_credentials,
        )

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every polled target, in configuration order."""
        return tuple(self.sites)

    @property
    def mode(self) -> str:
        """`collector` when this process polls devices, else `reader`."""
        return "collector" if self.sites else "reader"

    @property
    def inventory(self) -> Mapping[str, InventoryRecord]:
        """The inventory records the fleet state joins devices with, by serial."""
        return self.fleet.inventory

    def site_of(self, sample: Sample) -> str:
        """The site a polled sample belongs to (the configured site for a target not listed)."""
        return self.sites.get(Target(sample.ip, sample.port), self.settings.collector.site)

    # ---- the fleet state and its snapshot --------------------------------------------------------

    def publish(self) -> None:
        """Swap in a snapshot of the fleet state now (on the event loop; the state is not changing)."""
        collectors = tuple(self.stats[site] for site in sorted(self.stats))
        self.live.swap(self.fleet.snapshot(collectors, self.pdus))

    async def _change(self, change: Callable[[], bool], *, publish: bool = False) -> None:
        """Run `change` on the fleet state in a worker thread and, when it says it changed something (or
        `publish`, or nothing was published yet), build the new snapshot there too and swap it in.

        One change at a time (the lock): the state is only ever touched by the thread holding it. An
        unchanged state publishes nothing, so /metrics is not rendered again for the same figures.
        """
        collectors = tuple(self.stats[site] for site in sorted(self.stats))
        pdus = self.pdus
        first = self.live.version == 0
        async with self._state_lock:

            def work() -> FleetSnapshot | None:
                changed = change()
                return self.fleet.snapshot(collectors, pdus) if changed or publish or first else None

            snapshot = await asyncio.to_thread(work)
        if snapshot is not None:
            self.live.swap(snapshot)

    async def apply_cycle(self, samples: Sequence[Sample]) -> None:
        """Apply one poll cycle to the fleet state and publish it."""
        items = [(self.site_of(sample), sample) for sample in samples]
        await self._change(lambda: self.fleet.apply_many(items) > 0, publish=True)  # new cycle counts

    async def refresh(self, *, full: bool = False) -> None:
        """Bring the fleet state up to date with storage and publish it: the inventory and racks, then the
        samples stored since the newest one held (every device's newest when `full`, or while empty).
        Raises StorageError when the database cannot be read; the state then stays as it was."""
        started = time.perf_counter()
        since = None if full or self.fleet.newest_ts is None else self.fleet.newest_ts - LOOKBACK

        def read() -> tuple[dict[str, InventoryRecord], dict[int, str], list[LatestSample]]:
            return (
                load_inventory(self.engine),
                stored_racks(self.engine),
                newest_since(self.engine, since),
            )

        inventory, racks, stored = await asyncio.to_thread(read)

        def change() -> bool:
            changed = self._take_reference(inventory, racks)
            if since is None:
                self.fleet.replace_stored(stored)
                return True
            return self.fleet.apply_stored(stored) > 0 or changed

        await self._change(change)
        self.refreshes += 1
        self.fresh_at = time.time()
        log.info(
            "snapshot %d: %d devices, %d read from storage in %.2f s",
            self.live.version,
            len(self.fleet),
            len(stored),
            time.perf_counter() - started,
        )

    async def _prepare_schema(self) -> None:
        """Create or migrate the schema once the database answers; then load the fleet state."""
        if self.schema_ready:
            return
        try:
            await asyncio.to_thread(ensure_schema, self.engine)
        except StorageUnavailableError as exc:
            log.info("database still unavailable: %s", exc)
            self.schema_problem = None
            return
        except SchemaNotReadyError as exc:
            # PostgreSQL is migrated by `fleetmon db upgrade` (one job, never racing replicas): wait for it.
            if self.schema_problem is None:
                log.warning("database reachable, schema not ready: %s", exc)
            self.schema_problem = str(exc)
            return
        self.schema_ready = True
        self.schema_problem = None
        log.warning("database reachable: schema ready")
        with contextlib.suppress(StorageError):
            await self.refresh(full=True)

    def readiness(self) -> str | None:
        """Why this replica should get no traffic now (None: ready). Reads the database (`SELECT 1`)."""
        if not self.schema_ready:
            return self.schema_problem or "database unreachable since start: schema not prepared yet"
        try:
            ping(self.engine)
        except StorageError as exc:
            return f"database unavailable: {exc}"
        if self.fresh_at is None:
            return "no snapshot yet"
        limit = self.settings.service.ready_max_snapshot_age_s
        if self.sites:
            limit = max(limit, 3 * self.settings.collector.interval_s)
        else:
            limit = max(limit, 3 * self.settings.service.snapshot_interval_s)
        age = time.time() - self.fresh_at
        if age > limit:
            return f"snapshot not refreshed for {age:.0f} s (limit {limit:.0f} s)"
        return None

    async def _refresh_job(self) -> None:
        if not self.schema_ready:
            return
        try:
            await self.refresh(full=self.refreshes % RESYNC_EVERY == 0)
        except StorageError as exc:
            log.warning("fleet state not refreshed, database unavailable: %s", exc)

    async def _give_ids(self, _stored: Sequence[Sample]) -> None:
        """After a commit: devices applied before they were first stored get their database ids."""
        if not self.fleet.missing_ids():
            return
        try:
            ids = await asyncio.to_thread(device_ids, self.engine)
        except StorageError as exc:
            log.warning("device ids not read: %s", exc)
            return
        await self._change(lambda: self.fleet.set_ids(ids) > 0)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the fleet state from storage and start the jobs of this mode (and, while the schema is
        not ready because the database was unreachable at start, a job that prepares it)."""
        self._stop = asyncio.Event()
        if self.schema_ready:
            try:
                await self.refresh(full=True)
            except StorageError as exc:
                log.warning("fleet state starts empty, database unavailable: %s", exc)
        jobs: list[Job] = []
        if not self.schema_ready:
            jobs.append(Job("schema", SCHEMA_RETRY_S, self._prepare_schema))
        if self.sites:
            self._persist_queue = asyncio.Queue(PERSIST_QUEUE)
            self._persister = asyncio.create_task(self._persist(self._persist_queue), name="fleetmon-persist")
            jobs += [
                Job("poll", self.settings.collector.interval_s, self._poll_job),
                Job(
                    "housekeeping",
                    self.settings.service.rollup_interval_s,
                    self.maintain,
                    first_s=self.settings.service.rollup_interval_s,
                ),
            ]
        else:
            interval = self.settings.service.snapshot_interval_s
            jobs.append(Job("refresh", interval, self._refresh_job, first_s=interval))
            if self.settings.pdus:
                jobs.append(Job("pdus", self.settings.snmp.interval_s, self._pdu_job))
        if self.sites:
            self.jobs = JobRunner(
                self.settings,
                self.engine,
                self,
                self.settings.collector.interval_s,
                credentials=self.action_credentials,
            )
            if self.schema_ready:
                await self.jobs.recover()
        self._cycle = asyncio.create_task(run_jobs(jobs, self._stop), name="fleetmon-cycle")
        broker = self.settings.mqtt_broker()
        if self.site_watch is not None and broker is not None:
            client_id = f"fleetmon-api-{socket.gethostname()}-{os.getpid()}"
            self._watcher = asyncio.create_task(
                self.site_watch.run(broker, client_id, self._stop), name="fleetmon-site-status"
            )

    def site_health(self) -> list[SiteHealth]:
        """Each site's collector health now: heard over MQTT (reader mode) or this process's own loop."""
        if self.site_watch is not None:
            return self.site_watch.sites()
        return collector_sites(self.stats.values(), self.settings.service.site_stale_s)

    async def stop(self) -> None:
        """Stop the jobs: the poll in progress finishes, and persist stores (or spools) what it holds."""
        if self.jobs is not None:
            await self.jobs.close()
        self._stop.set()
        grace = self.settings.collector.timeout_s + 30
        if self._cycle is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._cycle, timeout=grace)
        if self._persist_queue is not None and self._persister is not None:
            await self._persist_queue.put(None)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._persister, timeout=grace)
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._watcher, timeout=15)
        self._cycle = self._persister = self._persist_queue = self._watcher = None
        if self.pdu_poller is not None:
            self.pdu_poller.close()
        if self.poller is not None:
            await self.poller.aclose()  # its shared web client (the demo's poller too)

    # ---- collector mode: poll, persist, housekeeping ---------------------------------------------

    async def poll_cycle(self) -> list[Sample]:
        """One poll of every target (and the PDUs), applied to the fleet state and published; returns the
        samples for persisting. Counted in the collector's own metrics, per site."""
        assert self.poller is not None
        started = time.monotonic()
        c = self.settings.collector
        # The first cycle is not spread: the service should show the fleet as soon as it can.
        cycles = sum(stats.cycles for stats in self.stats.values())
        spread = cycle_spread_s(c.interval_s, c.timeout_s) if cycles else 0.0
        samples, _ = await asyncio.gather(
            self.poller.poll_once(self.targets, spread_s=spread), self.poll_pdus()
        )
        seconds, end = time.monotonic() - started, time.time()
        by_site: dict[str, list[Sample]] = {}
        for target, sample in zip(self.targets, samples, strict=True):
            by_site.setdefault(self.sites[target], []).append(sample)
        for site, site_samples in by_site.items():
            count, failures = failure_reasons(site_samples)
            self.stats[site] = self.stats[site].after_cycle(seconds, count, failures, end)
        await self.apply_cycle(samples)
        self.fresh_at = time.time()
        await self._polled_at(started)
        return samples

    # ---- what the action jobs read (fleetmon.service.jobs.FleetAccess) ---------------------------

    def identity_of(self, target: Target) -> Identity | None:
        """The poller's cached identity of a target (None with a poller pool: its workers hold them)."""
        return self.poller.identity_of(target) if isinstance(self.poller, Poller) else None

    def site_power(self, sites: tuple[str, ...]) -> SitePower | None:
        """The sites' power, together, in the current snapshot: reported, else PDU outlet, else estimated."""
        return site_power(self.live.snapshot, sites)

    async def _polled_at(self, started: float) -> None:
        if self._polled is None:
            self._polled = asyncio.Condition()
        async with self._polled:
            self._poll_started = started
            self._polled.notify_all()

    async def wait_for_poll(self, after: float, timeout: float) -> bool:
        """Wait until a poll cycle that started at or after `after` (time.monotonic) is applied and
        published; False when none is within `timeout` seconds."""
        if self._polled is None:
            self._polled = asyncio.Condition()
        polled = self._polled

        def done() -> bool:
            return self._poll_started is not None and self._poll_started >= after

        try:
            async with asyncio.timeout(timeout), polled:
                await polled.wait_for(done)
        except TimeoutError:
            return False
        return True

    async def _poll_job(self) -> None:
        samples = await self.poll_cycle()
        if self._persist_queue is not None:
            await self._persist_queue.put(samples)

    def sink(self) -> DbSink:
        """The persist sink: batched database writes, each sample under its target's site; after each
        commit, new devices get their database ids. A failed commit raises SinkUnavailableError."""
        return DbSink(SampleStore(self.engine), self.site_of, dispose=False, on_stored=self._give_ids)

    async def _persist(self, cycles: asyncio.Queue[list[Sample] | None]) -> None:
        """Store each polled cycle, in order, through the spool while the database refuses it; ends at
        the None that stop() queues behind the last cycle."""
        spool = Spool(self.spool_dir or data_dir() / "spool" / "service", max_bytes=SPOOL_MAX_BYTES)
        delivery = SpooledDelivery(self.sink(), spool)
        try:
            while (samples := await cycles.get()) is not None:
                await delivery.deliver(samples)
        finally:
            await delivery.close()

    async def maintain(self, now: datetime | None = None) -> None:
        """Housekeeping: recompute recent rollups, enforce retention, read the inventory and racks again,
        end the action jobs whose owner died and delete expired idempotency keys (in threads); logs,
        never raises storage errors. `now`: the clock, unless given."""
        keep = self.settings.storage.retention_days
        now = now or utcnow()
        try:
            await asyncio.to_thread(run_rollups, self.engine, now, timedelta(hours=2))
            await asyncio.to_thread(enforce_retention, self.engine, keep, now)
        except StorageError as exc:
            log.warning("rollup/retention job failed: %s", exc)
        if self.jobs is not None:
            await self.jobs.end_stale(now)
        ttl = timedelta(seconds=self.settings.actions.idempotency_ttl_s)
        try:
            purged = await asyncio.to_thread(purge_idempotency, self.engine, now - ttl)
        except StorageError as exc:
            log.warning("expired idempotency keys not purged: %s", exc)
        else:
            if purged:
                log.info("%d expired idempotency key(s) purged", purged)
        try:
            await self.reload_reference()
        except StorageError as exc:
            log.warning("inventory not reloaded: %s", exc)

    async def reload_reference(self) -> None:
        """Read the inventory and the rack fields again and re-join the fleet with them; StorageError."""

        def read() -> tuple[dict[str, InventoryRecord], dict[int, str]]:
            return load_inventory(self.engine), stored_racks(self.engine)

        inventory, racks = await asyncio.to_thread(read)

        await self._change(lambda: self._take_reference(inventory, racks))

    def _take_reference(self, inventory: dict[str, InventoryRecord], racks: dict[int, str]) -> bool:
        """Give the fleet state a new inventory and rack fields (re-joining every device when the inventory
        changed); True when either changed. Call from `_change` only."""
        changed = racks != self.fleet.racks
        self.fleet.racks = racks
        if inventory != self.fleet.inventory:
            self.fleet.set_inventory(inventory)
            changed = True
        return changed

    # ---- PDUs and /probe -------------------------------------------------------------------------

    async def poll_pdus(self) -> None:
        """Read every configured PDU now; the next snapshot carries the result."""
        if self.pdu_poller is not None and self.pdu_poller.configured:
            self.pdus = await self.pdu_poller.poll()

    async def _pdu_job(self) -> None:
        """Reader mode: read the PDUs and publish them with the current fleet state."""
        await self.poll_pdus()
        async with self._state_lock:
            self.publish()

    async def probe(self, target: Target) -> Sample:
        """Read one device now, through the poller (its semaphore, deadline and identity cache)."""
        assert self.poller is not None
        return await self.poller.poll_device(target)

"""The supply-chain service functions behind the routes and `fleetmon report supply-chain --db`.

Everything reads the units of one snapshot (fleetmon.service.units). Reports cost real CPU at 10,000
devices (one rate lookup per unit and date, several groupings), so each is computed once per
snapshot version and argument set, in the worker thread of the first request that needs it
(concurrent requests for the same report wait for that one computation), and kept in a small
per-version cache: a new snapshot drops the cache with the version it belongs to.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from fleetmon.service.live import LiveFleet
from fleetmon.service.snapshot import FleetSnapshot
from fleetmon.service.state import fleet_from_database
from fleetmon.service.supplychain_schemas import (
    CatalogModelOut,
    ExposureOut,
    ExposureSummaryOut,
    HashShareOut,
    OriginOut,
    ScenarioOut,
)
from fleetmon.service.units import snapshot_units, view_units
from fleetmon.storage.engine import Engine
from fleetmon.storage.inventory import StoredInventory, upsert_inventory
from fleetmon.supplychain.analytics import (
    Basis,
    Dimension,
    HashShare,
    OriginQuality,
    hash_share,
    origin_quality,
)
from fleetmon.supplychain.catalog import Catalog, shipped_catalog
from fleetmon.supplychain.exposure import FleetExposure, fleet_exposure
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.origin import InventoryParse
from fleetmon.supplychain.report import (
    SupplyChainReport,
    build_report,
    exposure_json,
    hash_share_json,
    origin_json,
    unit_exposure_json,
)
from fleetmon.supplychain.scenarios import ScenarioResult, parse_scenario, run_scenario
from fleetmon.supplychain.tariffs import Schedule, shipped_schedule

T = TypeVar("T")
CACHE_ENTRIES = 32
"""Reports kept per snapshot version (hash-share per dimension set and basis, exposure per date)."""


class ReportCache:
    """The units of one snapshot and the reports computed from them, bounded, single-flight per key."""

    def __init__(self, snapshot: FleetSnapshot, schedule: Schedule, catalog: Catalog) -> None:
        self.snapshot = snapshot
        self.schedule = schedule
        self.catalog = catalog
        self.units: list[FleetUnit] = snapshot_units(snapshot)
        self.computed = 0  # how many reports were computed (tests read it to see the cache work)
        self._values: OrderedDict[Hashable, object] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def snapshot_at(self) -> datetime | None:
        """When the snapshot was taken; None before the first one."""
        return datetime.fromtimestamp(self.snapshot.taken_at, UTC) if self.snapshot.taken_at else None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value under `key`, computed by the first caller while later callers wait for it."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]  # type: ignore[return-value]
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]  # type: ignore[return-value]
            value = compute()
            with self._lock:
                self.computed += 1
                self._values[key] = value
                while len(self._values) > CACHE_ENTRIES:
                    self._values.popitem(last=False)
                self._locks.pop(key, None)
            return value


def report_cache(live: LiveFleet) -> ReportCache:
    """The report cache of the live snapshot's version (created at the first supply-chain request)."""
    return live.derived(
        "supply_chain_reports", lambda snapshot: ReportCache(snapshot, shipped_schedule(), shipped_catalog())
    )


# ---- hash-share -------------------------------------------------------------------------------------


def _origin_out(quality: OriginQuality) -> OriginOut:
    return OriginOut.model_validate(origin_json(quality))


def share_of(cache: ReportCache, by: Sequence[Dimension], basis: Basis) -> tuple[HashShare, OriginQuality]:
    """The hash-share breakdown and the origin quality of the same hashrate (cached)."""
    return cache.get(
        ("hash_share", tuple(by), basis),
        lambda: (hash_share(cache.units, by, basis, cache.catalog), origin_quality(cache.units, basis)),
    )


def hash_share_out(cache: ReportCache, by: Sequence[Dimension], basis: Basis) -> HashShareOut:
    """The API answer of GET supply-chain/hash-share."""
    share, quality = share_of(cache, by, basis)
    return HashShareOut.model_validate(
        {**hash_share_json(share), "snapshot_at": cache.snapshot_at, "origin": origin_json(quality)}
    )


# ---- tariff exposure ------------------------------------------------------------------------------


def exposure_at(cache: ReportCache, as_of: date) -> FleetExposure:
    """Fleet tariff exposure at a date (cached per date)."""
    return cache.get(
        ("exposure", as_of), lambda: fleet_exposure(cache.units, cache.schedule, as_of, cache.catalog)
    )


def exposure_out(cache: ReportCache, as_of: date, limit: int, offset: int) -> ExposureOut:
    """The API answer of GET supply-chain/tariff-exposure: fleet figures and one page of units, the
    largest replacement duty first (units without one last, by unit key)."""
    exposure = exposure_at(cache, as_of)
    ranked = cache.get(
        ("exposure_ranked", as_of),
        lambda: sorted(exposure.units, key=lambda u: (-(u.replacement_duty_usd or -1.0), u.unit)),
    )
    page = ranked[offset : offset + limit]
    return ExposureOut.model_validate(
        {
            **exposure_json(exposure, per_unit=False),
            "snapshot_at": cache.snapshot_at,
            "units": [unit_exposure_json(u) for u in page],
            "units_total": len(ranked),
            "limit": limit,
            "offset": offset,
        }
    )


def full_report(cache: ReportCache, as_of: date) -> SupplyChainReport:
    """Every analytic at a date, as `fleetmon report supply-chain` prints it (cached per date)."""
    return cache.get(
        ("report", as_of), lambda: build_report(cache.units, cache.schedule, as_of, cache.catalog)
    )


# ---- scenarios ------------------------------------------------------------------------------------


def scenario_result(cache: ReportCache, data: dict[str, object], as_of: date) -> ScenarioResult:
    """Run a what-if scenario on the snapshot's fleet; raises ScenarioError for an inconsistent one."""
    return run_scenario(cache.units, cache.schedule, as_of, parse_scenario(data, "request"), cache.catalog)


def scenario_out(cache: ReportCache, result: ScenarioResult) -> ScenarioOut:
    """The API answer of POST supply-chain/scenarios."""
    return ScenarioOut(
        snapshot_at=cache.snapshot_at,
        scenario=result.scenario.name,
        moved_ths=result.moved_ths,
        before=ExposureSummaryOut.model_validate(exposure_json(result.before, per_unit=False)),
        after=ExposureSummaryOut.model_validate(exposure_json(result.after, per_unit=False)),
        delta=result.delta,
    )


# ---- catalog --------------------------------------------------------------------------------------


def catalog_models(catalog: Catalog, maker: str | None = None) -> list[CatalogModelOut]:
    """Catalog models (of one manufacturer, by name, brand or make, when given)."""
    wanted = catalog.manufacturer(maker) if maker else None
    if maker and wanted is None:
        return []
    out: list[CatalogModelOut] = []
    for spec in catalog.models:
        if wanted is not None and spec.maker != wanted.name:
            continue
        found = catalog.manufacturer(spec.maker)
        out.append(
            CatalogModelOut(
                manufacturer=spec.maker,
                manufacturer_country=found.hq_country if found else None,
                model=spec.model,
                hashrate_ths=spec.hashrate_ths,
                power_w=spec.power_w,
                efficiency_jth=spec.efficiency_jth,
                release_year=spec.release_year,
                typical_price_usd=spec.typical_price_usd,
                price_per_ths=spec.price_per_ths,
                source=spec.source,
            )
        )
    return out


# ---- inventory ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InventoryImport:
    """An import's parse (good records, rejected lines) and what storing the good records did."""

    parsed: InventoryParse
    stored: StoredInventory


def store_parsed_inventory(engine: Engine, parsed: InventoryParse) -> InventoryImport:
    """Store the good records of a parsed inventory in one transaction (rejected lines are reported,
    never stored; the good ones are stored whatever the others did)."""
    stored = upsert_inventory(engine, parsed.records, parsed.source)
    return InventoryImport(parsed=parsed, stored=stored)


# ---- the database path of the CLI -----------------------------------------------------------------


def units_from_database(engine: Engine) -> list[FleetUnit]:
    """The fleet's units as the service would see them now: latest samples applied to a fleet state
    joined with the stored inventory (the same state, for `fleetmon report supply-chain --db`)."""
    return view_units(fleet_from_database(engine).views())

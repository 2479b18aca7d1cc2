"""The live fleet state of one process: the newest sample of every device, enriched once as it arrives.

Samples are applied as they arrive: from the poller in collector mode, from storage's `newest_since`
query in reader mode. Applying a sample joins it with the inventory and the catalog once (a
DeviceView holding its supply-chain FleetUnit); `snapshot()` then turns the state into the immutable
FleetSnapshot that /metrics, the API, the pages and the supply-chain figures all read. The database
is for history and for other replicas, never a round trip inside one process.

A sample older than the one held for its device is ignored (a spool replay, a late MQTT message), so
applying is idempotent and order-insensitive. Not thread-safe: the runtime applies on its event loop.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from collectors.sample import Sample
from fleetmon.service.snapshot import (
    CollectorStats,
    DeviceView,
    FleetSnapshot,
    PduView,
    SupplyChainFigures,
)
from fleetmon.service.units import ORIGIN_SOURCE, device_unit, view_units
from fleetmon.storage.engine import Engine
from fleetmon.storage.fleet import LatestSample, latest_samples
from fleetmon.storage.inventory import load_inventory
from fleetmon.supplychain.analytics import Basis, Dimension, china_dependency, hash_share, origin_quality
from fleetmon.supplychain.catalog import Catalog, shipped_catalog
from fleetmon.supplychain.exposure import fleet_exposure
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.origin import InventoryRecord
from fleetmon.supplychain.tariffs import Schedule, shipped_schedule

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str, int]
"""A device's identity: (site, ip, port), as storage keys it."""

SHARE_DIMENSIONS = (
    Dimension.MANUFACTURER,
    Dimension.MANUFACTURER_COUNTRY,
    Dimension.ASSEMBLY_COUNTRY,
    Dimension.FIRMWARE_VENDOR,
    Dimension.FIRMWARE_PUBLISHER,
    Dimension.FIRMWARE_PUBLISHER_COUNTRY,
)

SortKey = tuple[str, int, int | str, int]


def _sort_key(site: str, sample: Sample) -> SortKey:
    try:
        address = ipaddress.ip_address(sample.ip)
        return (site, address.version, int(address), sample.port)
    except ValueError:
        return (site, 9, sample.ip, sample.port)


def device_view(
    site: str,
    sample: Sample,
    device_id: int | None,
    inventory: Mapping[str, InventoryRecord],
    catalog: Catalog,
) -> DeviceView:
    """One sample joined with the inventory and the catalog: the view every reader of the fleet shows."""
    try:
        unit = device_unit(sample, inventory, catalog)
    except ValueError as exc:  # a value the analytics refuse: show the device, without origin
        log.warning("device %s: no supply-chain view (%s)", sample.ip, exc)
        return DeviceView(site=site, sample=sample, device_id=device_id)
    maker = catalog.manufacturer(unit.manufacturer)
    return DeviceView(
        site=site,
        sample=sample,
        manufacturer=unit.manufacturer,
        manufacturer_country=maker.hq_country if maker else None,
        assembly_country=unit.origin.country,
        origin_source=ORIGIN_SOURCE[unit.origin.basis],
        device_id=device_id,
        unit=unit,
    )


class FleetState:
    """The newest DeviceView of every device, keyed by (site, ip, port)."""

    def __init__(
        self,
        inventory: Mapping[str, InventoryRecord] | None = None,
        *,
        catalog: Catalog | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        self.catalog = catalog or shipped_catalog()
        self.schedule = schedule or shipped_schedule()
        self.inventory: Mapping[str, InventoryRecord] = dict(inventory or {})
        self.racks: dict[int, str] = {}  # device id -> the rack its stored row names
        self._views: dict[DeviceKey, DeviceView] = {}
        self._order: dict[DeviceKey, SortKey] = {}
        self._sorted: tuple[DeviceView, ...] | None = None  # the views in display order, until a change
        self.newest_ts: datetime | None = None  # the newest sample applied: reader mode asks since then

    def __len__(self) -> int:
        return len(self._views)

    def view(self, key: DeviceKey) -> DeviceView | None:
        """The current view of one device, or None."""
        return self._views.get(key)

    def missing_ids(self) -> bool:
        """True when some device has no database id yet (applied before it was first stored)."""
        return any(view.device_id is None for view in self._views.values())

    def apply(self, site: str, sample: Sample, device_id: int | None = None) -> bool:
        """Make `sample` its device's newest; False (nothing changes) when an equal or newer one is held."""
        key = (site, sample.ip, sample.port)
        held = self._views.get(key)
        if held is not None and held.sample.ts >= sample.ts:
            if device_id is not None and held.device_id is None:
                self._put(key, replace(held, device_id=device_id))
            return False
        if device_id is None and held is not None:
            device_id = held.device_id
        self._put(key, device_view(site, sample, device_id, self.inventory, self.catalog))
        if self.newest_ts is None or sample.ts > self.newest_ts:
            self.newest_ts = sample.ts
        return True

    def apply_many(self, items: Iterable[tuple[str, Sample]]) -> int:
        """Apply (site, sample) pairs; returns how many changed the state."""
        return sum(self.apply(site, sample) for site, sample in items)

    def apply_stored(self, stored: Iterable[LatestSample]) -> int:
        """Apply samples read back from storage (with their device ids); returns how many changed it."""
        return sum(self.apply(item.site, item.sample, item.device_id) for item in stored)

    def replace_stored(self, stored: Sequence[LatestSample]) -> None:
        """Become exactly what storage holds: a full resync (devices storage no longer has are dropped)."""
        self._views.clear()
        self._order.clear()
        self._sorted = None
        self.newest_ts = None
        self.apply_stored(stored)

    def set_ids(self, ids: Mapping[DeviceKey, int]) -> int:
        """Give devices without a database id theirs; returns how many got one."""
        given = 0
        for key, view in list(self._views.items()):
            if view.device_id is None and key in ids:
                self._put(key, replace(view, device_id=ids[key]))
                given += 1
        return given

    def set_inventory(self, inventory: Mapping[str, InventoryRecord]) -> None:
        """Take a new inventory (an import): every device is joined with it again."""
        self.inventory = dict(inventory)
        for key, view in list(self._views.items()):
            self._put(key, device_view(view.site, view.sample, view.device_id, self.inventory, self.catalog))

    def _put(self, key: DeviceKey, view: DeviceView) -> None:
        if key not in self._order:
            self._order[key] = _sort_key(key[0], view.sample)
        self._views[key] = view
        self._sorted = None

    def views(self) -> tuple[DeviceView, ...]:
        """Every view, ordered by site then IP address (sorted once per change)."""
        if self._sorted is None:
            order = self._order
            self._sorted = tuple(self._views[key] for key in sorted(self._views, key=order.__getitem__))
        return self._sorted

    def snapshot(
        self,
        collectors: Sequence[CollectorStats] = (),
        pdus: Sequence[PduView] = (),
        *,
        as_of: date | None = None,
    ) -> FleetSnapshot:
        """The immutable picture of the state now, with the fleet's supply-chain figures at `as_of`."""
        taken = time.time()
        views = self.views()
        units = view_units(views)
        figures = supply_chain_figures(units, as_of or date.today(), self.catalog, self.schedule)
        return FleetSnapshot(
            taken_at=taken,
            devices=views,
            collectors=tuple(collectors),
            supply_chain=figures,
            pdus=tuple(pdus),
        )


def supply_chain_figures(
    units: Sequence[FleetUnit], as_of: date, catalog: Catalog, schedule: Schedule
) -> SupplyChainFigures:
    """Hash-shares and HHI of measured hashrate, China dependency, unverified origin, exposure."""
    if not units:
        return SupplyChainFigures()
    shares: dict[str, dict[str, float]] = {}
    hhis: dict[str, float] = {}
    for dim in SHARE_DIMENSIONS:
        share = hash_share(units, [dim], Basis.MEASURED, catalog)
        shares[dim.value] = {group.key: group.share for group in share.groups}
        if share.hhi is not None:
            hhis[dim.value] = share.hhi
    measured = any(u.hashrate_ths for u in units)
    exposure = fleet_exposure(units, schedule, as_of, catalog)
    return SupplyChainFigures(
        hash_share=shares,
        hhi=hhis,
        china_dependency_ratio=(
            _ratio(china_dependency(units, Basis.MEASURED, catalog).share) if measured else None
        ),
        unverified_origin_ratio=(
            _ratio(origin_quality(units, Basis.MEASURED).inferred_or_unknown_share) if measured else None
        ),
        exposure_score=exposure.score.score,
        effective_rate=exposure.hashrate_weighted_rate,
    )


def _ratio(value: float) -> float:
    """A share clamped to [0, 1]: sums of floats land a few ulps outside (1.0000000000000004)."""
    return min(1.0, max(0.0, value))


def fleet_from_database(engine: Engine) -> FleetState:
    """A fleet state of the stored latest samples joined with the stored inventory: what the service
    would hold now (the CLI's `--db` reports read it, so their figures are the API's). Raises
    StorageError when the database cannot be read."""
    fleet = FleetState(load_inventory(engine))
    fleet.apply_stored(latest_samples(engine))
    return fleet

"""Building a FleetSnapshot: the latest sample of every device from the database, joined with the
supply chain (manufacturer, its HQ country, assembly country and how that is known) and the fleet's
supply-chain figures. Runs in a worker thread, never on a request.

The latest sample per device is found with one index seek per device: `samples` is keyed by
(device_id, ts), so `max(ts) WHERE device_id = d.id` reads the last entry of that device's range of
the primary key on SQLite and PostgreSQL alike, however many days of history the table holds (a
window function over the whole table would read all of it). bench/bench_api.py measures it.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, Table, and_, func, select

from collectors.sample import Sample
from fleetmon.service.snapshot import CollectorStats, DeviceView, FleetSnapshot, SupplyChainFigures
from fleetmon.service.units import ORIGIN_SOURCE, device_unit
from fleetmon.storage.export import row_to_sample
from fleetmon.storage.models import Device, SampleRow, Site
from fleetmon.supplychain.analytics import Basis, Dimension, china_dependency, hash_share, origin_quality
from fleetmon.supplychain.catalog import Catalog, shipped_catalog
from fleetmon.supplychain.exposure import fleet_exposure
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.origin import InventoryRecord
from fleetmon.supplychain.tariffs import Schedule, shipped_schedule

log = logging.getLogger(__name__)

SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]
DEVICES: Table = Device.__table__  # type: ignore[attr-defined]
SITES: Table = Site.__table__  # type: ignore[attr-defined]

# `security` (posture findings, collectors.posture) has no column yet: the samples table stores it
# once the service side of issue 18 adds one.
_SAMPLE_FIELDS = tuple(name for name in Sample.model_fields if name not in ("ip", "port", "security"))
SHARE_DIMENSIONS = (
    Dimension.MANUFACTURER,
    Dimension.MANUFACTURER_COUNTRY,
    Dimension.ASSEMBLY_COUNTRY,
    Dimension.FIRMWARE_VENDOR,
)


@dataclass(frozen=True, slots=True)
class LatestSample:
    """One device's newest stored sample, with its database id and site."""

    device_id: int
    site: str
    sample: Sample


def latest_samples(engine: Engine, site: str | None = None) -> list[LatestSample]:
    """The newest sample of every device (of one site, if given)."""
    inner = SAMPLES.alias("newest")
    newest_ts = (
        select(func.max(inner.c.ts))
        .where(inner.c.device_id == DEVICES.c.id)
        .correlate(DEVICES)
        .scalar_subquery()
    )
    query = (
        select(DEVICES.c.id.label("device_id"), SITES.c.name.label("site"), DEVICES.c.ip, DEVICES.c.port)
        .add_columns(*(SAMPLES.c[name] for name in _SAMPLE_FIELDS))
        .select_from(
            DEVICES.join(SITES, SITES.c.id == DEVICES.c.site_id).join(
                SAMPLES, and_(SAMPLES.c.device_id == DEVICES.c.id, SAMPLES.c.ts == newest_ts)
            )
        )
    )
    if site is not None:
        query = query.where(SITES.c.name == site)
    with engine.connect() as conn:
        return [LatestSample(row.device_id, row.site, row_to_sample(row)) for row in conn.execute(query)]


def _sort_key(view: DeviceView) -> tuple[str, int, int | str, int]:
    try:
        address = ipaddress.ip_address(view.sample.ip)
        return (view.site, address.version, int(address), view.sample.port)
    except ValueError:
        return (view.site, 9, view.sample.ip, view.sample.port)


def enrich(
    latest: Sequence[LatestSample],
    inventory: Mapping[str, InventoryRecord],
    *,
    as_of: date,
    catalog: Catalog | None = None,
    schedule: Schedule | None = None,
) -> tuple[tuple[DeviceView, ...], SupplyChainFigures]:
    """DeviceViews (sorted by site then IP) and the fleet's supply-chain figures at `as_of`."""
    cat = catalog or shipped_catalog()
    views: list[DeviceView] = []
    units: list[FleetUnit] = []
    for item in latest:
        try:
            unit = device_unit(item.sample, inventory, cat)
        except ValueError as exc:  # a value the analytics refuse: show the device, without origin
            log.warning("device %s: no supply-chain view (%s)", item.sample.ip, exc)
            views.append(DeviceView(site=item.site, sample=item.sample, device_id=item.device_id))
            continue
        units.append(unit)
        maker = cat.manufacturer(unit.manufacturer)
        views.append(
            DeviceView(
                site=item.site,
                sample=item.sample,
                manufacturer=unit.manufacturer,
                manufacturer_country=maker.hq_country if maker else None,
                assembly_country=unit.origin.country,
                origin_source=ORIGIN_SOURCE[unit.origin.basis],
                device_id=item.device_id,
                unit=unit,
            )
        )
    views.sort(key=_sort_key)
    return tuple(views), supply_chain_figures(units, as_of, cat, schedule or shipped_schedule())


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


def build_snapshot(
    engine: Engine,
    inventory: Mapping[str, InventoryRecord],
    collectors: Sequence[CollectorStats] = (),
    *,
    as_of: date | None = None,
) -> FleetSnapshot:
    """A whole snapshot from the database (latest samples) and the inventory; blocking, for a thread."""
    taken = time.time()
    latest = latest_samples(engine)
    views, figures = enrich(latest, inventory, as_of=as_of or date.today())
    return FleetSnapshot(taken_at=taken, devices=views, collectors=tuple(collectors), supply_chain=figures)

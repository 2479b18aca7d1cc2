"""Named queries that read the fleet back: the newest sample of each device, one device's history, racks.

The newest sample per device is found with one index seek per device: `samples` is keyed by
(device_id, ts), so `max(ts) WHERE device_id = d.id` reads the last entry of that device's range of
the primary key on SQLite and PostgreSQL alike, however many days of history the table holds (a
window function over the whole table would read all of it). `newest_since` first narrows to the
samples stored after a point in time (the `ts` index), so a reader replica refreshing its fleet
state reads and validates only what changed. bench/bench_api.py and bench/bench_service_cycle.py
measure them.

Every function raises StorageUnavailableError (fleetmon.storage.errors), never a SQLAlchemy error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, func, select

from collectors.sample import Sample, State
from fleetmon.storage.engine import Engine
from fleetmon.storage.errors import translated
from fleetmon.storage.export import SAMPLE_FIELDS, row_to_sample
from fleetmon.storage.models import Device, HourlyDeviceRollup, SampleRow, Site

SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]
DEVICES: Table = Device.__table__  # type: ignore[attr-defined]
SITES: Table = Site.__table__  # type: ignore[attr-defined]
HOURLY: Table = HourlyDeviceRollup.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class LatestSample:
    """One device's newest stored sample, with its database id and site."""

    device_id: int
    site: str
    sample: Sample


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One row of `devices` with its site name: identity as of its newest sample."""

    id: int
    site: str
    ip: str
    port: int
    make: str | None
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware_vendor: str | None
    firmware_version: str | None
    hostname: str | None
    mac: str | None
    rack: str | None
    state: State
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class HourlyRow:
    """One device-hour of the hourly rollup."""

    hour: datetime
    samples: int
    up_fraction: float | None
    hashrate_avg_ths: float | None
    hashrate_min_ths: float | None
    hashrate_max_ths: float | None
    power_avg_w: float | None
    temp_max_avg_c: float | None


def newest_since(
    engine: Engine, since: datetime | None = None, site: str | None = None
) -> list[LatestSample]:
    """The newest sample of every device whose newest sample is later than `since` (all devices when
    None), of one site if given."""
    inner = SAMPLES.alias("newest")
    newest_ts = (
        select(func.max(inner.c.ts))
        .where(inner.c.device_id == DEVICES.c.id)
        .correlate(DEVICES)
        .scalar_subquery()
    )
    query = (
        select(DEVICES.c.id.label("device_id"), SITES.c.name.label("site"), DEVICES.c.ip, DEVICES.c.port)
        .add_columns(*(SAMPLES.c[name] for name in SAMPLE_FIELDS))
        .select_from(
            DEVICES.join(SITES, SITES.c.id == DEVICES.c.site_id).join(
                SAMPLES, and_(SAMPLES.c.device_id == DEVICES.c.id, SAMPLES.c.ts == newest_ts)
            )
        )
    )
    if since is not None:
        query = query.where(SAMPLES.c.ts > since)
    if site is not None:
        query = query.where(SITES.c.name == site)
    with translated("cannot read the newest samples"), engine.connect() as conn:
        return [LatestSample(row.device_id, row.site, row_to_sample(row)) for row in conn.execute(query)]


def latest_samples(engine: Engine, site: str | None = None) -> list[LatestSample]:
    """The newest sample of every device (of one site, if given)."""
    return newest_since(engine, None, site)


def device_ids(engine: Engine) -> dict[tuple[str, str, int], int]:
    """Every stored device's id by (site, ip, port)."""
    query = select(DEVICES.c.id, SITES.c.name, DEVICES.c.ip, DEVICES.c.port).join(
        SITES, SITES.c.id == DEVICES.c.site_id
    )
    with translated("cannot read the device ids"), engine.connect() as conn:
        return {(row.name, row.ip, row.port): row.id for row in conn.execute(query)}


def device_record(engine: Engine, device_id: int) -> DeviceRecord | None:
    """The stored device with this id, or None."""
    query = (
        select(DEVICES, SITES.c.name.label("site"))
        .join(SITES, SITES.c.id == DEVICES.c.site_id)
        .where(DEVICES.c.id == device_id)
    )
    with translated("cannot read a device"), engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return DeviceRecord(
        id=row.id,
        site=row.site,
        ip=row.ip,
        port=row.port,
        make=row.make,
        manufacturer=row.manufacturer,
        model=row.model,
        serial=row.serial,
        firmware_vendor=row.firmware_vendor,
        firmware_version=row.firmware_version,
        hostname=row.hostname,
        mac=row.mac,
        rack=row.rack,
        state=State(row.state),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )


def recent_samples(engine: Engine, device_id: int, limit: int) -> list[Sample]:
    """A device's `limit` newest samples, newest first."""
    columns = [c for c in SAMPLES.c if c.name != "device_id"]
    query = (
        select(DEVICES.c.ip, DEVICES.c.port, *columns)
        .join(DEVICES, DEVICES.c.id == SAMPLES.c.device_id)
        .where(SAMPLES.c.device_id == device_id)
        .order_by(SAMPLES.c.ts.desc())
        .limit(limit)
    )
    with translated("cannot read a device's samples"), engine.connect() as conn:
        return [row_to_sample(row) for row in conn.execute(query)]


def hourly_history(engine: Engine, device_id: int, since: datetime) -> list[HourlyRow]:
    """A device's hourly rollups from `since` on, oldest first."""
    query = (
        select(HOURLY).where(HOURLY.c.device_id == device_id, HOURLY.c.hour >= since).order_by(HOURLY.c.hour)
    )
    with translated("cannot read a device's history"), engine.connect() as conn:
        return [
            HourlyRow(
                hour=h.hour,
                samples=h.samples,
                up_fraction=h.up_fraction,
                hashrate_avg_ths=h.hashrate_avg_ths,
                hashrate_min_ths=h.hashrate_min_ths,
                hashrate_max_ths=h.hashrate_max_ths,
                power_avg_w=h.power_avg_w,
                temp_max_avg_c=h.temp_max_avg_c,
            )
            for h in conn.execute(query)
        ]


def stored_racks(engine: Engine) -> dict[int, str]:
    """Device id -> rack, for the devices whose inventory row names a rack."""
    query = select(DEVICES.c.id, DEVICES.c.rack).where(DEVICES.c.rack.is_not(None))
    with translated("cannot read the racks"), engine.connect() as conn:
        return {row.id: row.rack for row in conn.execute(query) if row.rack}

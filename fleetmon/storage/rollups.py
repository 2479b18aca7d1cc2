"""Rollups: hourly per device from the raw samples, daily per fleet group (site x make x model) from those.

Both jobs are idempotent: they recompute whole periods and replace the rows of those periods in one
transaction, so running them twice, or over a period that got late samples, gives the same table.

"Up" means the poll succeeded (any state but `unreachable` or `error`), the meaning of
`fleetmon_miner_up`. Hashrate, power and temperature aggregates ignore missing (null) values.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Float, Table, and_, case, cast, delete, func, select
from sqlalchemy import insert as sa_insert

from collectors.sample import Availability, states_with
from fleetmon.storage.models import DailyGroupRollup, Device, HourlyDeviceRollup, SampleRow

SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]
DEVICES: Table = Device.__table__  # type: ignore[attr-defined]
HOURLY: Table = HourlyDeviceRollup.__table__  # type: ignore[attr-defined]
DAILY: Table = DailyGroupRollup.__table__  # type: ignore[attr-defined]

DOWN_STATES = tuple(state.value for state in states_with(Availability.DOWN))


def floor_hour(ts: datetime) -> datetime:
    """The start of the UTC hour holding `ts`."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_bucket(conn: Connection) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", SAMPLES.c.ts))
    return func.strftime("%Y-%m-%d %H:00:00", SAMPLES.c.ts)


def _as_utc_hour(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rollup_hourly(engine: Engine, since: datetime, until: datetime) -> int:
    """Recompute the hourly device rollups of every hour touching [since, until); returns rows written."""
    start = floor_hour(since)
    end = floor_hour(until)
    if end < until:
        end += timedelta(hours=1)
    up = case((SAMPLES.c.state.in_(DOWN_STATES), 0), else_=1)
    up_value = case((SAMPLES.c.state.in_(DOWN_STATES), None), else_=SAMPLES.c.hashrate_ths)
    with engine.begin() as conn:
        bucket = _hour_bucket(conn).label("hour")
        query = (
            select(
                SAMPLES.c.device_id,
                bucket,
                func.count().label("samples"),
                func.sum(up).label("up_samples"),
                func.avg(up_value).label("hashrate_avg"),
                func.min(up_value).label("hashrate_min"),
                func.max(up_value).label("hashrate_max"),
                func.avg(SAMPLES.c.power_w).label("power_avg"),
                func.avg(SAMPLES.c.temp_max_c).label("temp_max_avg"),
            )
            .where(SAMPLES.c.ts >= start, SAMPLES.c.ts < end)
            .group_by(SAMPLES.c.device_id, bucket)
        )
        rows = [
            {
                "device_id": row.device_id,
                "hour": _as_utc_hour(row.hour),
                "samples": row.samples,
                "up_samples": int(row.up_samples or 0),
                "up_fraction": (row.up_samples or 0) / row.samples,
                "hashrate_avg_ths": _float(row.hashrate_avg),
                "hashrate_min_ths": _float(row.hashrate_min),
                "hashrate_max_ths": _float(row.hashrate_max),
                "power_avg_w": _float(row.power_avg),
                "temp_max_avg_c": _float(row.temp_max_avg),
            }
            for row in conn.execute(query)
        ]
        conn.execute(delete(HOURLY).where(HOURLY.c.hour >= start, HOURLY.c.hour < end))
        if rows:
            conn.execute(sa_insert(HOURLY), rows)
    return len(rows)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def rollup_daily(engine: Engine, first_day: date, last_day: date) -> int:
    """Recompute the daily group rollups for the UTC days first_day..last_day (inclusive)."""
    start = datetime.combine(first_day, time(), tzinfo=UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            day = func.date(func.timezone("UTC", HOURLY.c.hour)).label("day")
        else:
            day = func.date(HOURLY.c.hour).label("day")
        make = func.coalesce(DEVICES.c.make, "").label("make")
        model = func.coalesce(DEVICES.c.model, "").label("model")
        hours = func.count(func.distinct(HOURLY.c.hour))
        query = (
            select(
                day,
                DEVICES.c.site_id,
                make,
                model,
                func.count(func.distinct(HOURLY.c.device_id)).label("devices"),
                func.sum(HOURLY.c.samples).label("samples"),
                func.sum(HOURLY.c.up_samples).label("up_samples"),
                (func.sum(HOURLY.c.hashrate_avg_ths) / cast(hours, Float)).label("hashrate_total"),
                (func.sum(HOURLY.c.power_avg_w) / cast(hours, Float)).label("power_total"),
                func.max(HOURLY.c.temp_max_avg_c).label("temp_max"),
            )
            .select_from(HOURLY.join(DEVICES, DEVICES.c.id == HOURLY.c.device_id))
            .where(and_(HOURLY.c.hour >= start, HOURLY.c.hour < end))
            .group_by(day, DEVICES.c.site_id, make, model)
        )
        rows = [
            {
                "day": row.day if isinstance(row.day, date) else date.fromisoformat(row.day),
                "site_id": row.site_id,
                "make": row.make,
                "model": row.model,
                "devices": row.devices,
                "samples": int(row.samples),
                "up_fraction": int(row.up_samples) / int(row.samples) if row.samples else 0.0,
                "hashrate_total_avg_ths": _float(row.hashrate_total),
                "power_total_avg_w": _float(row.power_total),
                "temp_max_c": _float(row.temp_max),
            }
            for row in conn.execute(query)
        ]
        conn.execute(delete(DAILY).where(DAILY.c.day >= first_day, DAILY.c.day <= last_day))
        if rows:
            conn.execute(sa_insert(DAILY), rows)
    return len(rows)


def run_rollups(engine: Engine, now: datetime, lookback: timedelta = timedelta(hours=2)) -> tuple[int, int]:
    """The periodic job: recompute the hourly rollups of the last `lookback` and the days they touch."""
    since = now - lookback
    hourly = rollup_hourly(engine, since, now)
    daily = rollup_daily(engine, since.astimezone(UTC).date(), now.astimezone(UTC).date())
    return hourly, daily

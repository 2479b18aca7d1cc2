"""Rollups and retention on both dialects: correct figures, idempotent, history kept after deletion."""

from __future__ import annotations

from datetime import timedelta

import fleet_samples
import pytest
from fleet_samples import T0, make_sample
from sqlalchemy import func, select

from collectors.sample import State
from fleetmon.storage.engine import make_engine
from fleetmon.storage.retention import enforce_retention
from fleetmon.storage.rollups import DAILY, HOURLY, floor_hour, rollup_daily, rollup_hourly, run_rollups
from fleetmon.storage.writer import SAMPLES, SampleStore, SiteSample

HOUR = floor_hour(T0)

# The database fixtures (SQLite and PostgreSQL), shared with the other storage tests.
blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url


def _store_two_hours(url: str) -> None:
    """Device 1: 4 samples in the first hour (one unreachable), 2 in the second; device 2: 2 in the first."""
    samples = [
        make_sample(1, HOUR + timedelta(minutes=1)),
        make_sample(1, HOUR + timedelta(minutes=16)),
        make_sample(1, HOUR + timedelta(minutes=31), state=State.UNREACHABLE),
        make_sample(1, HOUR + timedelta(minutes=46)),
        make_sample(1, HOUR + timedelta(minutes=61)),
        make_sample(1, HOUR + timedelta(minutes=76)),
        make_sample(2, HOUR + timedelta(minutes=2)),
        make_sample(2, HOUR + timedelta(minutes=17)),
    ]
    SampleStore(make_engine(url)).write([SiteSample("north", s) for s in samples])


def _hourly(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        return list(conn.execute(select(HOURLY).order_by(HOURLY.c.device_id, HOURLY.c.hour)))


def test_hourly_rollup_figures_match_the_samples(db_url: str) -> None:
    _store_two_hours(db_url)
    written = rollup_hourly(make_engine(db_url), HOUR, HOUR + timedelta(hours=2))
    assert written == 3
    rows = _hourly(db_url)
    first = rows[0]
    assert (first.device_id, first.hour, first.samples, first.up_samples) == (1, HOUR, 4, 3)
    assert first.up_fraction == pytest.approx(0.75)
    up_rates = [make_sample(1, HOUR + timedelta(minutes=m)).hashrate_ths for m in (1, 16, 46)]
    assert first.hashrate_avg_ths == pytest.approx(sum(up_rates) / 3)
    assert first.hashrate_min_ths == pytest.approx(min(up_rates))
    assert first.hashrate_max_ths == pytest.approx(max(up_rates))
    assert first.temp_max_avg_c == pytest.approx(75.25)
    assert rows[1].hour == HOUR + timedelta(hours=1) and rows[1].samples == 2


def test_rollups_run_twice_give_the_same_rows(db_url: str) -> None:
    _store_two_hours(db_url)
    engine = make_engine(db_url)
    run_rollups(engine, HOUR + timedelta(hours=2), lookback=timedelta(hours=3))
    once = [tuple(r) for r in _hourly(db_url)]
    run_rollups(engine, HOUR + timedelta(hours=2), lookback=timedelta(hours=3))
    assert [tuple(r) for r in _hourly(db_url)] == once
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DAILY)).scalar_one() == 1


def test_daily_group_rollup_sums_devices_of_a_group(db_url: str) -> None:
    _store_two_hours(db_url)
    engine = make_engine(db_url)
    rollup_hourly(engine, HOUR, HOUR + timedelta(hours=2))
    rollup_daily(engine, HOUR.date(), HOUR.date())
    with engine.connect() as conn:
        row = conn.execute(select(DAILY)).one()
    assert (row.day, row.make, row.model, row.devices, row.samples) == (
        HOUR.date(),
        "Antminer",
        "Antminer S19 Pro",
        2,
        8,
    )
    assert row.up_fraction == pytest.approx(7 / 8)


def test_retention_deletes_old_samples_and_keeps_their_rollups(db_url: str) -> None:
    _store_two_hours(db_url)
    engine = make_engine(db_url)
    # Keep one day, measured from a point where only the second hour is younger than a day.
    now = HOUR + timedelta(days=1, hours=1)
    deleted = enforce_retention(engine, keep_days=1, now=now)
    assert deleted == 6  # the first hour: 4 of device 1, 2 of device 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SAMPLES)).scalar_one() == 2
    first_hour = [r for r in _hourly(db_url) if r.hour == HOUR]
    assert sorted(r.samples for r in first_hour) == [2, 4]
    assert enforce_retention(engine, keep_days=1, now=now) == 0

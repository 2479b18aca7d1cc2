"""PostgreSQL's day partitions of `samples` (migration 0006): rows moved, wrong clocks kept, days dropped.

Each test runs in a private schema of the real PostgreSQL (fleet_samples.blank_db_url).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import fleet_samples
import pytest
from fleet_samples import T0, count_rows, make_sample
from sqlalchemy import text

from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.export import iter_samples
from fleetmon.storage.partitions import DEFAULT_PARTITION, day_partition, maintain_partitions
from fleetmon.storage.retention import enforce_retention
from fleetmon.storage.rollups import HOURLY
from fleetmon.storage.writer import SampleStore, SiteSample

blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url

pytestmark = pytest.mark.parametrize("blank_db_url", ["postgresql"], indirect=True)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        return set(names)


def _exported(url: str) -> list[str]:
    return [sample.to_json() for sample in iter_samples(make_engine(url))]


def test_migration_moves_existing_samples_into_partitions_byte_for_byte(blank_db_url: str) -> None:
    engine = make_engine(blank_db_url)
    upgrade(engine, "0004")
    # Samples as revision 0004 stored them: jsonb objects. Written with plain SQL, since today's
    # writer sends the 0006 form.
    samples = [make_sample(3, T0), make_sample(4, T0 + timedelta(days=1, seconds=7.5))]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name, created_at) VALUES ('north', now())"))
        for device, sample in enumerate(samples, start=1):
            conn.execute(
                text(
                    "INSERT INTO devices (id, site_id, ip, port, state, first_seen, last_seen) "
                    "VALUES (:id, 1, :ip, :port, 'mining', now(), now())"
                ),
                {"id": device, "ip": sample.ip, "port": sample.port},
            )
            # `security` came with revision 0007 and `locate` with 0009: a 0004 row has neither column
            # (they read back as [] and null, what these samples hold).
            row = sample.model_dump(mode="json", exclude={"ip", "port", "security", "locate"})
            for name in ("boards", "fans_rpm", "pools", "errors"):
                row[name] = json.dumps(row[name])
            columns = ", ".join(row)
            values = ", ".join(f":{name}" for name in row)
            conn.execute(text(f"INSERT INTO samples (device_id, {columns}) VALUES ({device}, {values})"), row)
    upgrade(engine)
    tables = _tables(blank_db_url)
    assert {day_partition(T0.date()), day_partition(T0.date() + timedelta(days=1))} <= tables
    assert "samples_unpartitioned" not in tables
    assert _exported(blank_db_url) == [s.to_json() for s in samples]
    with engine.connect() as conn:
        where = conn.execute(text("SELECT tableoid::regclass::text FROM samples ORDER BY ts")).scalars()
        assert list(where) == [day_partition(T0.date()), day_partition(T0.date() + timedelta(days=1))]


def test_a_sample_from_a_wrong_clock_is_kept_and_moves_into_its_day(db_url: str) -> None:
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    ahead = now + timedelta(days=400)  # no partition covers it
    samples = [make_sample(1, now), make_sample(2, ahead), make_sample(3, datetime(1999, 1, 1, tzinfo=UTC))]
    assert SampleStore(engine).write([SiteSample("north", s) for s in samples]).inserted == 3
    report = maintain_partitions(engine, now)
    assert report.default_rows == 2
    # The day of the stray sample comes: its partition is made and the row moves out of the default.
    report = maintain_partitions(engine, ahead)
    assert day_partition(ahead.date()) in report.created
    assert report.default_rows == 1
    with engine.connect() as conn:
        where = conn.execute(
            text("SELECT tableoid::regclass::text FROM samples WHERE ts = :ts"), {"ts": ahead}
        ).scalar_one()
    assert where == day_partition(ahead.date())
    assert sorted(_exported(db_url)) == sorted(s.to_json() for s in samples)


def test_maintenance_makes_the_days_ahead_once(db_url: str) -> None:
    engine = make_engine(db_url)
    later = datetime.now(UTC) + timedelta(days=10)
    first = maintain_partitions(engine, later, days_ahead=2)
    assert first.created == [day_partition((later + timedelta(days=n)).date()) for n in range(3)]
    assert maintain_partitions(engine, later, days_ahead=2).created == []


def test_retention_drops_whole_expired_days_and_deletes_only_in_the_boundary_day(db_url: str) -> None:
    engine = make_engine(db_url)
    maintain_partitions(engine, T0, days_ahead=3)
    day0 = T0.replace(hour=0, minute=0, second=0, microsecond=0)
    stored = [
        make_sample(1, day0 + timedelta(hours=h, minutes=m)) for h in (1, 5, 25, 26, 30, 49) for m in (0, 30)
    ]
    SampleStore(engine).write([SiteSample("north", s) for s in stored])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE samples"))
    # Keep one day from day0 + 2 days + 2 h: the cutoff is day0 + 1 day + 2 h.
    removed = enforce_retention(engine, keep_days=1, now=day0 + timedelta(days=2, hours=2))
    tables = _tables(db_url)
    assert day_partition(day0.date()) not in tables  # dropped whole
    assert day_partition(day0.date() + timedelta(days=1)) in tables  # the boundary day stays
    assert removed == 4 + 2  # day 0 (4, counted from the statistics), and 01:00-01:30 of day 1
    kept = sorted(s.to_json() for s in stored if s.ts >= day0 + timedelta(days=1, hours=2))
    assert sorted(_exported(db_url)) == kept
    assert count_rows(db_url) == 6
    with engine.connect() as conn:
        hours = conn.execute(text(f"SELECT count(*) FROM {HOURLY.name} WHERE samples = 2")).scalar_one()
    assert hours == 3  # the rollups of the dropped and deleted hours are kept


def test_the_default_partition_exists_so_no_time_is_refused(db_url: str) -> None:
    assert DEFAULT_PARTITION in _tables(db_url)


def test_positional_boards_and_pools_give_back_every_float_and_null(db_url: str) -> None:
    base = make_sample(7, T0)
    awkward = [0.1 + 0.2, 1e-07, 1.7976931348623157e308, 5e-324, 36.0, -0.0, 123456789.12345679]
    boards = [
        base.boards[0].model_copy(update={"hashrate_ths": value, "temp_c": None, "chips": None})
        for value in awkward
    ]
    pools = [
        base.pools[0].model_copy(update={"user": None, "accepted": 2**63 - 1, "url": "stratum+tcp://é/✓"})
    ]
    sample = base.model_copy(update={"boards": boards, "pools": pools, "ts": datetime.now(UTC)})
    SampleStore(make_engine(db_url)).write([SiteSample("north", sample)])
    assert _exported(db_url) == [sample.to_json()]

"""Storage on both dialects: migrations, idempotent writes, export round trip, batch writer, errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import fleet_samples
import pytest
from fleet_samples import T0, count_rows, fleet_cycle, make_sample
from sqlalchemy import inspect, select

from collectors.sample import State
from fleetmon.storage import errors as storage_errors
from fleetmon.storage.batch import BatchWriter
from fleetmon.storage.engine import current_revision, ensure_schema, head_revision, make_engine, upgrade
from fleetmon.storage.errors import SchemaNotReadyError, StorageError, StorageUnavailableError
from fleetmon.storage.export import iter_samples
from fleetmon.storage.models import Device
from fleetmon.storage.writer import DEVICES, SampleStore, SiteSample

# The database fixtures (SQLite and PostgreSQL), shared with the other storage tests.
blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url


def test_upgrade_creates_every_table_on_a_blank_database(blank_db_url: str) -> None:
    engine = make_engine(blank_db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)  # a second run is a no-op
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {
        "sites",
        "devices",
        "samples",
        "origin_records",
        "rollup_device_hourly",
        "rollup_group_daily",
    } <= tables
    engine.dispose()


def test_sqlite_database_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()


def test_writing_the_same_batch_twice_stores_each_sample_once(db_url: str) -> None:
    store = SampleStore(make_engine(db_url))
    batch = [SiteSample("north", sample) for sample in fleet_cycle(50, 0) + fleet_cycle(50, 1)]
    first = store.write(batch)
    again = store.write(batch)
    assert (first.inserted, again.inserted) == (100, 0)
    assert again.duplicates == 100
    assert count_rows(db_url) == 100
    assert count_rows(db_url, DEVICES) == 50


# The COPY staging table exists on PostgreSQL only: run on that dialect alone rather than skip on SQLite.
@pytest.mark.parametrize("blank_db_url", ["postgresql"], indirect=True)
def test_a_batch_refused_by_postgresql_leaves_the_store_writing(db_url: str) -> None:
    store = SampleStore(make_engine(db_url))
    # 1,100 stored samples ahead in a batch make its direct COPY fail on them (COPY inserts in
    # buffers of 1,000 rows, before it reaches the bad row), so the batch goes through the stage.
    stored = [SiteSample("north", s) for s in fleet_cycle(1100, 0)]
    second, third = (make_sample(1000, T0 + timedelta(seconds=n)) for n in (2, 3))
    # PostgreSQL's jsonb refuses \u0000, which JSON (and a broken firmware's pool URL) allows.
    pools = [second.pools[0].model_copy(update={"url": "stratum+tcp://pool\x00"})]
    bad = second.model_copy(update={"pools": pools})
    assert store.write(stored).inserted == 1100
    # This batch creates the stage on its connection, and its rollback takes the stage away again;
    # the next batch that needs it must not count on it.
    refused = store.write(
        [*stored, SiteSample("north", bad)]
    )  # kept as a dead letter, see test_storage_rejected
    assert (refused.inserted, refused.rejected) == (0, 1)
    assert store.write([*stored, SiteSample("north", third)]).inserted == 1
    assert store.write([SiteSample("north", second)]).inserted == 1
    assert count_rows(db_url) == 1102


def test_a_fresh_store_absorbs_samples_an_earlier_process_wrote(db_url: str) -> None:
    batch = [SiteSample("north", sample) for sample in fleet_cycle(20, 0)]
    SampleStore(make_engine(db_url)).write(batch)
    # A restarted ingester has empty caches; the database constraint alone must absorb the redelivery.
    result = SampleStore(make_engine(db_url)).write(batch + batch)
    assert result.inserted == 0
    assert count_rows(db_url) == 20


def test_export_rebuilds_exactly_the_json_the_collector_produced(db_url: str) -> None:
    produced = fleet_cycle(30, 0) + fleet_cycle(30, 1)
    SampleStore(make_engine(db_url)).write([SiteSample("north", s) for s in produced])
    exported = list(iter_samples(make_engine(db_url)))
    assert sorted(s.to_json() for s in exported) == sorted(s.to_json() for s in produced)
    # The unreachable ones really are in there, with their error and no zeros.
    down = [s for s in exported if s.state is State.UNREACHABLE]
    assert down and all(s.hashrate_ths is None and s.errors for s in down)


def test_export_keeps_ip_and_ts_strings_of_other_ports_and_timezones(db_url: str) -> None:
    from datetime import timezone

    local = T0.astimezone(timezone(timedelta(hours=8)))
    produced = [make_sample(7, local, port=4029), make_sample(7, T0.replace(microsecond=0))]
    SampleStore(make_engine(db_url)).write([SiteSample("north", s) for s in produced])
    lines = {s.to_json() for s in iter_samples(make_engine(db_url))}
    assert lines == {s.to_json() for s in produced}
    assert any('"ts":"2026-11-24T12:00:00.000000Z"' in line for line in lines)


def test_export_of_one_site_leaves_out_the_others(db_url: str) -> None:
    store = SampleStore(make_engine(db_url))
    store.write([SiteSample("north", s) for s in fleet_cycle(5, 0)])
    store.write([SiteSample("south", s) for s in fleet_cycle(3, 0)])
    assert len(list(iter_samples(make_engine(db_url), site="south"))) == 3


def test_device_row_follows_the_newest_sample_and_keeps_identity_when_down(db_url: str) -> None:
    store = SampleStore(make_engine(db_url), last_seen_resolution=timedelta(0))
    up = make_sample(3, T0)
    down = make_sample(3, T0 + timedelta(seconds=30), state=State.UNREACHABLE)
    store.write([SiteSample("north", up)])
    store.write([SiteSample("north", down)])
    store.write([SiteSample("north", up)])  # a late replay of the older sample changes nothing
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(DEVICES)).one()
    assert row.state == "unreachable"
    assert row.serial == up.serial and row.make == "Antminer" and row.manufacturer == "Bitmain"
    assert row.first_seen == T0 and row.last_seen == down.ts


def test_device_state_change_is_written_even_within_the_last_seen_resolution(db_url: str) -> None:
    store = SampleStore(make_engine(db_url))  # default resolution: 60 s
    store.write([SiteSample("north", make_sample(3, T0))])
    store.write([SiteSample("north", make_sample(3, T0 + timedelta(seconds=5), state=State.UNREACHABLE))])
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(Device.__table__.c.state)).scalar_one() == "unreachable"


def test_unreachable_database_raises_storage_unavailable(tmp_path) -> None:
    store = SampleStore(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"))
    with pytest.raises(StorageUnavailableError):
        store.write([SiteSample("north", make_sample(1, T0))])


def test_ensure_schema_refuses_an_unmigrated_postgresql(blank_db_url: str) -> None:
    engine = make_engine(blank_db_url)
    if engine.dialect.name == "sqlite":
        ensure_schema(engine)  # SQLite is upgraded in place
        assert current_revision(engine) == head_revision()
    else:
        with pytest.raises(SchemaNotReadyError, match="fleetmon db upgrade"):
            ensure_schema(engine)


def test_every_storage_exception_is_under_storage_error() -> None:
    for name in dir(storage_errors):
        obj = getattr(storage_errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, StorageError)


async def test_batch_writer_flushes_by_size_and_by_interval(db_url: str) -> None:
    store = SampleStore(make_engine(db_url))
    async with BatchWriter(store, max_batch=40, flush_interval=0.2) as writer:
        await writer.write([SiteSample("north", s) for s in fleet_cycle(100, 0)])
        assert writer.batches == 3  # 40 + 40 by size, the last 20 by interval
        assert writer.written == 100
        lone = await writer.submit(SiteSample("north", make_sample(500, T0)))
        await asyncio.wait_for(lone, 10)
    assert count_rows(db_url) == 101


async def test_batch_writer_fails_the_futures_when_the_database_is_down() -> None:
    store = SampleStore(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"))
    async with BatchWriter(store, max_batch=10, flush_interval=0.05) as writer:
        with pytest.raises(StorageUnavailableError):
            await writer.write([SiteSample("north", make_sample(1, T0))])

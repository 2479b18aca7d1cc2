"""The live fleet state: samples applied as they arrive, the snapshot derived from it, storage on the side.

A simulated fleet answers over real sockets (127.66.0.0/16); the databases are real (SQLite files and
the PostgreSQL test server) and the "database down" one is a closed port.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import fleet_samples
import pytest
from fleet_samples import T0, make_sample
from pydantic import SecretStr

from collectors.poller import Poller
from collectors.sample import Sample, State
from collectors.simulator.fleet import build_fleet
from collectors.simulator.server import FleetServer
from collectors.targets import Target
from fleetmon.config import CollectorSettings, ServiceSettings, Settings, StorageSettings
from fleetmon.service.live import render_snapshot
from fleetmon.service.runtime import Job, ServiceRuntime, poller_settings, run_jobs
from fleetmon.service.state import FleetState
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.sinks.database import DbSink
from fleetmon.sinks.spool import Spool
from fleetmon.storage import fleet as stored_fleet
from fleetmon.storage import keys as stored_keys
from fleetmon.storage.engine import Engine, make_engine, ping, upgrade
from fleetmon.storage.errors import StorageUnavailableError
from fleetmon.storage.inventory import load_inventory
from fleetmon.storage.writer import SampleStore, SiteSample
from fleetmon.supplychain.origin import parse_inventory_csv

db_url = fleet_samples.db_url
blank_db_url = fleet_samples.blank_db_url

DOWN_DB = "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2"
SITE = "state-site"


def _settings(db: str) -> Settings:
    return Settings(
        storage=StorageSettings(url=SecretStr(db)),
        service=ServiceSettings(snapshot_interval_s=3600, rollup_interval_s=3600),
        collector=CollectorSettings(site=SITE, timeout_s=3.0, interval_s=3600),
    )


async def _polled_runtime(db: str, subnet: str, devices: int = 12) -> tuple[ServiceRuntime, FleetServer]:
    fleet = build_fleet(devices, subnet=subnet, seed=5)
    server = FleetServer([item.device for item in fleet])
    await server.start()
    settings = _settings(db)
    sites = {Target(item.device.ip, server.rpc_port): SITE for item in fleet}
    runtime = ServiceRuntime.from_settings(settings, make_engine(db), sites=sites)
    runtime.poller = Poller(dataclasses.replace(poller_settings(settings), concurrency=20))
    return runtime, server


def _shown(runtime: ServiceRuntime) -> dict[str, tuple[State, float | None]]:
    return {v.sample.ip: (v.sample.state, v.sample.hashrate_ths) for v in runtime.live.snapshot.devices}


async def test_a_polled_cycle_is_shown_without_the_database(tmp_path: Path) -> None:
    runtime, server = await _polled_runtime(DOWN_DB, "127.66.1.0/24")
    try:
        samples = await runtime.poll_cycle()
        # The database never answered, yet the snapshot (API, /metrics) shows exactly what was polled.
        assert _shown(runtime) == {s.ip: (s.state, s.hashrate_ths) for s in samples}
        assert runtime.live.snapshot.collectors[0].devices_polled == len(samples)
        body = render_snapshot(runtime.live.snapshot).decode()
        assert body.count("fleetmon_miner_up{") == len(samples)
        # Storing is the side branch: its failure is the spool's business, not the snapshot's.
        runtime.spool_dir = tmp_path / "spool"
        sink = runtime.sink()
        with pytest.raises(SinkUnavailableError):
            await sink.send(samples)
        await sink.close()
        assert _shown(runtime) == {s.ip: (s.state, s.hashrate_ths) for s in samples}
    finally:
        await runtime.stop()
        await server.close()


async def test_devices_get_their_database_ids_once_stored(tmp_path: Path) -> None:
    url = fleet_samples.sqlite_url(tmp_path)
    upgrade_engine = make_engine(url)
    upgrade(upgrade_engine)
    runtime, server = await _polled_runtime(url, "127.66.2.0/24", devices=6)
    try:
        samples = await runtime.poll_cycle()
        shown_before = runtime.live.version
        assert all(view.device_id is None for view in runtime.live.snapshot.devices)
        sink = runtime.sink()
        await sink.send(samples)
        await sink.close()
        ids = stored_fleet.device_ids(runtime.engine)
        assert runtime.live.version > shown_before
        assert {
            (v.site, v.sample.ip, v.sample.port): v.device_id for v in runtime.live.snapshot.devices
        } == ids
    finally:
        await runtime.stop()
        await server.close()
        upgrade_engine.dispose()


def _store(engine: Engine, samples: list[Sample], site: str = SITE) -> None:
    SampleStore(engine).write([SiteSample(site, s) for s in samples])


async def test_reader_refresh_applies_only_what_storage_holds_newer(db_url: str) -> None:
    engine = make_engine(db_url)
    _store(engine, [make_sample(n, T0) for n in range(3)])
    runtime = ServiceRuntime(settings=_settings(db_url), engine=engine)
    await runtime.refresh(full=True)
    assert len(runtime.live.snapshot.devices) == 3
    assert all(v.device_id is not None for v in runtime.live.snapshot.devices)

    newer = make_sample(1, T0 + timedelta(seconds=60), state=State.UNREACHABLE)
    _store(engine, [newer, make_sample(7, T0 + timedelta(seconds=60))])
    # Only the two devices with a newer sample are read back.
    assert len(stored_fleet.newest_since(engine, T0)) == 2
    await runtime.refresh()
    shown = {v.sample.ip: v.sample for v in runtime.live.snapshot.devices}
    assert len(shown) == 4
    assert shown[newer.ip].state is State.UNREACHABLE and shown[newer.ip].hashrate_ths is None
    assert shown[make_sample(0, T0).ip].ts == T0
    # Nothing newer stored: nothing is published, so /metrics is not rendered again for the same state.
    version = runtime.live.version
    await runtime.refresh()
    assert runtime.live.version == version
    engine.dispose()


def test_an_older_sample_never_replaces_a_newer_one() -> None:
    state = FleetState()
    now, before = make_sample(1, T0 + timedelta(seconds=30)), make_sample(1, T0, state=State.ERROR)
    assert state.apply(SITE, now)
    assert not state.apply(SITE, before)
    assert not state.apply(SITE, now)
    [view] = state.views()
    assert view.sample == now
    assert state.newest_ts == now.ts


def test_views_are_ordered_by_site_then_address() -> None:
    state = FleetState()
    for n in (300, 2, 10):
        state.apply("b", make_sample(n, T0))
    state.apply("a", make_sample(400, T0))
    assert [(v.site, v.sample.ip) for v in state.views()] == [
        ("a", "10.0.1.144"),
        ("b", "10.0.0.2"),
        ("b", "10.0.0.10"),
        ("b", "10.0.1.44"),
    ]


def test_a_new_inventory_rejoins_every_device(tmp_path: Path) -> None:
    sample = make_sample(1, T0).model_copy(update={"serial": "SN-STATE-1"})
    state = FleetState()
    state.apply(SITE, sample)
    assert state.views()[0].origin_source != "inventory"
    csv = (
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date\n"
        "SN-STATE-1,Antminer S19 Pro,MY,customs_entry,2100,2024-03-01\n"
    )
    parsed = parse_inventory_csv(csv, "inventory.csv")
    assert parsed.records, parsed.errors
    state.set_inventory({record.serial: record for record in parsed.records})
    [view] = state.views()
    assert (view.origin_source, view.assembly_country) == ("inventory", "MY")


@pytest.mark.parametrize(
    "read",
    [
        ping,
        stored_fleet.newest_since,
        lambda e: stored_fleet.device_record(e, 1),
        lambda e: stored_fleet.recent_samples(e, 1, 5),
        stored_fleet.stored_racks,
        lambda e: stored_keys.key_by_id(e, "abc"),
        load_inventory,
    ],
)
def test_storage_queries_raise_only_storage_errors(read: object) -> None:
    engine = make_engine(DOWN_DB)
    with pytest.raises(StorageUnavailableError) as caught:
        read(engine)  # type: ignore[operator]
    assert caught.value.__cause__ is not None  # raised `from` the database error, never instead of it
    engine.dispose()


async def test_one_failing_job_never_stops_the_others() -> None:
    stop = asyncio.Event()
    runs = {"bad": 0, "good": 0}

    async def bad() -> None:
        runs["bad"] += 1
        raise RuntimeError("broken job")

    async def good() -> None:
        runs["good"] += 1
        if runs["good"] >= 3:
            stop.set()

    await asyncio.wait_for(run_jobs([Job("bad", 0.01, bad), Job("good", 0.02, good)], stop), 30)
    assert runs["good"] == 3 and runs["bad"] >= 2


async def test_db_sink_names_each_samples_site_and_reports_the_commit(db_url: str) -> None:
    told: list[int] = []

    async def on_stored(samples: object) -> None:
        told.append(len(samples))  # type: ignore[arg-type]

    samples = [make_sample(n, T0) for n in range(4)]
    sink = DbSink(
        SampleStore(make_engine(db_url)),
        lambda s: "even" if int(s.ip.rsplit(".", 1)[1]) % 2 == 0 else "odd",
        on_stored=on_stored,
    )
    await sink.send(samples)
    await sink.close()
    assert told == [4]
    engine = make_engine(db_url)
    sites = {item.sample.ip: item.site for item in stored_fleet.latest_samples(engine)}
    assert sites == {s.ip: ("even" if n % 2 == 0 else "odd") for n, s in enumerate(samples)}
    engine.dispose()


async def test_collector_jobs_show_the_cycle_and_spool_it_while_the_database_is_down(tmp_path: Path) -> None:
    runtime, server = await _polled_runtime(DOWN_DB, "127.66.3.0/24", devices=8)
    runtime.spool_dir = tmp_path / "spool"
    try:
        await runtime.start()  # the first refresh fails (logged); the poll job runs at once
        assert await fleet_samples.wait_until(lambda: len(runtime.live.snapshot.devices) == 8)
        await runtime.stop()  # persist stores, or here spools, what it holds before it ends
        spooled = Spool(tmp_path / "spool")
        replayed: list[Sample] = []

        async def take(batch: object) -> None:
            replayed.extend(batch)  # type: ignore[arg-type]

        await spooled.replay(take)
        assert sorted(s.ip for s in replayed) == sorted(v.sample.ip for v in runtime.live.snapshot.devices)
    finally:
        await server.close()

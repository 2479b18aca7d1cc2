"""Support for the storage, MQTT and spool tests: real Sample objects and isolated databases.

Each PostgreSQL database here is a fresh schema (`search_path` in the URL), so parallel runs and
leftovers from a crashed run never collide; it is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select, text

from collectors.sample import Board, DeviceError, Pool, Sample, State
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.writer import SAMPLES

T0 = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)


def make_sample(device: int, when: datetime, *, state: State = State.MINING, port: int = 4028) -> Sample:
    """A fully populated sample of simulated device number `device` at `when`."""
    if state in (State.UNREACHABLE, State.ERROR):
        return Sample(
            ip=f"10.{device // 65536 % 256}.{device // 256 % 256}.{device % 256}",
            port=port,
            ts=when,
            state=state,
            errors=[DeviceError(code="timeout", message="no reply within 3.0 s")],
        )
    return Sample(
        ip=f"10.{device // 65536 % 256}.{device // 256 % 256}.{device % 256}",
        port=port,
        ts=when,
        make="Antminer",
        model="Antminer S19 Pro",
        firmware_vendor="bitmain",
        firmware_version="Thu Dec 14 2023",
        state=state,
        hashrate_ths=100.0 + (device % 17) * 0.731 + when.second / 100,
        expected_hashrate_ths=110.0,
        boards=[
            Board(
                index=i, hashrate_ths=36.6 + i, temp_c=60.5, chip_temp_c=75.25, chips=114, expected_chips=114
            )
            for i in range(3)
        ],
        temp_max_c=75.25,
        temp_avg_c=66.1,
        fans_rpm=[5160, 5040, 5220, 5100],
        power_w=3250.0 + device % 7,
        efficiency_jth=29.55,
        pools=[
            Pool(
                url="stratum+tcp://btc.example.net:3333",
                user="farm.w1",
                status="Alive",
                accepted=1234,
                rejected=5,
                active=True,
            )
        ],
        uptime_s=86400 + device,
        serial=f"JYZZ{device:08d}",
        mac=f"02:00:00:{device // 65536 % 256:02x}:{device // 256 % 256:02x}:{device % 256:02x}",
        hostname=f"miner-{device}",
    )


def fleet_cycle(devices: int, cycle: int, start: datetime = T0, interval: float = 30.0) -> list[Sample]:
    """One poll cycle of a simulated fleet; every 11th device is unreachable in odd cycles."""
    when = start + timedelta(seconds=cycle * interval)
    return [
        make_sample(
            device,
            when + timedelta(microseconds=device * 37),
            state=State.UNREACHABLE if (cycle % 2 and device % 11 == 0) else State.MINING,
        )
        for device in range(devices)
    ]


def sqlite_url(directory: Path) -> str:
    """A fresh SQLite database file in `directory`."""
    return f"sqlite:///{directory / f'fleetmon-{uuid.uuid4().hex[:8]}.db'}"


def with_schema(postgres_url: str, schema: str) -> str:
    """The URL with `search_path` set to `schema`."""
    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}options=-csearch_path%3D{schema}"


def create_schema(postgres_url: str) -> tuple[str, str]:
    """Create a uniquely named schema; returns (schema, URL using it)."""
    schema = f"fm_test_{uuid.uuid4().hex[:10]}"
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, with_schema(postgres_url, schema)


def drop_schema(postgres_url: str, schema: str) -> None:
    """Drop a schema made by create_schema."""
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on each dialect."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    schema, url = create_schema(postgres_url)
    try:
        yield url
    finally:
        drop_schema(postgres_url, schema)


@pytest.fixture
def db_url(blank_db_url: str) -> str:
    """A database at the current schema on each dialect."""
    engine = make_engine(blank_db_url)
    upgrade(engine)
    engine.dispose()
    return blank_db_url


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; returns its last value (no timing asserted)."""
    for _ in range(max(1, int(timeout / step))):
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def files(directory: Path, pattern: str = "*") -> list[Path]:
    """The files in `directory` matching `pattern`, sorted (sync, for use from async tests)."""
    return sorted(directory.glob(pattern))


def count_rows(url: str, table: Table = SAMPLES) -> int:
    """How many rows `table` holds in the database at `url` (samples by default)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()

"""Ingest throughput: the batch writer into SQLite and PostgreSQL, and publish -> broker -> ingest -> commit.

Prints samples per second. Goals (issue 4): >= 20,000/s into SQLite, >= 50,000/s into PostgreSQL.
The samples are fully populated (3 boards, 4 fans, 1 pool), as a stock Antminer S19 Pro reports them.

    .venv/bin/python bench/bench_ingest.py [--devices 2000] [--cycles 25] [--skip-mqtt]

The first lines print the machine's load average: the figures only mean something next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fleet_samples import fleet_cycle  # noqa: E402
from mqtt_broker import Broker, free_port  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from collectors.sample import Sample  # noqa: E402
from fleetmon.sinks.base import SinkUnavailableError  # noqa: E402
from fleetmon.sinks.mqtt import MqttSink  # noqa: E402
from fleetmon.storage.batch import BatchWriter  # noqa: E402
from fleetmon.storage.engine import make_engine, upgrade  # noqa: E402
from fleetmon.storage.writer import SAMPLES, SampleStore, SiteSample  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def samples(devices: int, cycles: int, first_cycle: int = 0) -> list[Sample]:
    """devices x cycles samples, cycle by cycle."""
    return [s for cycle in range(first_cycle, first_cycle + cycles) for s in fleet_cycle(devices, cycle)]


def count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        value = int(conn.execute(select(func.count()).select_from(SAMPLES)).scalar_one())
    engine.dispose()
    return value


async def batch_writer_rate(url: str, items: list[SiteSample], warm: list[SiteSample]) -> tuple[float, float]:
    """(samples/s through BatchWriter, 2,000 per batch; this process's CPU seconds per 10,000 samples),
    after a warm-up batch that creates the devices."""
    store = SampleStore(make_engine(url))
    store.write(warm)
    async with BatchWriter(store, max_batch=2000, flush_interval=0.05, max_queue=50_000) as writer:
        started, cpu = time.perf_counter(), time.process_time()
        await writer.write(items)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert count(url) == len(items) + len(warm), "not every sample was stored"
    return len(items) / elapsed, cpu * 10_000 / len(items)


def pg_schema() -> tuple[str, str]:
    schema = f"fm_bench_{uuid.uuid4().hex[:8]}"
    engine = make_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{POSTGRES}?options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    engine = make_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


async def bench_databases(devices: int, cycles: int) -> None:
    warm = [SiteSample("bench", s) for s in fleet_cycle(devices, 10_000)]
    items = [SiteSample("bench", s) for s in samples(devices, cycles)]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{len(items):,} samples ({devices:,} devices x {cycles} cycles), 2,000 per batch")
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(make_engine(url))
        rate, cpu = await batch_writer_rate(url, items, warm)
        label = "SQLite (WAL, synchronous=NORMAL):"
        print(f"  {label:<33} {rate:10,.0f} samples/s  {cpu:5.2f} s CPU/10k  (goal 20,000)")
    schema, url = pg_schema()
    try:
        upgrade(make_engine(url))
        rate, cpu = await batch_writer_rate(url, items, warm)
        label = "PostgreSQL (binary COPY):"
        print(f"  {label:<33} {rate:10,.0f} samples/s  {cpu:5.2f} s CPU/10k  (goal 50,000)")
    finally:
        drop_pg_schema(schema)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def bench_broker(devices: int, cycles: int) -> None:
    """Collector MqttSink -> private Mosquitto -> one `fleetmon ingest` process -> PostgreSQL."""
    produced = samples(devices, cycles)
    directory = Path(tempfile.mkdtemp(prefix="fleetmon-bench-"))
    broker = Broker(directory, free_port())
    broker.start()
    schema, url = pg_schema()
    upgrade(make_engine(url))
    ingester = start_ingester(broker.url, url)
    try:
        assert ingester.stderr is not None
        for line in ingester.stderr:
            if "ingesting from" in line:
                break
        sink = MqttSink(broker.url, "bench", "bench-collector", timeout=60)
        started = time.perf_counter()
        for start in range(0, len(produced), devices):
            await send_retrying(sink, produced[start : start + devices])
        published = time.perf_counter() - started
        for _ in range(100_000):
            if count(url) >= len(produced):
                break
            await asyncio.sleep(0.05)
        stored = time.perf_counter() - started
        await sink.close()
        print(f"{len(produced):,} samples through the broker (QoS 1, one ingester process, PostgreSQL)")
        print(f"  publish with PUBACK:              {len(produced) / published:10,.0f} samples/s")
        print(f"  publish -> ingest -> commit:      {len(produced) / stored:10,.0f} samples/s")
    finally:
        ingester.terminate()
        ingester.wait(30)
        broker.stop()
        drop_pg_schema(schema)
        shutil.rmtree(directory, ignore_errors=True)


async def send_retrying(sink: MqttSink, batch: list[Sample]) -> None:
    """Send like the collector does: a refused batch is sent again (the collector would spool it)."""
    for attempt in range(50):
        try:
            await sink.send(batch)
            return
        except SinkUnavailableError as exc:
            print(f"  (send refused, retrying: {exc})")
            await asyncio.sleep(0.1 * (attempt + 1))
    raise RuntimeError("the broker kept refusing samples")


def start_ingester(broker_url: str, url: str) -> subprocess.Popen[str]:
    """One `fleetmon ingest` process with verbose logs on a pipe (readiness is its 'ingesting from' line)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fleetmon.cli.main", "-v", "ingest", "--mqtt", broker_url, "--db", url,
         "--group", "bench", "--client-id", "bench-1", "--batch", "2000", "--flush-interval", "0.1"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=25)
    parser.add_argument("--skip-mqtt", action="store_true")
    args = parser.parse_args()
    asyncio.run(bench_databases(args.devices, args.cycles))
    if not args.skip_mqtt:
        asyncio.run(bench_broker(args.devices, max(1, args.cycles // 2)))


if __name__ == "__main__":
    main()

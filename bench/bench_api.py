"""API latency with 10,000 devices and 7 days of samples, on PostgreSQL (default) or SQLite.

The history is generated inside the database (PostgreSQL: generate_series) at one sample per device
every --interval-min minutes (default 10: 1,008 samples per device, 10.08 M rows for 10,000 devices),
plus the hourly rollups of those 7 days. Then the real app is served on a free port in reader mode
(the snapshot built from the database, as an API replica of a large farm does) and timed over HTTP:
- the snapshot build (latest sample per device + supply-chain join), which runs off the request path,
- p50/p95 of GET /api/v1/fleet/summary, GET /api/v1/devices?limit=100 (and with a filter), and
  GET /api/v1/devices/{id} (24 h of rollups, 20 recent samples),
- /metrics: the first scrape of the snapshot (renders) and later, cached scrapes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
import uuid
from collections.abc import Iterator

import httpx
from bench_metrics import serve_in_thread
from sqlalchemy import text

from fleetmon.config import ServiceSettings, Settings, StorageSettings
from fleetmon.service.app import create_app
from fleetmon.service.auth import Role, create_key
from fleetmon.service.live import render_snapshot
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.fleet import latest_samples

MODELS = (
    ("Antminer", "Bitmain", "Antminer S19 Pro", 110.0, 3250.0),
    ("Whatsminer", "MicroBT", "Whatsminer M30S++", 112.0, 3472.0),
    ("Avalon", "Canaan", "Avalon A1566", 185.0, 3420.0),
)
BOARDS = (
    '[{"index":0,"hashrate_ths":36.5,"temp_c":62.0,"chip_temp_c":75.0,"chips":114,"expected_chips":114},'
    '{"index":1,"hashrate_ths":36.6,"temp_c":63.0,"chip_temp_c":76.0,"chips":114,"expected_chips":114},'
    '{"index":2,"hashrate_ths":36.4,"temp_c":61.0,"chip_temp_c":74.0,"chips":114,"expected_chips":114}]'
)
POOLS = (
    '[{"url":"stratum+tcp://pool.example:3333","user":"farm.w1","status":"Alive",'
    '"accepted":1000,"rejected":2,"active":true}]'
)


def fill_postgres(url: str, devices: int, interval_min: int) -> float:
    """Create sites, devices, 7 days of samples and hourly rollups; returns seconds spent."""
    engine = make_engine(url)
    upgrade(engine)

    def pick(column: int) -> str:
        return "CASE i % 3 " + " ".join(f"WHEN {i} THEN '{m[column]}'" for i, m in enumerate(MODELS)) + " END"

    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sites (name, created_at) SELECT 'site-' || s, now() FROM generate_series(0, 3) s"
            )
        )
        conn.execute(
            text(
                "INSERT INTO devices (site_id, ip, port, make, manufacturer, model, firmware_vendor, "
                "firmware_version, serial, state, first_seen, last_seen) "
                f"SELECT st.id, '10.' || (i / 65536) || '.' || (i / 256 % 256) || '.' || (i % 256), 4028, "
                f"{pick(0)}, {pick(1)}, {pick(2)}, 'stock', '2024.1', 'SN' || lpad(i::text, 8, '0'), "
                "'mining', now() - interval '7 days', now() "
                "FROM generate_series(0, :n - 1) i JOIN sites st ON st.name = 'site-' || (i % 4)"
            ),
            {"n": devices},
        )
        conn.execute(
            text(
                "INSERT INTO samples (device_id, ts, state, hashrate_ths, expected_hashrate_ths, "
                "temp_max_c, temp_avg_c, power_w, efficiency_jth, uptime_s, boards, fans_rpm, pools, "
                "errors, make, model, firmware_vendor, firmware_version, serial) "
                "SELECT d.id, t, CASE WHEN (d.id + k) % 53 = 0 THEN 'unreachable' ELSE 'mining' END, "
                "CASE WHEN (d.id + k) % 53 = 0 THEN NULL ELSE 100 + (d.id % 17) * 0.7 END, 110, "
                "70 + (d.id % 13), 65, 3250, 29.5, 86400 + k * 600, CAST(:boards AS jsonb), "
                "'[5400,5460,5520,5580]'::jsonb, CAST(:pools AS jsonb), '[]'::jsonb, d.make, d.model, "
                "d.firmware_vendor, d.firmware_version, d.serial "
                "FROM devices d CROSS JOIN LATERAL ("
                "  SELECT t, row_number() OVER () AS k FROM generate_series("
                "    now() - interval '7 days', now(), make_interval(mins => :step)) t) g"
            ),
            {"boards": BOARDS, "pools": POOLS, "step": interval_min},
        )
        conn.execute(
            text(
                "INSERT INTO rollup_device_hourly (device_id, hour, samples, up_samples, up_fraction, "
                "hashrate_avg_ths, hashrate_min_ths, hashrate_max_ths, power_avg_w, temp_max_avg_c) "
                "SELECT d.id, h, 6, 6, 1.0, 108, 100, 112, 3250, 75 FROM devices d CROSS JOIN "
                "generate_series(date_trunc('hour', now() - interval '7 days'), now(), interval '1 hour') h"
            )
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50={statistics.median(ordered) * 1000:.1f}ms p95={p95 * 1000:.1f}ms"


def timed(client: httpx.Client, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        t0 = time.perf_counter()
        client.get(url).raise_for_status()
        times.append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def scratch_schema(postgres: str, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL schema named `<prefix>_<random>`, yielded as a URL whose search_path is it;
    dropped with everything in it on the way out."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(postgres)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval-min", type=int, default=10, help="minutes between generated samples")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with scratch_schema(args.postgres, "bench_api") as url:
        seconds = fill_postgres(url, args.devices, args.interval_min)
        engine = make_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM samples")).scalar_one()
        print(
            f"api: PostgreSQL, {args.devices} devices, 7 days at {args.interval_min} min = {rows} samples "
            f"(+ hourly rollups), generated in {seconds:.0f} s"
        )
        t0 = time.perf_counter()
        latest = latest_samples(engine)
        print(f"api: latest sample per device ({len(latest)} rows): {time.perf_counter() - t0:.2f}s")
        _, key = create_key(engine, Role.VIEWER, "bench")
        settings = Settings(storage=StorageSettings(), service=ServiceSettings(snapshot_interval_s=3600))
        runtime = ServiceRuntime(settings=settings, engine=engine)
        t0 = time.perf_counter()
        asyncio.run(runtime.refresh())
        built = time.perf_counter() - t0
        print(f"api: snapshot build (latest samples + inventory + supply chain): {built:.2f}s")
        t0 = time.perf_counter()
        render_snapshot(runtime.live.snapshot)
        print(f"api: /metrics cold render: {time.perf_counter() - t0:.2f}s")
        ids = [v.device_id for v in runtime.live.snapshot.devices if v.device_id is not None]
        rng = random.Random(1)
        n = args.requests
        with (
            serve_in_thread(create_app(runtime, manage_runtime=False)) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
        ):
            client.get("/api/v1/fleet/summary")  # the summary is computed once per snapshot: warm it
            cases = {
                "GET /api/v1/fleet/summary": ["/api/v1/fleet/summary"] * n,
                "GET /api/v1/devices?limit=100": [
                    f"/api/v1/devices?limit=100&offset={rng.randrange(0, args.devices, 100)}"
                    for _ in range(n)
                ],
                "GET /api/v1/devices?limit=100&site=site-2&model=Avalon A1566": [
                    "/api/v1/devices?limit=100&site=site-2&model=Avalon%20A1566"
                ]
                * n,
                "GET /api/v1/devices/{id}": [f"/api/v1/devices/{rng.choice(ids)}" for _ in range(n)],
            }
            for label, urls in cases.items():
                print(f"api: {label}: {percentiles(timed(client, urls))} over {n} requests")
            t0 = time.perf_counter()
            client.get("/metrics").raise_for_status()
            first = time.perf_counter() - t0
            later = timed(client, ["/metrics"] * 20)
            print(f"api: /metrics first scrape (renders) {first:.2f}s, cached scrapes {percentiles(later)}")
        engine.dispose()


if __name__ == "__main__":
    main()

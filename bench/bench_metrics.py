"""Render time of /metrics for a large fleet (goal: < 1 s for 10,000 devices), cold and cached.

Builds a snapshot of N realistic samples (3 boards, 4 fans, 2 pools each) and times the collector plus
the text exposition, the work one render does. Then serves that snapshot through the real app on a
free port (uvicorn, an API key checked against a SQLite database) and times scrapes of /metrics over
HTTP: the first scrape of a snapshot version renders (in a worker thread), the later ones return the
cached body.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from prometheus_client import generate_latest

from collectors.sample import Board, Pool, Sample, State
from fleetmon.service.exposition import render
from fleetmon.service.metrics import build_registry
from fleetmon.service.snapshot import CollectorStats, DeviceView, FleetSnapshot

ScrapeTimes = tuple[float, list[float], int]


def fleet(n: int, seed: int = 1) -> FleetSnapshot:
    """A snapshot of n mining devices over 4 sites."""
    rng = random.Random(seed)
    views = []
    for i in range(n):
        boards = [
            Board(
                index=b,
                hashrate_ths=36.0 + rng.random(),
                temp_c=60 + rng.random() * 10,
                chip_temp_c=72 + rng.random() * 10,
                chips=114,
                expected_chips=114,
            )
            for b in range(3)
        ]
        sample = Sample(
            ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
            state=State.MINING,
            make="antminer",
            model="Antminer S19 Pro",
            firmware_vendor="stock",
            firmware_version="Mon Dec 26 2022",
            hashrate_ths=108.0 + rng.random(),
            expected_hashrate_ths=110.0,
            boards=boards,
            temp_max_c=81.0,
            fans_rpm=[5400, 5460, 5520, 5580],
            power_w=3250.0,
            efficiency_jth=29.8,
            pools=[
                Pool(
                    url="stratum+tcp://pool.example:3333",
                    user="farm.w1",
                    status="Alive",
                    accepted=1000 + i,
                    rejected=2,
                    active=True,
                ),
                Pool(
                    url="stratum+tcp://backup.example:443",
                    user="farm.w1",
                    status="Alive",
                    accepted=0,
                    rejected=0,
                    active=False,
                ),
            ],
            uptime_s=86400,
            serial=f"SN{i:08d}",
            mac="AA:BB:CC:DD:EE:FF",
            hostname=f"miner-{i}",
        )
        views.append(
            DeviceView(
                site=f"site-{i % 4}",
                sample=sample,
                manufacturer="Bitmain",
                manufacturer_country="CN",
                assembly_country="MY",
                origin_source="inventory",
            )
        )
    return FleetSnapshot(
        taken_at=time.time(), devices=tuple(views), collectors=(CollectorStats(site="site-0"),)
    )


@contextlib.contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a background thread; yields the base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def scrape_over_http(snap: FleetSnapshot, repeat: int) -> ScrapeTimes:
    """(first scrape s, later scrapes s, body bytes) of /metrics through the real app and an API key."""
    from fleetmon.config import ServiceSettings, Settings, StorageSettings
    from fleetmon.service.app import create_app
    from fleetmon.service.auth import Role, create_key
    from fleetmon.service.live import LiveFleet
    from fleetmon.service.runtime import ServiceRuntime
    from fleetmon.storage.engine import make_engine, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        _, key = create_key(engine, Role.VIEWER, "bench")
        settings = Settings(storage=StorageSettings(), service=ServiceSettings())
        runtime = ServiceRuntime(settings=settings, engine=engine, live=LiveFleet(snap))
        with (
            serve_in_thread(create_app(runtime, manage_runtime=False)) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
        ):
            t0 = time.perf_counter()
            body = client.get("/metrics").content
            first = time.perf_counter() - t0
            later = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                client.get("/metrics").raise_for_status()
                later.append(time.perf_counter() - t0)
        engine.dispose()
    return first, later, len(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=20, help="cached scrapes to time over HTTP")
    args = parser.parse_args()
    snap = fleet(args.devices)
    registry = build_registry(lambda: snap)
    for label, writer in (("fleetmon.render", render), ("client_python.generate_latest", generate_latest)):
        times = []
        body = b""
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            body = writer(registry)
            times.append(time.perf_counter() - t0)
        lines = body.count(b"\n")
        print(
            f"metrics {label}: devices={args.devices} lines={lines} bytes={len(body)} "
            f"median={statistics.median(times):.3f}s min={min(times):.3f}s"
        )
    first, later, size = scrape_over_http(snap, args.scrapes)
    print(
        f"metrics HTTP /metrics: devices={args.devices} bytes={size} first scrape (renders)={first:.3f}s "
        f"cached scrape median={statistics.median(later):.4f}s max={max(later):.4f}s"
    )


if __name__ == "__main__":
    main()

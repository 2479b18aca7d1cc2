"""Render time of /metrics for a large fleet (goal: < 1 s for 10,000 devices), cold and cached.

Builds a snapshot of N realistic samples (3 boards, 4 fans, 2 pools each; one metered PDU outlet per
miner, 40 per PDU, unless --no-pdus) and times one cold render three ways:
- `render`: fleetmon's /metrics path (the per-miner table written straight to text);
- `families`: collect() into client_python families, then fleetmon's generic family writer;
- `generate_latest`: client_python's own writer over the same collector.
Then compresses that body at the served gzip level and at zlib's default (bytes, seconds), serves the
largest snapshot through the real app on a free port (uvicorn, an API key checked against a SQLite
database) and times scrapes of /metrics over HTTP with a real client, plain (`Accept-Encoding:
identity`) and gzip: the first scrape after a new snapshot version renders (and compresses) in a
worker thread, later ones reuse that and add only the process's runtime families. Printed: wire and
body bytes, seconds from request to decoded body. The machine is shared: repeat, read min and median.
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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from prometheus_client import generate_latest

from collectors.sample import Board, Pool, Sample, State
from collectors.snmp.models import AmbientSensor, Inlet, Outlet, PduReading, Vendor
from fleetmon.service.exposition import GZIP_LEVEL, render, write_families
from fleetmon.service.metrics import FleetRegistry, build_registry
from fleetmon.service.snapshot import CollectorStats, DeviceView, FleetSnapshot, PduView

OUTLETS_PER_PDU = 40


def pdus(views: list[DeviceView]) -> tuple[PduView, ...]:
    """One PDU per 40 miners, each miner on its own metered outlet."""
    out = []
    for first in range(0, len(views), OUTLETS_PER_PDU):
        rack = views[first : first + OUTLETS_PER_PDU]
        number = first // OUTLETS_PER_PDU
        reading = PduReading(
            host=f"10.200.{number // 256}.{number % 256}",
            port=161,
            vendor=Vendor.RARITAN,
            outlets=[Outlet(index=i + 1, name=f"outlet {i + 1}", power_w=3200.0) for i in range(len(rack))],
            inlets=[Inlet(index=1, power_w=3200.0 * len(rack))],
            sensors=[AmbientSensor(sensor="1", temperature_c=27.5, humidity_percent=38.0)],
        )
        mapped = {(1, i + 1): v.sample.ip for i, v in enumerate(rack)}
        out.append(
            PduView(f"pdu-{number}", reading.host, rack[0].site, reading=reading, outlet_miners=mapped)
        )
    return tuple(out)


def fleet(n: int, seed: int = 1, with_pdus: bool = True) -> FleetSnapshot:
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
        taken_at=time.time(),
        devices=tuple(views),
        collectors=(CollectorStats(site="site-0"),),
        pdus=pdus(views) if with_pdus else (),
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


@dataclass
class Scrapes:
    """Seconds and wire bytes of /metrics scrapes of one kind (plain or gzip)."""

    first: list[float] = field(default_factory=list)  # the first scrape after a new snapshot
    later: list[float] = field(default_factory=list)  # scrapes of a version already rendered
    wire_bytes: int = 0
    body_bytes: int = 0


def scrape_over_http(snap: FleetSnapshot, repeat: int, firsts: int) -> dict[str, Scrapes]:
    """/metrics through the real app and an API key, plain and gzip: `firsts` first scrapes after a new
    snapshot version (render, and for gzip the compression, included) and `repeat` later scrapes each.
    Times are the client's: request sent to body read and (gzip) decompressed."""
    from fleetmon.config import ServiceSettings, Settings, StorageSettings
    from fleetmon.service.app import create_app
    from fleetmon.service.auth import Role, create_key
    from fleetmon.service.live import LiveFleet
    from fleetmon.service.runtime import ServiceRuntime
    from fleetmon.storage.engine import make_engine, upgrade

    results = {"plain": Scrapes(), "gzip": Scrapes()}
    encodings = {"plain": "identity", "gzip": "gzip"}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        _, key = create_key(engine, Role.VIEWER, "bench")
        settings = Settings(storage=StorageSettings(), service=ServiceSettings())
        live = LiveFleet(snap)
        runtime = ServiceRuntime(settings=settings, engine=engine, live=live)
        with (
            serve_in_thread(create_app(runtime, manage_runtime=False)) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
        ):

            def scrape(kind: str) -> float:
                t0 = time.perf_counter()
                with client.stream(
                    "GET", "/metrics", headers={"Accept-Encoding": encodings[kind]}
                ) as response:
                    response.raise_for_status()
                    body = response.read()  # decoded (gunzipped) as a scraper must
                    seconds = time.perf_counter() - t0
                    results[kind].wire_bytes = response.num_bytes_downloaded
                    results[kind].body_bytes = len(body)
                return seconds

            for _ in range(firsts):
                for kind, scrapes in results.items():
                    # A new version: the next scrape renders (and compresses) again. Swapped between
                    # requests, when no scrape is in flight.
                    live.swap(snap)
                    scrapes.first.append(scrape(kind))
            for kind, scrapes in results.items():
                scrapes.later.extend(scrape(kind) for _ in range(repeat))
        engine.dispose()
    return results


def time_gzip_levels(snap: FleetSnapshot, repeat: int) -> None:
    """Compressing one rendered body at the served level and at zlib's default: bytes and seconds."""
    body = render(build_registry(lambda: snap))
    for level in (GZIP_LEVEL, 6):
        times = []
        size = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            size = len(compressor.compress(body) + compressor.flush())
            times.append(time.perf_counter() - t0)
        print(
            f"metrics gzip level={level}{' (served)' if level == GZIP_LEVEL else ''} body={len(body)} "
            f"compressed={size} ratio={len(body) / size:.1f} "
            f"median={statistics.median(times):.3f}s min={min(times):.3f}s (n={repeat})"
        )


def families_path(registry: FleetRegistry) -> bytes:
    """collect() into client_python families, written by fleetmon's generic writer."""
    out: list[str] = []
    write_families(registry.collect(), out)
    return "".join(out).encode()


def time_writers(snap: FleetSnapshot, repeat: int) -> None:
    """Cold renders of one snapshot by each writer: lines, bytes, median and min."""
    registry = build_registry(lambda: snap)
    writers = (("render", render), ("families", families_path), ("generate_latest", generate_latest))
    for label, writer in writers:
        times = []
        body = b""
        for _ in range(repeat):
            t0 = time.perf_counter()
            body = writer(registry)
            times.append(time.perf_counter() - t0)
        lines = body.count(b"\n")
        print(
            f"metrics {label:16s} devices={len(snap.devices):6d} pdus={len(snap.pdus):4d} "
            f"lines={lines:7d} bytes={len(body):9d} "
            f"median={statistics.median(times):.3f}s min={min(times):.3f}s (n={repeat})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--scrapes", type=int, default=20, help="later (cached) scrapes to time over HTTP")
    parser.add_argument("--firsts", type=int, default=5, help="first scrapes of a new snapshot to time")
    parser.add_argument("--no-pdus", action="store_true", help="leave PDUs out of the snapshot")
    args = parser.parse_args()
    snap = FleetSnapshot(taken_at=0.0)
    for n in args.devices:
        snap = fleet(n, with_pdus=not args.no_pdus)
        time_writers(snap, args.repeat)
    time_gzip_levels(snap, min(args.repeat, 3))
    for kind, scrapes in scrape_over_http(snap, args.scrapes, args.firsts).items():
        print(
            f"metrics HTTP /metrics {kind:5s}: devices={len(snap.devices)} wire_bytes={scrapes.wire_bytes} "
            f"body_bytes={scrapes.body_bytes} first scrape after a new snapshot "
            f"median={statistics.median(scrapes.first):.3f}s max={max(scrapes.first):.3f}s "
            f"(n={args.firsts}); "
            f"later scrapes median={statistics.median(scrapes.later):.4f}s "
            f"max={max(scrapes.later):.4f}s (n={args.scrapes})"
        )


if __name__ == "__main__":
    main()

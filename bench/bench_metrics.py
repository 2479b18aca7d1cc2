"""Render time of /metrics for a large fleet (goal: < 1 s for 10,000 devices).

Builds a snapshot of N realistic samples (3 boards, 4 fans, 2 pools each) and times the collector plus
the text exposition, the work one scrape does.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from prometheus_client import generate_latest

from collectors.sample import Board, Pool, Sample, State
from fleetmon.service.exposition import render
from fleetmon.service.metrics import build_registry
from fleetmon.service.snapshot import CollectorStats, DeviceView, FleetSnapshot


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
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


if __name__ == "__main__":
    main()

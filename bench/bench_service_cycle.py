"""What the service spends per poll cycle besides polling, and how soon a cycle shows, at 10,000 devices.

The service runs in collector mode in a child process, exactly as `fleetmon serve` runs it (the real
runtime, batch writer, database and uvicorn app), except that its poller is replaced by one that hands
over pre-built cycles of real `Sample`s (10,000 by default, three makes, boards, fans and pools each,
serials half of them listed in a stored inventory). Polling a simulated fleet of 10,000 on the same
two cores would cost several CPU seconds per cycle and its noise would drown the figure measured
here: the service's own work once a cycle's samples are in hand.

Per cycle the child reports (wall clock and its process CPU time, all threads):
- cycle end: the poller returned the samples;
- shown: a snapshot holding this cycle was swapped in; the parent then fetches /api/v1/devices and
  /metrics once each, in that order, and checks that they carry this cycle (sample timestamp, cycle
  count);
- next start: the next cycle's poll begins. CPU from cycle end to next start is the service's whole
  cost of one cycle besides polling: storing it, building what the API shows, rendering /metrics once,
  answering those two requests.
The first cycle (devices inserted, caches cold) is reported apart from the steady cycles after it.

`--baseline REV` runs the same measurement, in the same run, against a `git worktree add` of REV in a
temporary directory with this venv's dependencies (PYTHONPATH pointing at that tree), e.g.
`--baseline 2bef6ff` for the service before the fleet state. Defaults to PostgreSQL (a scratch schema,
dropped afterwards); `--sqlite` uses a fresh SQLite file instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# The child: the service of whatever tree is first on PYTHONPATH, fed synthetic cycles. Only names
# that exist in every version measured are used (ServiceRuntime.from_settings, .poller, LiveFleet.swap,
# create_app, create_key); the inventory store moved in the fleet-state change, so both homes are tried.
CHILD = r'''
import asyncio, json, sys, time
from datetime import timedelta

import uvicorn
from pydantic import SecretStr

import fleetmon
from collectors.sample import Board, Pool, Sample, State, utcnow
from collectors.targets import Target
from fleetmon.config import CollectorSettings, ServiceSettings, Settings, StorageSettings
from fleetmon.service.app import create_app
from fleetmon.service.auth import Role, create_key
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.supplychain.origin import parse_inventory_csv

try:
    from fleetmon.storage.inventory import store_inventory
except ImportError:  # a --baseline before the storage package took it (2bef6ff)
    from fleetmon.service.inventory import store_inventory

cfg = json.loads(sys.argv[1])
N, CYCLES, INTERVAL, SITE = cfg["devices"], cfg["cycles"], cfg["interval"], "bench"
MODELS = (
    ("Antminer", "Antminer S19 Pro", "bitmain", 110.0),
    ("Whatsminer", "Whatsminer M30S++", "microbt", 112.0),
    ("Avalon", "Avalon A1566", "canaan", 185.0),
)


def say(*parts):
    print(*parts, flush=True)


def ip(n):
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def sample(n, c, ts):
    make, model, vendor, nominal = MODELS[n % 3]
    if (n + c) % 53 == 0:
        return Sample(ip=ip(n), ts=ts, state=State.UNREACHABLE, serial=None)
    return Sample(
        ip=ip(n), ts=ts, make=make, model=model, firmware_vendor=vendor, firmware_version="2024.1",
        state=State.MINING if n % 29 else State.DEGRADED, hashrate_ths=nominal * (0.9 + (n + c) % 17 / 100),
        expected_hashrate_ths=nominal,
        boards=[Board(index=i, hashrate_ths=nominal / 3, temp_c=60.0 + i, chip_temp_c=74.0 + i, chips=114,
                      expected_chips=114) for i in range(3)],
        temp_max_c=70.0 + n % 13, temp_avg_c=65.0, fans_rpm=[5400, 5460, 5520, 5580], power_w=3250.0 + n % 7,
        efficiency_jth=29.5, uptime_s=86400 + c * 60,
        pools=[Pool(url="stratum+tcp://pool.example:3333", user="farm.w1", status="Alive", accepted=1000 + c,
                    rejected=2, active=True)],
        serial=f"SN{n:08d}",
    )


class CyclePoller:
    """Hands over one pre-built cycle per poll_once; reports cycle ends and next starts."""

    def __init__(self, cycles):
        self.cycles, self.n = cycles, 0

    async def poll_once(self, targets, *, spread_s=0.0):
        if self.n:
            say("next", self.n, time.time(), time.process_time())
        if self.n >= len(self.cycles):
            await asyncio.sleep(3600)
        samples = self.cycles[self.n]
        self.n += 1
        say("end", self.n, time.time(), time.process_time(), samples[0].ts.isoformat())
        return samples

    async def poll_device(self, target):
        raise RuntimeError("no probes in the bench")

    async def aclose(self):
        pass


async def main():
    engine = make_engine(cfg["url"])
    upgrade(engine)
    lines = ["serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date"]
    lines += [f"SN{n:08d},{MODELS[n % 3][1]},MY,customs_entry,2100,2024-03-01" for n in range(0, N, 2)]
    store_inventory(engine, parse_inventory_csv("\n".join(lines) + "\n", "bench.csv").records, "bench.csv")
    _, key = create_key(engine, Role.VIEWER, "bench")
    start = utcnow().replace(microsecond=0)
    cycles = [[sample(n, c, start + timedelta(seconds=c)) for n in range(N)] for c in range(CYCLES)]
    settings = Settings(
        storage=StorageSettings(url=SecretStr(cfg["url"])),
        service=ServiceSettings(port=cfg["port"], snapshot_interval_s=3600, rollup_interval_s=3600),
        collector=CollectorSettings(site=SITE, interval_s=INTERVAL, timeout_s=3.0),
    )
    sites = {Target(ip(n), 4028): SITE for n in range(N)}
    runtime = ServiceRuntime.from_settings(settings, engine, sites=sites)
    runtime.poller = CyclePoller(cycles)
    live, swap = runtime.live, runtime.live.swap

    def reporting_swap(snapshot):
        swap(snapshot)
        done = sum(s.cycles for s in snapshot.collectors)
        if done and snapshot.devices and snapshot.devices[0].sample.ts == cycles[done - 1][0].ts:
            say("shown", done, time.time(), time.process_time())

    live.swap = reporting_swap
    say("ready", key, fleetmon.__file__)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=cfg["port"],
                                           log_level="warning"))
    await server.serve()


asyncio.run(main())
'''


@dataclass
class Cycle:
    """What one cycle cost and how soon it showed."""

    end_wall: float = 0.0
    end_cpu: float = 0.0
    ts: str = ""
    shown_s: float | None = None
    api_s: float | None = None
    metrics_s: float | None = None
    cpu_s: float | None = None


@dataclass
class Run:
    """One tree's figures."""

    label: str
    cycles: dict[int, Cycle] = field(default_factory=dict)
    module: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(label: str, tree: Path, url: str, devices: int, cycles: int, interval: float) -> Run:
    """Run the child service of `tree` through `cycles` cycles and collect its figures."""
    port = free_port()
    cfg = {"devices": devices, "cycles": cycles, "interval": interval, "url": url, "port": port}
    env = dict(os.environ, PYTHONPATH=str(tree))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(cfg)],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    run = Run(label)
    assert child.stdout is not None
    key = ""
    try:
        for line in child.stdout:
            word, *rest = line.split()
            if word == "ready":
                key, run.module = rest
                continue
            n = int(rest[0])
            cycle = run.cycles.setdefault(n, Cycle())
            if word == "end":
                cycle.end_wall, cycle.end_cpu, cycle.ts = float(rest[1]), float(rest[2]), rest[3]
            elif word == "shown" and cycle.shown_s is None:
                cycle.shown_s = float(rest[1]) - cycle.end_wall
                cycle.api_s, cycle.metrics_s = check_shown(port, key, n, cycle)
            elif word == "next":
                cycle.cpu_s = float(rest[2]) - cycle.end_cpu
                if n >= cycles:
                    break
    finally:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(60)
        if child.poll() is None:
            child.kill()
    return run


def check_shown(port: int, key: str, n: int, cycle: Cycle) -> tuple[float, float]:
    """Fetch /metrics and the device list once; seconds from the cycle's end until each answered with it."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
        item = client.get("/api/v1/devices", params={"limit": 1}).json()["items"][0]
        api_s = time.time() - cycle.end_wall
        if not item["last_seen"].startswith(cycle.ts[:19]):
            raise AssertionError(f"the API shows {item['last_seen']}, not cycle {n} ({cycle.ts})")
        body = client.get("/metrics").text  # after the API: this figure includes that request
        metrics_s = time.time() - cycle.end_wall
        marker = f'fleetmon_collector_cycle_duration_seconds_count{{site="bench"}} {n}'
        if marker not in body and f"{marker}.0" not in body:
            raise AssertionError(f"/metrics does not show cycle {n}")
    return api_s, metrics_s


@contextlib.contextmanager
def database(postgres: str | None) -> Iterator[str]:
    """A scratch database: a PostgreSQL schema dropped afterwards, or a SQLite file in a temp dir."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    from bench_api import scratch_schema

    with scratch_schema(postgres, "bench_cycle") as url:
        yield url


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """A detached `git worktree` of `rev` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fleetmon-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def report(run: Run) -> None:
    """Print one tree's figures: the first cycle, then median and max of the steady ones."""
    print(f"{run.label}: service code {run.module}")
    first, steady = run.cycles.get(1), [c for n, c in sorted(run.cycles.items()) if n > 1]

    def figures(name: str, values: list[float | None]) -> str:
        got = [v for v in values if v is not None]
        if not got:
            return f"{name} -"
        return f"{name} median {statistics.median(got):.2f}s max {max(got):.2f}s"

    if first is not None:
        print(
            f"  first cycle: CPU besides polling {first.cpu_s or 0:.2f}s; shown {first.shown_s or 0:.2f}s, "
            f"API {first.api_s or 0:.2f}s, /metrics {first.metrics_s or 0:.2f}s after the cycle's end"
        )
    print(f"  steady cycles ({len(steady)}):")
    print("    " + figures("CPU besides polling per cycle", [c.cpu_s for c in steady]))
    print("    " + figures("cycle end -> snapshot swapped in", [c.shown_s for c in steady]))
    print("    " + figures("cycle end -> API shows it", [c.api_s for c in steady]))
    print("    " + figures("cycle end -> /metrics shows it", [c.metrics_s for c in steady]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=5, help="cycles per tree (the first is reported apart)")
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between cycle starts")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--baseline", metavar="REV", help="also measure this git revision, first")
    args = parser.parse_args()

    print(
        f"service cycle: {args.devices} synthetic real Samples per cycle, {args.cycles} cycles every "
        f"{args.interval:.0f}s, {'SQLite' if args.sqlite else 'PostgreSQL'}, collector mode, "
        f"{os.cpu_count()} CPUs"
    )
    runs = []
    postgres = None if args.sqlite else args.postgres
    if args.baseline:
        with baseline_tree(args.baseline) as tree, database(postgres) as url:
            runs.append(
                measure(f"before ({args.baseline})", tree, url, args.devices, args.cycles, args.interval)
            )
    with database(postgres) as url:
        runs.append(measure("after (this tree)", ROOT, url, args.devices, args.cycles, args.interval))
    for run in runs:
        report(run)


if __name__ == "__main__":
    main()

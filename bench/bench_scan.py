"""`fleetmon scan` of a /16 on loopback, run as a user runs it: seconds, addresses/s, found, missed, phantoms.

A simulator process serves `--devices` miners (the default make and firmware mix) at addresses drawn at
random over the whole range (not packed at its start, so the sweep cannot stop early and a miner can sit
anywhere), one listener per device and port. The benchmark then runs `fleetmon scan RANGE --out FILE`
(the CLI, a subprocess, its default concurrency and deadlines unless given) and compares what it found
with the simulator's manifest:
- found: devices the scan reported that the simulator serves;
- missed: devices the simulator serves that the scan did not report;
- phantoms: addresses the scan reported where no device listens.
It also prints how many the scan could not identify (found, but make None).

On loopback a closed port answers RST at once, so the figure measures fleetmon's per-address cost;
on a farm network absent hosts time out and the concurrency (`--concurrency`) sets the pace.

    .venv/bin/python bench/bench_scan.py                       # 2,000 miners over 127.70.0.0/16
    .venv/bin/python bench/bench_scan.py --devices 500 --range 127.71.0.0/18
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ipaddress
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collectors.simulator.fleet import FleetDevice, build_fleet, host_addresses, write_manifest
from collectors.simulator.server import FleetServer, ListenMode

ROOT = Path(__file__).resolve().parent.parent
FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]


def spread_fleet(devices: int, cidr: str, seed: int) -> list[FleetDevice]:
    """`devices` simulated miners at random addresses of `cidr` (sorted), drawn reproducibly."""
    fleet = build_fleet(devices, subnet=cidr, seed=seed)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(list(host_addresses(cidr)), devices), key=ipaddress.ip_address)
    for item, ip in zip(fleet, chosen, strict=True):
        item.device.ip = ip
    return fleet


async def serve(devices: int, cidr: str, seed: int, manifest: Path) -> None:
    """Serve the spread fleet until SIGINT or SIGTERM; the manifest appears once every device listens."""
    fleet = spread_fleet(devices, cidr, seed)
    server = FleetServer([f.device for f in fleet], mode=ListenMode.PER_DEVICE)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    write_manifest(fleet, manifest)
    try:
        await stop.wait()
    finally:
        await server.close()


def start_simulator(args: argparse.Namespace, manifest: Path) -> subprocess.Popen[bytes]:
    """This script in `--serve` mode, in its own process; returns once its manifest is written."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--devices", str(args.devices), "--range", args.range,
         "--seed", str(args.seed), "--manifest", str(manifest)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if manifest.exists():
            return proc
        if proc.poll() is not None:
            raise SystemExit("the simulator exited before writing its manifest")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the simulator did not start within 300 s")


def run_scan(args: argparse.Namespace, out: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """`fleetmon scan` as a user runs it; (wall seconds, the finished process)."""
    command = [*FLEETMON, "scan", args.range, "--out", str(out)]
    if args.concurrency is not None:
        command += ["--concurrency", str(args.concurrency)]
    if args.profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(args.profile), "-m", "fleetmon.cli.main",
                   *command[3:]]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    return time.perf_counter() - started, proc


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--range", default="127.70.0.0/16", help="loopback range to serve and scan")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--concurrency", type=int, help="passed to `fleetmon scan` (default: its own)")
    parser.add_argument("--profile", type=Path, help="run the scan under cProfile, stats to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.devices, args.range, args.seed, args.manifest))
        return

    with tempfile.TemporaryDirectory() as tmp:
        manifest, out = Path(tmp) / "manifest.json", Path(tmp) / "found.json"
        simulator = start_simulator(args, manifest)
        try:
            seconds, proc = run_scan(args, out)
        finally:
            simulator.send_signal(signal.SIGINT)
            simulator.wait(30)
        if proc.returncode != 0:
            raise SystemExit(f"fleetmon scan exited {proc.returncode}: {proc.stderr[-2000:]}")
        served = {str(row["ip"]) for row in json.loads(manifest.read_text())}
        found = json.loads(out.read_text())
    reported = {str(row["ip"]) for row in found}
    addresses = ipaddress.ip_network(args.range).num_addresses - 2
    unidentified = collections.Counter(str(row["error"]) for row in found if row["make"] is None)
    print(
        f"scan {args.range}: addresses={addresses} devices={len(served)} seconds={seconds:.2f} "
        f"addresses/s={addresses / seconds:.0f} found={len(reported & served)} "
        f"missed={len(served - reported)} phantoms={len(reported - served)} "
        f"unidentified={sum(unidentified.values())} {dict(unidentified) or ''} "
        f"(cpus={os.cpu_count()})"
    )


if __name__ == "__main__":
    main()

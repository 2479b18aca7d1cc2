"""Poll throughput on one simulated fleet, same run: fleetmon vs pyasic 0.79 vs a bare asyncio floor.

The simulator runs in a SEPARATE process (`fleetmon simulate ... --manifest`), so the two cores are
shared as in a deployment (poller on one side, devices on the other). Figures printed (devices/s):
- fleetmon, cycle 1: one `Poller.poll_once` over every device, identification and the web serial
  fetch included (a fresh Poller);
- fleetmon, cycle 2: the same Poller again, identities (and serials) known;
- the same two cycles from a PollerPool of `--workers` processes (default: one per core), each worker
  reading its own share of the fleet; the workers are started before the clock runs, as a collector
  starts them once;
- pyasic: `pyasic.get_miner(ip)` + `get_data()` per device under an asyncio.Semaphore(200);
- floor: a bare asyncio loop, one `{"command":"stats"}` per device (stock X19 refuses multi-commands,
  so one single command is the least one request per device can be), concurrency 1000.
and the ratios fleetmon/pyasic and fleetmon/floor.

`--devices 10000 --big` prints the seconds and peak RSS of one fleetmon cycle over 10,000 devices
(the simulator switches to its shared-listener mode above the fd budget). Shared listeners bind
0.0.0.0 on the REAL ports 4028 and 80: stop any other simulator first (`fleetmon demo`, a test run),
or the bind fails. The 2,000-device run listens per device address and collides with nothing.

    .venv/bin/python bench/bench_poll.py --devices 2000
    .venv/bin/python bench/bench_poll.py --devices 10000 --big
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collectors.poller import PollerSettings, tune_gc_for_polling
from collectors.sample import State
from collectors.targets import Target
from collectors.web import WebCredentials
from collectors.workers import PollerPool, poller_for

ROOT = Path(__file__).resolve().parent.parent
FLOOR_CONCURRENCY = 1000
PYASIC_CONCURRENCY = 200
DEADLINE_S = 20.0


def start_simulator(devices: int, subnet: str, manifest: Path) -> subprocess.Popen[bytes]:
    """`fleetmon simulate` in its own process; returns once the manifest is written."""
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "fleetmon"),
            "simulate",
            "--devices",
            str(devices),
            "--mix",
            "antminer:100",
            "--subnet",
            subnet,
            "--seed",
            "7",
            "--manifest",
            str(manifest),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(1200):
        if manifest.exists():
            return proc
        if proc.poll() is not None:
            raise SystemExit("the simulator exited before writing its manifest")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the simulator did not start within 120 s")


async def fleetmon_cycles(
    ips: list[str], concurrency: int, cycles: int, workers: int = 1
) -> list[tuple[float, int]]:
    """Seconds and devices read for `cycles` consecutive cycles of one Poller (or of one PollerPool of
    `workers` processes, started before the clock runs, as a collector starts them once)."""
    settings = PollerSettings(
        concurrency=concurrency,
        deadline_s=DEADLINE_S,
        connect_s=5.0,
        credentials=WebCredentials(profile="antminer-default", username="root", password="root"),
    )
    poller = poller_for(settings, workers)
    if isinstance(poller, PollerPool):
        await poller.start()
    targets = [Target(ip) for ip in ips]
    results = []
    async with poller:
        for _ in range(cycles):
            started = time.perf_counter()
            samples = await poller.poll_once(targets)
            seconds = time.perf_counter() - started
            ok = sum(1 for s in samples if s.state not in (State.UNREACHABLE, State.ERROR))
            results.append((seconds, ok))
    return results


async def floor(ips: list[str]) -> tuple[float, int]:
    """Bare asyncio: one request and one reply (read to the NUL) per device."""
    semaphore = asyncio.Semaphore(FLOOR_CONCURRENCY)

    async def one(ip: str) -> bool:
        async with semaphore:
            reader, writer = await asyncio.open_connection(ip, 4028)
            writer.write(b'{"command":"stats"}')
            data = await reader.readuntil(b"\x00")
            writer.transport.abort()
            return len(data) > 100

    started = time.perf_counter()
    done = await asyncio.gather(*(one(ip) for ip in ips))
    return time.perf_counter() - started, sum(done)


async def pyasic_run(ips: list[str]) -> tuple[float, int]:
    """pyasic 0.79: get_miner + get_data per device, Semaphore(200), as its docs suggest."""
    import pyasic

    semaphore = asyncio.Semaphore(PYASIC_CONCURRENCY)

    async def one(ip: str) -> bool:
        async with semaphore:
            miner = await pyasic.get_miner(ip)
            if miner is None:
                return False
            data = await miner.get_data()
            return data.hashrate is not None

    started = time.perf_counter()
    done = await asyncio.gather(*(one(ip) for ip in ips), return_exceptions=True)
    return time.perf_counter() - started, sum(1 for d in done if d is True)


def main() -> None:
    """Run the comparison (or the 10,000-device cycle) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1000, help="fleetmon poller concurrency")
    parser.add_argument("--subnet", default="127.60.0.0/16")
    parser.add_argument("--big", action="store_true", help="only one fleetmon cycle: seconds and peak RSS")
    parser.add_argument("--skip-pyasic", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="also measure a PollerPool of this many worker processes (default: one per core)",
    )
    args = parser.parse_args()

    tune_gc_for_polling()  # as the CLI's polling commands do
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.json"
        started = time.perf_counter()
        sim = start_simulator(args.devices, args.subnet, manifest)
        try:
            ips = [str(row["ip"]) for row in json.loads(manifest.read_text())]
            print(f"simulator: {len(ips)} stock Antminers ready in {time.perf_counter() - started:.1f} s")
            if args.big:
                ((seconds, ok),) = asyncio.run(fleetmon_cycles(ips, args.concurrency, 1))
                peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"fleetmon one cycle over {len(ips)} devices: {seconds:.2f} s, {ok} read, "
                      f"peak RSS {peak_mib:.0f} MiB (concurrency {args.concurrency})")  # fmt: skip
                return
            floor_s, floor_ok = asyncio.run(floor(ips))
            print(f"floor:      {floor_s:6.2f} s  {floor_ok} replies")
            rates = {"floor": len(ips) / floor_s}
            for workers in sorted({1, args.workers}):
                (c1_s, c1_ok), (c2_s, c2_ok) = asyncio.run(fleetmon_cycles(ips, args.concurrency, 2, workers))
                label = "1 process" if workers == 1 else f"{workers} worker processes"
                print(f"fleetmon, {label}, cycle 1: {c1_s:6.2f} s  {c1_ok} read")
                print(f"fleetmon, {label}, cycle 2: {c2_s:6.2f} s  {c2_ok} read")
                rates[f"fleetmon {label} cycle 1 (identify + web serial + poll)"] = len(ips) / c1_s
                rates[f"fleetmon {label} cycle 2 (identities known)"] = len(ips) / c2_s
            if not args.skip_pyasic:
                py_s, py_ok = asyncio.run(pyasic_run(ips))
                print(f"pyasic:     {py_s:6.2f} s  {py_ok} read")
                rates["pyasic (get_miner + get_data)"] = len(ips) / py_s
            for name, rate in rates.items():
                print(f"{rate:9.0f} devices/s  {name}")
            py = rates.get("pyasic (get_miner + get_data)")
            for name, rate in rates.items():
                if name.startswith("fleetmon"):
                    versus = f"{rate / py:5.1f}x pyasic, " if py else ""
                    print(f"{versus}{rate / rates['floor']:.2f} of the floor  {name}")
        finally:
            sim.send_signal(signal.SIGINT)
            try:
                sim.wait(30)
            except subprocess.TimeoutExpired:
                sim.kill()
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""A simulated fleet with an exact number of devices per fault kind, served from its own process.

Run as `python tests/fault_fleet.py --healthy 500 --per-fault 10 [--extra-oversized N] [--kinds a,b]
--subnet S --manifest F`: it writes the manifest (with each device's fault) once every device listens, and
serves until killed.
The fleet is `collectors.simulator.fleet.build_fleet`'s, with faults assigned round-robin to the
devices after the healthy ones, so a test knows exactly which kind each faulty device has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from collectors.simulator.device import Fault
from collectors.simulator.fleet import build_fleet, manifest_rows
from collectors.simulator.server import FleetServer

MIX = "antminer:50,whatsminer:25,avalon:15,braiins:4,luxos:3,vnish:3"


async def serve(
    healthy: int, per_fault: int, oversized: int, subnet: str, manifest: Path, kinds: list[Fault]
) -> None:
    """Serve until SIGTERM/SIGINT."""
    fleet = build_fleet(healthy + per_fault * len(kinds) + oversized, mix=MIX, subnet=subnet, seed=11)
    for index, item in enumerate(fleet[healthy:]):
        item.device.fault = kinds[index % len(kinds)] if index < per_fault * len(kinds) else Fault.OVERSIZED
    server = FleetServer([f.device for f in fleet])
    await server.start()
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps(manifest_rows(fleet)), encoding="utf-8")
    tmp.replace(manifest)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--healthy", type=int, required=True)
    parser.add_argument("--per-fault", type=int, required=True)
    parser.add_argument("--extra-oversized", type=int, default=0)
    parser.add_argument("--subnet", required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--kinds", default=",".join(Fault), help="fault kinds, comma-separated (all)")
    args = parser.parse_args()
    kinds = [Fault(k) for k in args.kinds.split(",") if k]
    asyncio.run(serve(args.healthy, args.per_fault, args.extra_oversized, args.subnet, args.manifest, kinds))


if __name__ == "__main__":
    main()

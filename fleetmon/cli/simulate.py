"""`fleetmon simulate`: run a simulated fleet on loopback until SIGINT/SIGTERM.

It lives in fleetmon.cli, not collectors.simulator, because it uses both sides: the simulator that
serves the fleet and the poller's garbage-collector tuning. The simulator itself imports nothing from
the code it is used to test.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import signal
import time
from pathlib import Path

from collectors.poller import tune_gc_for_polling
from collectors.simulator.fleet import (
    DEFAULT_MIX,
    DEFAULT_SUBNET,
    MIX_KEYS,
    RunningFleet,
    simulated_fleet,
    write_inventory,
    write_manifest,
)
from collectors.simulator.server import ListenMode, ServerTimings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `simulate` command."""
    p = subparsers.add_parser(
        "simulate",
        help="serve a simulated fleet of miners on loopback",
        description="Serve simulated Antminer/Whatsminer/Avalon/Auradine/SealMiner devices (and brandless "
        "clones of the Antminer API), each on its own 127.x.y.z, "
        "on the real ports (4028 CGMiner API, 80 web, 4433 Whatsminer API v3), until interrupted.",
    )
    p.add_argument("--devices", type=int, required=True, help="number of devices")
    p.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help=f"make/firmware weights, key:weight with keys {', '.join(MIX_KEYS)} (default {DEFAULT_MIX})",
    )
    p.add_argument("--subnet", default=DEFAULT_SUBNET, help=f"loopback subnet (default {DEFAULT_SUBNET})")
    p.add_argument("--faults", type=float, default=0.0, help="fraction of devices given a transport fault")
    p.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same fleet")
    p.add_argument(
        "--api-open",
        type=float,
        default=0.0,
        help="fraction of devices whose API grants `privileged` (write) access to anyone",
    )
    p.add_argument(
        "--changed-passwords",
        type=float,
        default=0.0,
        help="fraction of devices whose web UI no longer takes the factory password",
    )
    p.add_argument("--manifest", type=Path, help="write the fleet manifest (JSON) here once all listen")
    p.add_argument("--inventory", type=Path, help="write the operator's inventory (CSV) here")
    p.add_argument(
        "--listen",
        choices=[m.value for m in ListenMode],
        default=ListenMode.AUTO.value,
        help="socket layout: one listener per device and port, or one shared listener per port",
    )
    p.add_argument(
        "--reboot-s",
        type=float,
        default=ServerTimings().reboot_s,
        help="how long a device asked to reboot refuses connections (default %(default)s s)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: serve until a signal arrives; exit status 2 on bad arguments."""
    try:
        return asyncio.run(_serve(args))
    except ValueError as exc:
        print(f"fleetmon simulate: {exc}")
        return 2


def _summary(running: RunningFleet, seconds: float) -> str:
    devices = running.devices
    by_kind = collections.Counter(f"{f.device.spec.make.value}/{f.device.firmware.value}" for f in devices)
    states = collections.Counter(f.device.state.value for f in devices)
    faults = collections.Counter(f.device.fault.value for f in devices if f.device.fault is not None)
    server = running.server
    first = devices[0].device.ip if devices else "-"
    last = devices[-1].device.ip if devices else "-"
    lines = [
        f"serving {len(devices)} simulated devices ({first} .. {last}) in {seconds:.1f} s, "
        f"{server.mode} mode, {server.listener_count} listening sockets",
        "  kinds:  " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())),
        "  states: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
        "  faults: " + (", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none"),
        f"  ports:  4028 (CGMiner API){', 80 (web)' if server.web_enabled else ' (web disabled: port 80)'}"
        ", 4433 (Whatsminer API v3, where the firmware has it)",
        "point a client at it, e.g.:",
        f"""  printf '{{"command":"summary"}}' | nc -q1 {first} 4028""",
        f"  python -c 'import asyncio,pyasic; m=asyncio.run(pyasic.get_miner(\"{first}\")); print(m)'",
        "stop with Ctrl-C",
    ]
    return "\n".join(lines)


async def _serve(args: argparse.Namespace) -> int:
    if not args.reboot_s > 0:
        raise ValueError("--reboot-s must be a positive number of seconds")
    started = time.monotonic()
    async with simulated_fleet(
        args.devices,
        mix=args.mix,
        subnet=args.subnet,
        faults=args.faults,
        seed=args.seed,
        listen=ListenMode(args.listen),
        api_open=args.api_open,
        changed_passwords=args.changed_passwords,
        timings=ServerTimings(reboot_s=args.reboot_s),
    ) as running:
        # Serving the fleet churns connection objects as polling does; the fleet is frozen with startup.
        tune_gc_for_polling()
        if args.manifest is not None:
            write_manifest(running.devices, args.manifest)
            print(f"manifest: {args.manifest} ({len(running.devices)} devices)")
        if args.inventory is not None:
            listed = write_inventory(running.devices, args.inventory)
            print(f"inventory: {args.inventory} ({listed} of {len(running.devices)} devices listed)")
        print(_summary(running, time.monotonic() - started), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopping")
    return 0

"""What the security-posture checks cost a poll: cycle 1 (identification, web serial, `privileged`)
and cycle 2 (identity cached) with the `privileged` question on and off, same simulated fleet.

The simulator runs in a separate process (`fleetmon simulate`, stock Antminers, half their APIs open to
writes) so the two cores are shared as in a deployment. Printed: devices/s per cycle for each setting,
the findings counted in cycle 1, and the ratio on/off. The runs alternate (off, on, off, on, ...) so a
neighbour's load falls on both alike.

    .venv/bin/python bench/bench_posture.py --devices 2000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import bench_poll

from collectors.poller import Poller, PollerSettings, tune_gc_for_polling
from collectors.posture import PostureSettings
from collectors.targets import Target
from collectors.web import WebCredentials

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 10.0


def start_simulator(devices: int, subnet: str, manifest: Path) -> subprocess.Popen[bytes]:
    """`fleetmon simulate` in its own process; returns once the manifest is written."""
    return bench_poll.start_simulator(devices, subnet, manifest, extra=("--api-open", "0.5"))


async def two_cycles(
    ips: list[str], concurrency: int, ask: bool
) -> tuple[float, float, collections.Counter[str]]:
    """Devices/s of cycle 1 and cycle 2 of a fresh Poller, and the finding codes of cycle 1."""
    settings = PollerSettings(
        concurrency=concurrency,
        deadline_s=DEADLINE_S,
        connect_s=5.0,
        credentials=WebCredentials(profile="antminer-default", username="root", password="root"),
        posture=PostureSettings(check_api_write=ask),
    )
    targets = [Target(ip) for ip in ips]
    rates = []
    codes: collections.Counter[str] = collections.Counter()
    async with Poller(settings) as poller:
        for cycle in range(2):
            started = time.perf_counter()
            samples = await poller.poll_once(targets)
            rates.append(len(samples) / (time.perf_counter() - started))
            if cycle == 0:
                codes.update(f.code for s in samples for f in s.security)
    return rates[0], rates[1], codes


def main() -> None:
    """Run the comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--subnet", default="127.78.0.0/16")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tune_gc_for_polling()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.json"
        sim = start_simulator(args.devices, args.subnet, manifest)
        try:
            ips = [str(row["ip"]) for row in json.loads(manifest.read_text())]
            results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for _ in range(args.rounds):
                for ask in (False, True):
                    first, second, codes = asyncio.run(two_cycles(ips, args.concurrency, ask))
                    results[ask].append((first, second))
                    print(f"privileged {'on ' if ask else 'off'}: cycle 1 {first:7.0f}/s, cycle 2 "
                          f"{second:7.0f}/s, findings {dict(sorted(codes.items()))}")  # fmt: skip
        finally:
            sim.send_signal(signal.SIGINT)
            sim.wait(30)
    for cycle in (0, 1):
        off = sorted(r[cycle] for r in results[False])
        on = sorted(r[cycle] for r in results[True])
        print(
            f"cycle {cycle + 1}: off {off[len(off) // 2]:.0f}/s, on {on[len(on) // 2]:.0f}/s "
            f"(median of {args.rounds}; on/off {on[len(on) // 2] / off[len(off) // 2]:.2f})"
        )


if __name__ == "__main__":
    main()

"""Start 10,000 simulated devices in one process; print start-up seconds, RSS, and a sample round.

10,000 devices exceed the fd budget, so the simulator uses shared listeners: 0.0.0.0 on the REAL ports
4028 and 80. Stop any other simulator on this machine first (`fleetmon demo`, a test run).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time

from collectors.simulator.fleet import simulated_fleet

DEVICES = 10_000
SAMPLE = 200


async def ask(ip: str) -> bool:
    try:
        reader, writer = await asyncio.open_connection(ip, 4028)
        writer.write(b'{"command":"version"}')
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return data.endswith(b"\x00") and bool(json.loads(data[:-1].replace(b"}{", b"},{")))
    except (OSError, TimeoutError, ValueError):
        return False


async def main() -> None:
    started = time.perf_counter()
    async with simulated_fleet(DEVICES, subnet="127.40.0.0/16", seed=1) as running:
        startup = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"devices: {DEVICES}  mode: {running.server.mode}  listeners: {running.server.listener_count}")
        print(f"start-up: {startup:.2f} s   peak RSS: {rss_mb:.0f} MB")
        sample = random.Random(1).sample(running.manifest, SAMPLE)
        t = time.perf_counter()
        ok = await asyncio.gather(*(ask(str(row["ip"])) for row in sample))
        print(f"sample round: {sum(ok)}/{SAMPLE} answered `version` in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())

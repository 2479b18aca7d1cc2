"""PDUs read per second against the real snmpsim agent serving tests/snmp/*.snmprec.

    .venv/bin/python bench/bench_snmp.py [--reads 60] [--concurrency 8]

Starts snmpsim on a free UDP port with the tests' own launcher (tests/snmpsim_agent.py),
reads the three recorded PDUs round-robin, sequentially and then `--concurrency` at a time, and
prints reads per second. One read = sysDescr/sysObjectID GET + the family's table walks.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from snmpsim_agent import start_agent

from collectors.snmp import SnmpTarget, SnmpTimeouts, new_engine, read_pdu

COMMUNITIES = ("apc", "raritan", "servertech")
TIMEOUTS = SnmpTimeouts(timeout_s=2.0, retries=1)


async def run(port: int, reads: int, concurrency: int) -> None:
    targets = [SnmpTarget("127.0.0.1", port, COMMUNITIES[i % 3]) for i in range(reads)]
    few = targets[: min(reads, 6)]
    start = time.perf_counter()
    for target in few:
        await read_pdu(target, TIMEOUTS)  # a private engine per read, as `fleetmon snmp probe` does
    private = time.perf_counter() - start
    print(f"engine per read:  {len(few)} reads in {private:.2f} s = {len(few) / private:.1f} PDUs/s")

    engine = new_engine()
    await read_pdu(targets[0], TIMEOUTS, engine=engine)  # warm the shared engine's MIB view
    start = time.perf_counter()
    for target in targets:
        await read_pdu(target, TIMEOUTS, engine=engine)
    sequential = time.perf_counter() - start
    print(f"shared engine, sequential: {reads} reads in {sequential:.2f} s = {reads / sequential:.1f} PDUs/s")

    gate = asyncio.Semaphore(concurrency)

    async def one(target: SnmpTarget) -> None:
        async with gate:
            await read_pdu(target, TIMEOUTS, engine=engine)

    start = time.perf_counter()
    await asyncio.gather(*(one(t) for t in targets))
    parallel = time.perf_counter() - start
    engine.close_dispatcher()
    label = f"shared engine, concurrency {concurrency}"
    print(f"{label}: {reads} reads in {parallel:.2f} s = {reads / parallel:.1f} PDUs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with start_agent() as agent:
        asyncio.run(run(agent.port, args.reads, args.concurrency))


if __name__ == "__main__":
    main()

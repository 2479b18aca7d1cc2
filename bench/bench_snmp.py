"""PDUs read per second against the real snmpsim agent serving tests/snmp/*.snmprec.

    .venv/bin/python bench/bench_snmp.py [--reads 60] [--concurrency 8]

Starts snmpsim on a free UDP port (dropping to nobody/nogroup when run as root, as the tests do),
reads the three recorded PDUs round-robin, sequentially and then `--concurrency` at a time, and
prints reads per second. One read = sysDescr/sysObjectID GET + the family's table walks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collectors.snmp import SnmpTarget, SnmpTimeouts, new_engine, read_pdu

RECORDINGS = Path(__file__).resolve().parent.parent / "tests" / "snmp"
COMMUNITIES = ("apc", "raritan", "servertech")
TIMEOUTS = SnmpTimeouts(timeout_s=2.0, retries=1)
# Same reason as in tests/test_snmp_pdu.py: import lazily-loaded modules before snmpsim drops root.
BOOTSTRAP = """
import importlib, sys
for name in ("dbm", "dbm.dumb", "dbm.gnu", "dbm.ndbm", "encodings.latin_1", "encodings.ascii",
             "encodings.utf_8", "encodings.idna"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
from snmpsim.commands.responder import main
sys.argv[0] = "snmpsim-command-responder"
sys.exit(main())
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_agent(root: Path, port: int) -> subprocess.Popen[bytes]:
    data, cache = root / "data", root / "cache"
    data.mkdir()
    cache.mkdir()
    for recording in RECORDINGS.glob("*.snmprec"):
        shutil.copy(recording, data / recording.name)
    command = [
        sys.executable,
        "-c",
        BOOTSTRAP,
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}",
    ]
    if os.geteuid() == 0:
        for path in (root, data, cache, *data.iterdir()):
            shutil.chown(path, user="nobody", group="nogroup")
        command += ["--process-user=nobody", "--process-group=nogroup"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(port: int, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            await read_pdu(SnmpTarget("127.0.0.1", port, "apc"), SnmpTimeouts(timeout_s=0.3, retries=0))
            return
        except Exception:
            if time.monotonic() > end:
                raise


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
    root = Path(tempfile.mkdtemp(prefix="fleetmon-bench-snmpsim-"))
    port = free_udp_port()
    agent = start_agent(root, port)
    try:
        asyncio.run(wait_ready(port))
        asyncio.run(run(port, args.reads, args.concurrency))
    finally:
        agent.terminate()
        agent.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

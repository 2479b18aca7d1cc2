"""Poll throughput on one simulated fleet, same run: fleetmon vs pyasic 0.79 vs a bare asyncio floor.

The devices run in a SEPARATE process, so the two cores are shared as in a deployment (poller on one
side, devices on the other): `fleetmon simulate ... --manifest` (`--responder simulator`, the default)
or bench/minimal_responder.py (`--responder minimal`: canned captured replies, stdlib only, independent
of fleetmon's code, so the devices' side costs least). Figures printed (devices/s):
- HEADLINE, fleetmon with default flags: the real `fleetmon poll @targets --once --concurrency N` in a
  fresh process, whose worker count is its own auto choice (collectors.workers.auto_workers); its rate
  from the cycle time it reports (worker start included) and from the whole command's wall time
  (interpreter start and imports included);
- fleetmon, cycle 1: one `Poller.poll_once` over every device, identification and the web serial
  fetch included (a fresh Poller);
- fleetmon, cycle 2: the same Poller again, identities (and serials) known;
- the same two cycles from a PollerPool of `--workers` processes (default: one per core), each worker
  reading its own share of the fleet; the workers are started before the clock runs, as a collector
  starts them once;
- pyasic: `pyasic.get_miner(ip)` + `get_data()` per device under an asyncio.Semaphore(200);
- floor: a bare asyncio loop, one `{"command":"stats"}` per device (stock X19 refuses multi-commands,
  so one single command is the least one request per device can be), concurrency 1000;
- first-cycle floor: a bare asyncio loop doing the exchanges a first cycle needs and nothing more
  (`stats`, `pools`, the `privileged` query of the security-posture check (issue 18: is the API open
  to writes), the digest CGI's 401 and authenticated GET: five connections), concurrency 1000; and the
  same without `privileged` (four connections: what a first cycle needed before the posture check).
and the ratios fleetmon/pyasic and fleetmon/floor.

`--sweep` instead prints, for fleets of several sizes, cycle 1 of one process against cycle 1 of a pool
of one worker per core started inside the clock (as a first `fleetmon poll` starts it): where the pool
overtakes one process is the threshold auto_workers uses (collectors.workers.AUTO_SHARE_MIN).

`--devices 10000 --big` prints the seconds and peak RSS of one fleetmon cycle over 10,000 devices
(the simulator switches to its shared-listener mode above the fd budget). Shared listeners bind
0.0.0.0 on the REAL ports 4028 and 80: stop any other simulator first (`fleetmon demo`, a test run),
or the bind fails. The 2,000-device run listens per device address and collides with nothing.

    .venv/bin/python bench/bench_poll.py --devices 2000 --concurrency 500 [--responder minimal]
    .venv/bin/python bench/bench_poll.py --sweep --responder minimal
    .venv/bin/python bench/bench_poll.py --devices 10000 --big
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from collectors.poller import PollerSettings, tune_gc_for_polling
from collectors.sample import State
from collectors.targets import Target
from collectors.web import WebCredentials
from collectors.workers import PollerPool, auto_workers, poller_for, usable_cores

ROOT = Path(__file__).resolve().parent.parent
FLOOR_CONCURRENCY = 1000
PYASIC_CONCURRENCY = 200
DEADLINE_S = 20.0
CGI = "/cgi-bin/get_system_info.cgi"
FIRST_FLOOR = "floor, first cycle's exchanges (stats, pools, privileged, digest 401 + GET)"


def start_simulator(
    devices: int,
    subnet: str,
    manifest: Path,
    responder: str = "simulator",
    *,
    seed: int = 7,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """The devices in their own process (`fleetmon simulate` of stock Antminers with `seed` and the
    further flags `extra`, or the minimal responder); returns once the manifest is written."""
    if responder == "minimal":
        argv = [sys.executable, str(ROOT / "bench" / "minimal_responder.py")]
    else:
        argv = [
            str(ROOT / ".venv" / "bin" / "fleetmon"),
            "simulate",
            "--mix",
            "antminer:100",
            "--seed",
            str(seed),
        ]
        argv += extra
    proc = subprocess.Popen(
        [*argv, "--devices", str(devices), "--subnet", subnet, "--manifest", str(manifest)],
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
    ips: list[str], concurrency: int, cycles: int, workers: int = 1, *, start_in_clock: bool = False
) -> list[tuple[float, int]]:
    """Seconds and devices read for `cycles` consecutive cycles of one Poller (or of one PollerPool of
    `workers` processes, started before the clock runs, as a collector starts them once, unless
    `start_in_clock`: then cycle 1 starts them, as a first `fleetmon poll` does)."""
    settings = PollerSettings(
        concurrency=concurrency,
        deadline_s=DEADLINE_S,
        connect_s=5.0,
        credentials=WebCredentials(profile="antminer-default", username="root", password="root"),
    )
    poller = poller_for(settings, workers)
    if isinstance(poller, PollerPool) and not start_in_clock:
        started = time.perf_counter()
        await poller.start()
        ready_s = time.perf_counter() - started
        print(f"pool of {workers} workers started (spawned, imported, ready) in {ready_s:.2f} s")
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


def cli_default_run(manifest: Path, concurrency: int) -> tuple[float, float, int]:
    """`fleetmon poll @manifest --once --concurrency N`, every other flag default, in a fresh process:
    (the cycle's seconds as the command reports them, the command's wall seconds, devices read)."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "fleetmon"), "poll", f"@{manifest}", "--once",
         "--concurrency", str(concurrency)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return float(summary["seconds"]), wall, int(summary["ok"])


def sweep(args: argparse.Namespace) -> None:
    """Cycle 1 of one process against a pool (one worker per core, started in the clock), by fleet size."""
    cores = usable_cores()
    print(f"first cycle, 1 process vs {cores} workers started in the clock (concurrency {args.concurrency})")
    for devices in (250, 500, 1000, 1500, 2000):
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "manifest.json"
            sim = start_simulator(devices, args.subnet, manifest, args.responder)
            try:
                ips = [str(row["ip"]) for row in json.loads(manifest.read_text())]
                ((one_s, one_ok),) = asyncio.run(fleetmon_cycles(ips, args.concurrency, 1))
                ((pool_s, pool_ok),) = asyncio.run(
                    fleetmon_cycles(ips, args.concurrency, 1, cores, start_in_clock=True)
                )
            finally:
                stop(sim)
        faster = "pool" if pool_s < one_s else "1 process"
        auto = auto_workers(devices)
        print(f"{devices:6d} devices: 1 process {one_s:5.2f} s ({one_ok} read), {cores} workers "
              f"{pool_s:5.2f} s ({pool_ok} read): {faster} faster; auto_workers picks {auto}")  # fmt: skip


def stop(sim: subprocess.Popen[bytes]) -> None:
    """End the devices' process."""
    sim.send_signal(signal.SIGINT)
    try:
        sim.wait(30)
    except subprocess.TimeoutExpired:
        sim.kill()


async def _http_get(ip: str, authorization: str | None) -> tuple[bytes, bytes]:
    """One GET of the system-info CGI on its own connection: (head, body)."""
    reader, writer = await asyncio.open_connection(ip, 80)
    extra = f"Authorization: {authorization}\r\n" if authorization else ""
    writer.write(f"GET {CGI} HTTP/1.1\r\nHost: {ip}\r\n{extra}Connection: close\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    body = await reader.readexactly(int(length.group(1))) if length else b""
    writer.transport.abort()
    return head, body


def _digest(head: bytes) -> str:
    """The Authorization header answering a 401's digest challenge (root/root, qop auth, MD5)."""
    challenge = dict(re.findall(r'(\w+)="([^"]*)"', head.decode("latin-1")))
    realm, nonce, cnonce = challenge["realm"], challenge["nonce"], "0a4f113b"

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    answer = md5(f"{md5(f'root:{realm}:root')}:{nonce}:00000001:{cnonce}:auth:{md5(f'GET:{CGI}')}")
    return (
        f'Digest username="root", realm="{realm}", nonce="{nonce}", uri="{CGI}", qop=auth, '
        f'nc=00000001, cnonce="{cnonce}", response="{answer}", algorithm=MD5'
    )


async def floor_first_cycle(ips: list[str], *, posture: bool = True) -> tuple[float, int]:
    """Bare asyncio doing a first cycle's exchanges and nothing else: `stats`, `pools` and (with
    `posture`) `privileged`, one connection each as stock bmminer wants, then the digest CGI (401,
    then the authenticated GET); no parsing beyond finding the challenge."""
    semaphore = asyncio.Semaphore(FLOOR_CONCURRENCY)

    async def command(ip: str, name: str) -> bytes:
        reader, writer = await asyncio.open_connection(ip, 4028)
        writer.write(json.dumps({"command": name}).encode())
        data = await reader.readuntil(b"\x00")
        writer.transport.abort()
        return data

    async def one(ip: str) -> bool:
        async with semaphore:
            names = ("stats", "pools", "privileged") if posture else ("stats", "pools")
            stats, pools, *_ = await asyncio.gather(*(command(ip, name) for name in names))
            head, _ = await _http_get(ip, None)
            head, body = await _http_get(ip, _digest(head))
            return len(stats) > 100 and len(pools) > 100 and head.startswith(b"HTTP/1.1 200") and b"{" in body

    started = time.perf_counter()
    done = await asyncio.gather(*(one(ip) for ip in ips))
    return time.perf_counter() - started, sum(done)


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
    parser.add_argument("--responder", choices=("simulator", "minimal"), default="simulator")
    parser.add_argument("--sweep", action="store_true", help="where a worker pool overtakes one process")
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
    if args.sweep:
        sweep(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.json"
        started = time.perf_counter()
        sim = start_simulator(args.devices, args.subnet, manifest, args.responder)
        try:
            ips = [str(row["ip"]) for row in json.loads(manifest.read_text())]
            ready_s = time.perf_counter() - started
            print(f"{args.responder}: {len(ips)} stock Antminers ready in {ready_s:.1f} s")
            if args.big:
                ((seconds, ok),) = asyncio.run(fleetmon_cycles(ips, args.concurrency, 1))
                peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"fleetmon one cycle over {len(ips)} devices: {seconds:.2f} s, {ok} read, "
                      f"peak RSS {peak_mib:.0f} MiB (concurrency {args.concurrency})")  # fmt: skip
                return
            floor_s, floor_ok = asyncio.run(floor(ips))
            print(f"floor:      {floor_s:6.2f} s  {floor_ok} replies")
            rates = {"floor": len(ips) / floor_s}
            first_s, first_ok = asyncio.run(floor_first_cycle(ips))
            print(f"floor, a first cycle's 5 exchanges: {first_s:6.2f} s  {first_ok} devices")
            rates[FIRST_FLOOR] = len(ips) / first_s
            four_s, four_ok = asyncio.run(floor_first_cycle(ips, posture=False))
            print(f"floor, the 4 exchanges without the posture check: {four_s:6.2f} s  {four_ok} devices")
            rates[f"{FIRST_FLOOR} without privileged"] = len(ips) / four_s
            cycle_s, wall_s, cli_ok = cli_default_run(manifest, args.concurrency)
            auto = auto_workers(len(ips))
            print(f"fleetmon poll, default flags ({auto} workers, auto): cycle {cycle_s:6.2f} s, "
                  f"whole command {wall_s:6.2f} s  {cli_ok} read")  # fmt: skip
            headline = f"HEADLINE fleetmon poll, default flags (auto: {auto} workers), cycle 1"
            rates[headline] = len(ips) / cycle_s
            rates[f"{headline}, whole command (start-up included)"] = len(ips) / wall_s
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
                if name.startswith(("fleetmon", "HEADLINE")):
                    versus = f"{rate / py:5.1f}x pyasic, " if py else ""
                    first, four = rates[FIRST_FLOOR], rates[f"{FIRST_FLOOR} without privileged"]
                    print(f"{versus}{rate / rates['floor']:.2f} of the floor, {rate / first:.2f} of the "
                          f"first-cycle floor ({rate / four:.2f} without privileged)  {name}")  # fmt: skip
        finally:
            stop(sim)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Web serial fetch on one simulated fleet: WebSession as it is vs plain `httpx.AsyncClient` + DigestAuth.

The fleet: `--devices` simulated stock Antminers (`fleetmon simulate`, per-device listeners on
`--subnet`), whose serials come from `/cgi-bin/get_system_info.cgi` behind HTTP digest auth, the
simulator's lighttpd-like server keeping the connection alive between the 401 and the authorized retry.

Two clients, each in a fresh process of its own so that CPU and peak RSS are its alone:
- `websession`: collectors.web's WebSession and DeviceWeb.antminer_system_info, the poller's path;
- `httpx`: one `httpx.AsyncClient` with `httpx.DigestAuth` per device, a pool of the same bounds
  (`httpx.Limits(max_connections=N, max_keepalive_connections=N)`, N = WEB_MAX_CONNECTIONS), the same
  bound on fetches at once (a semaphore of N, as WebSession has), the same per-fetch deadline, the same
  body cap (read by streaming), the same JSON parse and parse_system_info;
- `httpx-ka8`: the same with at most 8 idle connections kept: httpcore scans every pooled connection
  (a poll() each) whenever it places a request, and with one origin per device the idle ones are never
  used again, so a smaller pool is plain httpx at its best here.
Each client runs two passes over the whole fleet: `cold` (fresh login state per device: 401, then the
authorized request, as at identification) and `warm` (the same auth objects again: the cached digest
challenge answers at once). A warm-up of 100 fetches runs first, outside the figures. Variants alternate
over `--rounds`; printed: CPU ms per fetch (user + system), fetches/s, peak RSS, the simulator's CPU
per fetch, the medians, and what the current transport saves against plain httpx.

    .venv/bin/python bench/bench_webnet.py --devices 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bench_poll
import httpx
from bench_scale import cpu_seconds, peak_rss_mib, raise_fd_limit
from pydantic import SecretStr

from collectors.errors import MinerError
from collectors.web import (
    MAX_BODY_BYTES,
    SYSTEM_INFO_PATH,
    WEB_MAX_CONNECTIONS,
    DeviceWeb,
    WebCredentials,
    WebSession,
    parse_system_info,
)

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = WebCredentials(profile="antminer-default", username="root", password=SecretStr("root"))
CONNECT_S, READ_S, FETCH_S = 5.0, 10.0, 20.0
WARMUP = 100
VARIANTS = ("websession", "httpx", "httpx-ka8")
KEEPALIVE = {"httpx": WEB_MAX_CONNECTIONS, "httpx-ka8": 8}
THRESHOLD = 0.25
"""The CPU saving per cold fetch (against the better httpx) that keeps webnet: identification fetches a
serial from every Antminer, so a quarter of that fetch's CPU is seconds of a first cycle at 10,000."""
Fetch = Callable[[str, int], Awaitable[bool]]


# ------------------------------------------------------------------------------------ the two clients
async def websession_passes(ips: list[str], concurrency: int) -> dict[str, dict[str, float]]:
    """The current path: one WebSession, one DeviceWeb per device (kept for the warm pass)."""
    async with WebSession(connect_s=CONNECT_S, read_s=READ_S, max_connections=concurrency) as session:
        fresh = [session.device(CREDENTIALS, None) for _ in ips]
        kept = [session.device(CREDENTIALS, None) for _ in ips]

        def fetcher(devices: list[DeviceWeb]) -> Fetch:
            async def fetch(ip: str, index: int) -> bool:
                info = await devices[index].antminer_system_info(ip, timeout=FETCH_S)
                return info.serial is not None

            return fetch

        await measure(ips[:WARMUP], fetcher(fresh))
        return {"cold": await measure(ips, fetcher(kept)), "warm": await measure(ips, fetcher(kept))}


async def httpx_passes(ips: list[str], concurrency: int, keepalive: int) -> dict[str, dict[str, float]]:
    """Plain httpx: one AsyncClient with a pool of the same bounds, a DigestAuth per device."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=min(keepalive, concurrency))
    timeout = httpx.Timeout(FETCH_S, connect=CONNECT_S, read=READ_S, write=READ_S)
    headers = {"User-Agent": "fleetmon-collector", "Accept": "application/json"}
    slots = asyncio.Semaphore(concurrency)
    password = CREDENTIALS.password.get_secret_value()
    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as client:

        def fetcher(auths: list[httpx.DigestAuth]) -> Fetch:
            async def fetch(ip: str, index: int) -> bool:
                async with asyncio.timeout(FETCH_S), slots:
                    url = f"http://{ip}{SYSTEM_INFO_PATH}"
                    async with client.stream("GET", url, auth=auths[index]) as response:
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            body += chunk
                            if len(body) > MAX_BODY_BYTES:
                                raise ValueError("web body over the cap")
                if response.status_code != 200:
                    return False
                return parse_system_info(json.loads(body)).serial is not None

            return fetch

        fresh = [httpx.DigestAuth(CREDENTIALS.username, password) for _ in ips]
        kept = [httpx.DigestAuth(CREDENTIALS.username, password) for _ in ips]
        await measure(ips[:WARMUP], fetcher(fresh))
        return {"cold": await measure(ips, fetcher(kept)), "warm": await measure(ips, fetcher(kept))}


async def measure(ips: list[str], fetch: Fetch) -> dict[str, float]:
    """Fetch every device once; wall seconds, this process's CPU seconds, and how many gave a serial."""

    async def one(ip: str, index: int) -> bool:
        try:
            return await fetch(ip, index)
        except (MinerError, httpx.HTTPError, TimeoutError, ValueError):
            return False

    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    done = await asyncio.gather(*(one(ip, index) for index, ip in enumerate(ips)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "ok": float(sum(done)), "fetches": float(len(ips))}


def child(variant: str, manifest: Path, concurrency: int) -> None:
    """Run one variant in this process and print its figures as one JSON line."""
    ips = [str(row["ip"]) for row in json.loads(manifest.read_text())]
    if variant == "websession":
        figures = asyncio.run(websession_passes(ips, concurrency))
    else:
        figures = asyncio.run(httpx_passes(ips, concurrency, KEEPALIVE[variant]))
    result: dict[str, object] = dict(figures)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------------------- the parent
def start_simulator(devices: int, subnet: str, manifest: Path) -> subprocess.Popen[bytes]:
    """`fleetmon simulate` of stock Antminers with per-device listeners; returns once it listens."""
    return bench_poll.start_simulator(devices, subnet, manifest, seed=17, extra=("--listen", "per-device"))


def run_variant(variant: str, manifest: Path, concurrency: int, sim_pid: int) -> dict[str, object]:
    """One child run of `variant`; its figures plus the simulator's CPU seconds while it ran."""
    sim_before = cpu_seconds(sim_pid)
    command = [sys.executable, __file__, "--child", variant, "--manifest", str(manifest)]
    out = subprocess.run(
        [*command, "--concurrency", str(concurrency)], capture_output=True, check=True, timeout=600
    )
    result: dict[str, object] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    result["simulator_cpu_s"] = cpu_seconds(sim_pid) - sim_before
    return result


def main() -> None:
    """Start the fleet, run both variants `--rounds` times (alternating), print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=WEB_MAX_CONNECTIONS, help="fetches at once")
    parser.add_argument("--subnet", default="127.72.0.0/16")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.child:
        child(args.child, args.manifest, args.concurrency)
        return

    runs: dict[str, list[dict[str, object]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.json"
        sim = start_simulator(args.devices, args.subnet, manifest)
        try:
            sim_rss = 0.0
            for round_ in range(args.rounds):
                order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]  # rotate: no fixed order
                for variant in order:
                    result = run_variant(variant, manifest, args.concurrency, sim.pid)
                    runs[variant].append(result)
                    print(f"round {round_ + 1} {variant:10s} " + line(result), flush=True)
            sim_rss = peak_rss_mib(sim.pid)
        finally:
            sim.send_signal(signal.SIGINT)
            try:
                sim.wait(30)
            except subprocess.TimeoutExpired:
                sim.kill()
    print(
        f"fleet: {args.devices} stock Antminers (simulator peak RSS {sim_rss:.0f} MiB), "
        f"{args.concurrency} fetches at once"
    )
    compare(runs)


def of_pass(result: dict[str, object], phase: str) -> dict[str, float]:
    """The figures of one pass ("cold" or "warm") of a run."""
    figures = result[phase]
    assert isinstance(figures, dict)
    return {name: float(value) for name, value in figures.items()}


def per_fetch_ms(result: dict[str, object], phase: str) -> float:
    """CPU milliseconds per fetch of one pass."""
    figures = of_pass(result, phase)
    return figures["cpu_s"] / figures["fetches"] * 1000


def rate(result: dict[str, object], phase: str) -> float:
    """Fetches per second of one pass."""
    figures = of_pass(result, phase)
    return figures["fetches"] / figures["wall_s"]


def line(result: dict[str, object]) -> str:
    """One run's figures on one line."""
    parts = []
    for phase in ("cold", "warm"):
        figures = of_pass(result, phase)
        parts.append(
            f"{phase}: {per_fetch_ms(result, phase):.3f} ms CPU/fetch, {rate(result, phase):6.0f} fetches/s, "
            f"{int(figures['ok'])}/{int(figures['fetches'])} serials"
        )
    fetches = sum(of_pass(result, phase)["fetches"] for phase in ("cold", "warm"))
    sim_ms = float(str(result["simulator_cpu_s"])) / fetches * 1000
    return "; ".join(parts) + f"; peak RSS {result['peak_rss_mib']:.0f} MiB; simulator {sim_ms:.3f} ms/fetch"


def compare(runs: dict[str, list[dict[str, object]]]) -> None:
    """Medians per variant and the saving of the current transport against plain httpx."""
    for phase in ("cold", "warm"):
        cpu = {v: statistics.median(per_fetch_ms(r, phase) for r in runs[v]) for v in VARIANTS}
        speed = {v: statistics.median(rate(r, phase) for r in runs[v]) for v in VARIANTS}
        for variant in VARIANTS:
            print(
                f"median {phase} {variant:10s}: {cpu[variant]:.3f} ms CPU/fetch, "
                f"{speed[variant]:.0f} fetches/s"
            )
        best = min(("httpx", "httpx-ka8"), key=lambda v: cpu[v])
        saving = 1 - cpu["websession"] / cpu[best]
        saved_ms = cpu[best] - cpu["websession"]
        print(
            f"{phase}: WebSession saves {saving:.0%} of the CPU per fetch of the better plain httpx "
            f"({best}): {saved_ms:.3f} ms per fetch, {saved_ms:.1f} CPU-s per 1,000 devices; "
            f"{speed['websession'] / speed[best]:.2f}x its throughput"
        )
        if phase == "cold":
            verdict = "keep" if saving >= THRESHOLD else "return to plain httpx"
            print(f"verdict ({THRESHOLD:.0%} CPU saving per cold fetch is the bar): {verdict}")
    rss = {v: statistics.median(float(str(r["peak_rss_mib"])) for r in runs[v]) for v in VARIANTS}
    print("median peak RSS: " + ", ".join(f"{v} {rss[v]:.0f} MiB" for v in VARIANTS))


if __name__ == "__main__":
    main()

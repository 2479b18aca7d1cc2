"""The scan's connect sweep and `fleetmon scan` over a range with miners spread across it.

Real sockets on loopback (127.70.0.0/16 and 127.71.0.0/16 are this module's): a simulated fleet at
random addresses of a /22, a listener whose accept queue is full (SYNs dropped: the silent host of a
farm network), ranges where nothing listens (RST at once).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.scanner import ScanSettings, addresses, scan, sweep
from collectors.simulator.fleet import build_fleet, host_addresses
from collectors.simulator.server import FleetServer, ListenMode

ROOT = Path(__file__).resolve().parent.parent
FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]


async def test_cli_scan_of_a_range_finds_every_spread_miner_and_invents_none(tmp_path: Path) -> None:
    cidr = "127.70.0.0/22"
    fleet = build_fleet(50, subnet=cidr, seed=5)
    spread = sorted(random.Random(5).sample(list(host_addresses(cidr)), len(fleet)), key=ipaddress.ip_address)
    for item, ip in zip(fleet, spread, strict=True):
        item.device.ip = ip
    assert ipaddress.ip_address(spread[-1]) in ipaddress.ip_network("127.70.3.0/24")  # spread to the end
    server = FleetServer([f.device for f in fleet], mode=ListenMode.PER_DEVICE)
    await server.start()
    out = tmp_path / "found.json"
    try:
        proc = await asyncio.create_subprocess_exec(
            *FLEETMON, "scan", cidr, "--out", str(out), "--timeout", "5", "--concurrency", "200",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await server.close()
    assert proc.returncode == 0, stderr.decode()
    found = json.loads(out.read_text())
    assert [d["ip"] for d in found] == spread  # every miner, none invented, in address order
    assert all(d["make"] is not None and d["error"] is None for d in found)
    summary = json.loads(stdout.decode().splitlines()[-1])
    assert summary["found"] == len(fleet)
    assert stderr.decode().rstrip().endswith(f"identify {len(fleet)}/{len(fleet)}")


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """127.71.1.9:4028 listening with a full accept queue: further SYNs are dropped, a connect hangs."""
    host = "127.71.1.9"
    listener = socket.socket()
    listener.bind((host, 4028))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(3):  # backlog 0 admits one or two queued connections; later ones may not finish
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, 4028))
            fillers.append(filler)
        yield host
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _connects_within(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def test_a_silent_host_ends_at_its_deadline_and_costs_the_others_nothing(silent_listener: str) -> None:
    assert not await asyncio.to_thread(_connects_within, silent_listener, 4028, 0.5)  # it is silent
    live = ["127.71.1.10", "127.71.1.11"]
    listeners = []
    for host in live:
        listener = socket.socket()
        listener.bind((host, 4433))  # only API v3: found on the second port
        listener.listen(16)
        listeners.append(listener)
    hosts = [silent_listener, *live, "127.71.1.12"]
    reported: dict[str, int | None] = {}
    try:
        async with asyncio.timeout(20):  # the kernel alone would keep a silent connect going for minutes
            await sweep(hosts, (4028, 4433), 8, 0.3, lambda i, port: reported.__setitem__(hosts[i], port))
    finally:
        for listener in listeners:
            listener.close()
    assert reported == {silent_listener: None, live[0]: 4433, live[1]: 4433, "127.71.1.12": None}


async def test_sockets_open_at_once_never_exceed_the_concurrency() -> None:
    hosts = addresses(["127.71.4.0/23"])  # nothing listens: every connect is refused at once
    baseline = len(os.listdir("/proc/self/fd"))
    most = 0

    def done(_index: int, port: int | None) -> None:
        nonlocal most
        assert port is None
        most = max(most, len(os.listdir("/proc/self/fd")) - baseline)

    await sweep(hosts, (4028, 4433), 16, 1.0, done)
    assert 0 < most <= 16 + 1  # the sockets in flight, and the sweep's epoll
    assert len(os.listdir("/proc/self/fd")) == baseline  # every socket closed


async def test_scan_of_an_empty_range_reports_the_end_and_finds_nothing() -> None:
    progress: list[tuple[str, int, int]] = []
    settings = ScanSettings(concurrency=32, probe_timeout_s=1.0, identify_timeout_s=2.0)
    found = await scan(["127.71.8.0/28"], settings, lambda *p: progress.append(p))
    assert found == []
    assert ("probe", 14, 14) in progress
    assert progress[-1] == ("identify", 0, 0)


def test_out_of_descriptors_is_a_clear_error_not_an_absent_host() -> None:
    # Run where the descriptor limit is tiny: the sweep cannot open its sockets. Reading that as "no
    # miner there" would drop devices silently; it must stop the scan and say why.
    code = (
        "import asyncio, resource\n"
        "from collectors.scanner import addresses, sweep\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "asyncio.run(sweep(addresses(['127.71.12.0/24']), (4028,), 200, 1.0, lambda i, p: None))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode != 0
    assert "Too many open files" in proc.stderr

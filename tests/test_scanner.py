"""The scanner against the simulator: exactly the listening devices of a range, refused ones skipped."""

from __future__ import annotations

from collectors.scanner import ScanSettings, scan
from collectors.simulator.device import Fault
from collectors.simulator.fleet import build_fleet
from collectors.simulator.server import FleetServer, ListenMode


async def test_scan_finds_exactly_the_listening_devices_and_skips_refused_ones() -> None:
    fleet = build_fleet(20, mix="antminer:2,whatsminer:1,avalon:1", subnet="127.43.0.0/27", seed=9)
    refused = {f.device.ip for f in fleet[::4]}
    for item in fleet:
        if item.device.ip in refused:
            item.device.fault = Fault.REFUSED
    server = FleetServer([f.device for f in fleet], mode=ListenMode.PER_DEVICE)
    await server.start()
    progress: list[tuple[str, int, int]] = []
    try:
        settings = ScanSettings(concurrency=64, probe_timeout_s=1.0, identify_timeout_s=5.0)
        found = await scan(["127.43.0.0/27"], settings, lambda *p: progress.append(p))
    finally:
        await server.close()
    listening = [f for f in fleet if f.device.ip not in refused]
    assert [d.ip for d in found] == [f.device.ip for f in listening]
    by_ip = {d.ip: d for d in found}
    for item in listening:
        device = by_ip[item.device.ip]
        assert device.make == item.device.spec.make.value.capitalize()
        assert (device.model or "").startswith(item.device.spec.name)
        assert device.error is None
    assert progress[-1] == ("identify", len(listening), len(listening))
    assert ("probe", 30, 30) in progress  # a /27 has 30 host addresses

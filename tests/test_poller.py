"""The poller against the simulator over real sockets: a mixed fleet read as its manifest says, API v3
on 4433, transitions logged once, and re-identification after an outage or a reflash."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from collectors.poller import GC_GEN0_THRESHOLD, Poller, PollerSettings
from collectors.sample import Sample, State
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.targets import Target
from collectors.web import WebCredentials

MIX = "antminer:30,whatsminer:25,avalon:15,braiins:10,luxos:10,vnish:10"
VENDOR = {"bitmain": "stock", "microbt": "stock", "canaan": "stock", "braiins": "braiins", "luxor": "luxos"}
STATE = {
    "mining": {State.MINING},
    "sleeping": {State.SLEEPING},
    "dead_board": {State.DEGRADED},
    "overheating": {State.DEGRADED},
    "pool_down": {State.IDLE, State.DEGRADED},
}
ANTMINER_WEB = WebCredentials(profile="antminer-default", username="root", password="root")
VNISH_WEB = WebCredentials(profile="vnish-default", username="admin", password="admin")


def _poller(deadline: float = 5.0) -> Poller:
    return Poller(
        PollerSettings(
            concurrency=50, deadline_s=deadline, credentials=ANTMINER_WEB, vnish_credentials=VNISH_WEB
        )
    )


def _mismatches(row: dict[str, object], sample: Sample) -> list[str]:
    found = []
    if (sample.make or "").lower() != row["make"]:
        found.append(f"make {sample.make}")
    if not (sample.model or "").startswith(str(row["model"])):
        found.append(f"model {sample.model}")
    vendor = VENDOR.get(str(row["firmware_vendor"]), row["firmware_vendor"])
    if sample.firmware_vendor != vendor:
        found.append(f"vendor {sample.firmware_vendor}")
    states = STATE[str(row["state"])]
    if row["firmware"] == "braiins" and row["state"] == "sleeping":
        states = {State.SLEEPING, State.DEGRADED}  # BOSminer's API has no pause flag: 0 TH/s is all
    if sample.state not in states:
        found.append(f"state {sample.state}")
    nominal = row["hashrate_ths"]
    assert isinstance(nominal, float | int)
    if row["state"] == "mining" and (
        sample.hashrate_ths is None or abs(sample.hashrate_ths - nominal) > 0.1 * nominal
    ):
        found.append(f"hashrate {sample.hashrate_ths} vs {nominal}")
    gives_serial = row["make"] in ("antminer", "whatsminer") and row["firmware"] != "braiins"
    if gives_serial and sample.serial != row["serial"]:
        found.append(f"serial {sample.serial}")
    if (gives_serial or row["make"] == "avalon") and (sample.mac or "").upper() != row["mac"]:
        found.append(f"mac {sample.mac}")
    return found


async def test_mixed_fleet_is_read_as_the_manifest_says_in_both_cycles() -> None:
    async with simulated_fleet(90, mix=MIX, subnet="127.42.0.0/24", seed=21) as fleet:
        rows = fleet.manifest
        targets = [Target(str(r["ip"])) for r in rows]
        poller = _poller()
        for cycle in (1, 2):  # cycle 2 runs on cached identities
            samples = await poller.poll_once(targets)
            assert [s.ip for s in samples] == [t.host for t in targets]
            wrong = {r["ip"]: m for r, s in zip(rows, samples, strict=True) if (m := _mismatches(r, s))}
            assert wrong == {}, f"cycle {cycle}"
        assert all(poller.identity_of(t) is not None for t in targets)


async def test_whatsminer_api_v3_is_read_on_4433() -> None:
    async with simulated_fleet(40, mix="whatsminer:1", subnet="127.42.1.0/24", seed=5) as fleet:
        rows = [r for r in fleet.manifest if r["whatsminer_api_v3"]]
        assert rows, "the seed must give some API v3 devices"
        targets = [Target(str(r["ip"]), 4433) for r in rows]
        poller = _poller()
        samples = await poller.poll_once(targets)
        for row, sample, target in zip(rows, samples, targets, strict=True):
            assert _mismatches(row, sample) == []
            identity = poller.identity_of(target)
            assert identity is not None and identity.dialect == "whatsminer_v3" and identity.api_port == 4433


async def test_down_and_up_are_each_logged_once_and_the_device_is_reidentified(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with simulated_fleet(2, mix="antminer:1", subnet="127.42.2.0/29", seed=3) as fleet:
        device = fleet.devices[0].device
        target = Target(device.ip)
        poller = _poller(deadline=0.5)
        caplog.set_level(logging.INFO, logger="collectors.poller")
        assert (await poller.poll_once([target]))[0].state is State.MINING
        device.fault = Fault.HANG
        for _ in range(3):
            sample = (await poller.poll_once([target]))[0]
            assert sample.state is State.UNREACHABLE
            assert [e.code for e in sample.errors] == ["timeout"]
            assert poller.identity_of(target) is None
        device.fault = None
        for _ in range(2):
            assert (await poller.poll_once([target]))[0].state is State.MINING
        assert poller.identity_of(target) is not None
        messages = [r.getMessage() for r in caplog.records]
        assert sum("went down" in m for m in messages) == 1
        assert sum("is back up" in m for m in messages) == 1


async def test_a_reflashed_device_is_identified_again() -> None:
    async with simulated_fleet(1, mix="antminer:1", subnet="127.42.2.8/29", seed=3) as fleet:
        device = fleet.devices[0].device
        target = Target(device.ip)
        poller = _poller()
        first = (await poller.poll_once([target]))[0]
        assert first.firmware_vendor == "stock"
        device.firmware_version = "20260101"  # a newer stock build: CompileTime changes
        second = (await poller.poll_once([target]))[0]
        assert second.firmware_version != first.firmware_version
        assert "2026" in (second.firmware_version or "")
        identity = poller.identity_of(target)
        assert identity is not None and identity.firmware_version == second.firmware_version


def test_gc_tuning_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    # Process-wide, so it runs in a child: the test process keeps its own collector settings.
    code = (
        "import gc; from collectors.poller import tune_gc_for_polling as t; t(); "
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(GC_GEN0_THRESHOLD), "True"]

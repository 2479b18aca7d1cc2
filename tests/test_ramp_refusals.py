"""A ramp leaves out, at plan time, the devices whose firmware would refuse the action (issue 19): their
expected change would count in a step and never be delivered. Braiins OS sleeps over gRPC with its own
login (collector.braiins_credential_profile, docs/actions.md), which this service is not given, so a site
of LuxOS and Braiins miners curtails on LuxOS alone.

Test addresses: 127.44.5.0/24.
"""

from __future__ import annotations

from collections.abc import Iterator

import fleet_samples
import pytest
from action_jobs import ENDED, job_end
from service_harness import LiveService, live_service

from collectors.simulator.device import Firmware, SimState
from fleetmon.config import ActionSettings


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("ramp-refusals")
    with live_service(
        fleet_samples.sqlite_url(tmp),
        tmp,
        devices=6,
        seed=5,
        mix="luxos:3,braiins:3,antminer:0,avalon:0,whatsminer:0,vnish:0",
        subnet="127.44.5.0/24",
        collecting=True,
        interval_s=1.0,
        actions=ActionSettings(connect_timeout_s=0.5, read_timeout_s=0.5, timeout_s=1.5),
    ) as service:
        yield service


def test_a_ramp_plans_without_the_miners_whose_firmware_would_refuse(live: LiveService) -> None:
    braiins = {i.device.ip for i in live.fleet if i.device.firmware is Firmware.BRAIINS}
    luxos = {i.device.ip for i in live.fleet if i.device.firmware is Firmware.LUXOS}
    assert braiins and luxos
    body = {"action": "sleep", "selector": {"site": live.site}, "ramp": {"step_devices": 1, "interval_s": 0}}
    with live.client(live.keys["operator"]) as client:
        plan = client.post("/api/v1/actions", json={**body, "dry_run": True}).json()
        by_ip = {d["host"]: d for d in plan["devices"]}
        for ip in braiins:
            assert by_ip[ip]["excluded"] is not None and "would be refused" in by_ip[ip]["excluded"]
        planned = {d for s in plan["steps"] for d in s["device_ids"]}
        assert planned == {by_ip[ip]["device_id"] for ip in luxos if by_ip[ip]["excluded"] is None}

        response = client.post("/api/v1/actions", json=body)
        assert response.status_code == 202, response.text
        job = job_end(client, response.json())
        assert job["state"] == "succeeded", job  # nothing refused mid-ramp
        tasks = {t["host"]: t for t in job["tasks"]}
        assert {tasks[ip]["state"] for ip in braiins} == {"skipped"}
        assert all("would be refused" in (tasks[ip]["detail"] or "") for ip in braiins)
        slept = [ip for ip in luxos if tasks[ip]["state"] == "succeeded"]
        assert slept
        sims = {i.device.ip: i.device for i in live.fleet}
        assert all(sims[ip].state is SimState.SLEEPING for ip in slept)
        assert all(sims[ip].state is not SimState.SLEEPING for ip in braiins)
        wake = {"action": "wake", "selector": {"site": live.site}}
        assert job_end(client, client.post("/api/v1/actions", json=wake).json())["state"] in ENDED

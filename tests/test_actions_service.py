"""Operator actions through the API of a collecting service (issue 19's "must show"): a simulated fleet
over real sockets, polled every second by the service's own loop into a real SQLite database.

Test addresses: 127.40.0.0/16 only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import fleet_samples
import httpx
import pytest
from action_jobs import WAIT_LIMIT_S, act, after_cycles, job_end
from service_harness import LiveService, antminer_factory_login, live_service
from sqlalchemy import select, update

from collectors.simulator.device import Fault, Firmware, Make, SimState
from collectors.simulator.fleet import FleetDevice
from fleetmon.config import ActionSettings
from fleetmon.storage.actions import IDEMPOTENCY

ANTMINER_PASSWORD_ENV = "FLEETMON_I19_ANTMINER_PW"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("actions")
    # The stock Antminers' web login (the simulator's factory root/root): a staged curtailment now
    # plans them on an estimate of their power, so it acts on them too.
    base = antminer_factory_login(ANTMINER_PASSWORD_ENV)
    with live_service(
        fleet_samples.sqlite_url(tmp),
        tmp,
        devices=12,
        mix="luxos:6,avalon:4,antminer:2,braiins:0,whatsminer:0,vnish:0",
        subnet="127.40.1.0/24",
        collecting=True,
        interval_s=1.0,
        actions=ActionSettings(connect_timeout_s=0.5, read_timeout_s=0.5, timeout_s=1.5, concurrency=8),
        settings_base=base,
    ) as service:
        yield service


def _ids(live: LiveService) -> dict[str, int]:
    """Device id by IP, from the API."""
    with live.client(live.keys["admin"]) as client:
        items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    return {item["ip"]: item["id"] for item in items}


def _devices(live: LiveService, kind: str) -> list[FleetDevice]:
    """The fleet's devices of one kind: `luxos`, `avalon` or `stock` (stock Antminer firmware)."""
    matches = {
        "luxos": lambda d: d.firmware is Firmware.LUXOS,
        "avalon": lambda d: d.spec.make is Make.AVALON,
        "stock": lambda d: d.spec.make is Make.ANTMINER and d.firmware is Firmware.STOCK,
    }[kind]
    return [item for item in live.fleet if matches(item.device)]


def _state(client: httpx.Client, device_id: int) -> str:
    return str(client.get(f"/api/v1/devices/{device_id}", params={"samples": 0}).json()["device"]["state"])


def test_sleep_wake_and_locate_one_miner_as_operator(live: LiveService) -> None:
    miner = _devices(live, "luxos")[0]
    device_id = _ids(live)[miner.device.ip]
    with live.client(live.keys["operator"]) as client:
        assert _state(client, device_id) == "mining"
        job = act(client, device_id, "sleep")
        assert job["state"] == "succeeded", job
        assert [t["state"] for t in job["tasks"]] == ["succeeded"]
        assert job["actor"] == "test operator" and job["devices_done"] == 1
        after_cycles(live, 2)
        assert _state(client, device_id) == "sleeping"

        job = act(client, device_id, "wake")
        assert job["state"] == "succeeded", job
        after_cycles(live, 2)
        assert _state(client, device_id) == "mining"

        assert miner.device.locate is False
        job = act(client, device_id, "locate", on=True)
        assert job["state"] == "succeeded" and job["params"] == {"on": True}
        assert miner.device.locate is True  # what the light reads back on the firmware's own answer
        assert act(client, device_id, "locate", on=False)["state"] == "succeeded"
        assert miner.device.locate is False


@pytest.mark.parametrize("role", ["viewer", "procurement"])
def test_a_role_without_the_permission_gets_403_nothing_is_sent_and_the_attempt_is_audited(
    live: LiveService, role: str
) -> None:
    miner = _devices(live, "luxos")[1]
    device_id = _ids(live)[miner.device.ip]
    with live.client(live.keys[role]) as client:
        for body in ({"action": "sleep", "params": {}}, {"action": "locate", "params": {"on": True}}):
            response = client.post(f"/api/v1/devices/{device_id}/actions", json=body)
            assert response.status_code == 403, response.text
        assert client.get("/api/v1/audit").status_code == 403
    after_cycles(live, 2)
    assert miner.device.state is SimState.MINING and miner.device.locate is False
    with live.client(live.keys["operator"]) as client:
        assert _state(client, device_id) == "mining"
        entries = client.get("/api/v1/audit", params={"device_id": device_id}).json()["entries"]
    refused = [e for e in entries if e["outcome"] == "refused" and e["role"] == role]
    assert {e["action"] for e in refused} == {"sleep", "locate"}
    assert all(e["actor"] == f"test {role}" and e["device_ids"] == [device_id] for e in refused)
    assert all(e["job_id"] is None for e in refused)


def test_the_audit_log_lists_every_action_newest_first(live: LiveService) -> None:
    miner = _devices(live, "avalon")[0]
    device_id = _ids(live)[miner.device.ip]
    with live.client(live.keys["operator"]) as client:
        sleep_job = act(client, device_id, "sleep")
        wake_job = act(client, device_id, "wake")
    with live.client(live.keys["viewer"]) as client:
        assert (
            client.post(f"/api/v1/devices/{device_id}/actions", json={"action": "reboot"}).status_code == 403
        )
    with live.client(live.keys["admin"]) as client:
        entries = client.get("/api/v1/audit", params={"device_id": device_id}).json()["entries"]
    seen = [(e["action"], e["outcome"], e["job_id"]) for e in entries]
    assert seen[0] == ("reboot", "refused", None)
    assert ("wake", "succeeded", wake_job["id"]) in seen and ("wake", "accepted", wake_job["id"]) in seen
    assert ("sleep", "succeeded", sleep_job["id"]) in seen and ("sleep", "accepted", sleep_job["id"]) in seen
    assert seen.index(("wake", "succeeded", wake_job["id"])) < seen.index(
        ("sleep", "accepted", sleep_job["id"])
    )
    ats = [e["at"] for e in entries]
    assert ats == sorted(ats, reverse=True)


def test_an_unknown_device_is_404_and_power_target_needs_watts(live: LiveService) -> None:
    with live.client(live.keys["operator"]) as client:
        assert client.post("/api/v1/devices/999999/actions", json={"action": "sleep"}).status_code == 404
        device_id = next(iter(_ids(live).values()))
        response = client.post(f"/api/v1/devices/{device_id}/actions", json={"action": "power_target"})
        assert response.status_code == 422
        assert client.post("/api/v1/actions", json={"action": "sleep", "selector": {}}).status_code == 404
        empty = client.post("/api/v1/actions", json={"action": "sleep", "selector": {"model": "no such"}})
        assert empty.status_code == 404


def test_an_action_the_firmware_cannot_do_is_refused_up_front(live: LiveService) -> None:
    # Stock Antminer: no power target (work modes, not watts); refused before anything is sent.
    miner = _devices(live, "stock")[0]
    device_id = _ids(live)[miner.device.ip]
    with live.client(live.keys["operator"]) as client:
        job = act(client, device_id, "power_target", watts=2000)
        assert job["state"] == "failed"
        (task,) = job["tasks"]
        assert task["state"] == "refused" and task["error_code"] == "unsupported_action"
        entries = client.get("/api/v1/audit", params={"device_id": device_id}).json()["entries"]
    assert entries[0]["outcome"] == "failed" and "unsupported_action" in entries[0]["detail"]


def test_a_retried_post_with_the_same_idempotency_key_acts_once(live: LiveService) -> None:
    miner = _devices(live, "luxos")[2]
    device_id = _ids(live)[miner.device.ip]
    url = f"/api/v1/devices/{device_id}/actions"
    body = {"action": "locate", "params": {"on": True}}
    with live.client(live.keys["operator"]) as client:
        first = client.post(url, json=body, headers={"Idempotency-Key": "retry-1"})
        second = client.post(url, json=body, headers={"Idempotency-Key": "retry-1"})
        assert first.status_code == second.status_code == 202
        assert first.json()["id"] == second.json()["id"]
        other = client.post(url, json={"action": "reboot"}, headers={"Idempotency-Key": "retry-1"})
        assert other.status_code == 409
        job_end(client, first.json())
        jobs = client.get("/api/v1/actions", params={"limit": 500}).json()["jobs"]
        entries = client.get("/api/v1/audit", params={"device_id": device_id}).json()["entries"]
    assert sum(j["id"] == first.json()["id"] for j in jobs) == 1
    accepted = [e for e in entries if e["outcome"] == "accepted" and e["action"] == "locate"]
    assert [e["job_id"] for e in accepted] == [first.json()["id"]]
    with live.client(live.keys["admin"]) as client:  # another principal's key is its own
        third = client.post(url, json=body, headers={"Idempotency-Key": "retry-1"})
        assert third.status_code == 202 and third.json()["id"] != first.json()["id"]
        job_end(client, third.json())
        act(client, device_id, "locate", on=False)


def test_a_job_names_its_owner_and_an_idempotency_key_is_forgotten_after_its_ttl(live: LiveService) -> None:
    assert live.runtime is not None
    miner = _devices(live, "luxos")[2]
    device_id = _ids(live)[miner.device.ip]
    url = f"/api/v1/devices/{device_id}/actions"
    body = {"action": "locate", "params": {"on": False}}
    with live.client(live.keys["operator"]) as client:
        first = client.post(url, json=body, headers={"Idempotency-Key": "ttl-1"})
        assert first.status_code == 202, first.text
        job = job_end(client, first.json())
        assert job["owner"] == live.runtime.settings.actions.instance == socket.gethostname()
        assert job["heartbeat_at"] is not None
        # The key was stored a day and a minute ago (the default time to live is 24 h) and housekeeping
        # has not purged it yet: the same request is a new one.
        with live.runtime.engine.begin() as conn:
            key = IDEMPOTENCY.c.key == "ttl-1"
            stored = conn.execute(select(IDEMPOTENCY.c.created_at).where(key)).scalar_one()
            conn.execute(
                update(IDEMPOTENCY).where(key).values(created_at=stored - timedelta(hours=24, minutes=1))
            )
        again = client.post(url, json=body, headers={"Idempotency-Key": "ttl-1"})
        assert again.status_code == 202 and again.json()["id"] != job["id"]
        job_end(client, again.json())
        retried = client.post(url, json=body, headers={"Idempotency-Key": "ttl-1"})
        assert retried.json()["id"] == again.json()["id"]


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.REFUSED, Fault.GARBAGE])
def test_a_faulty_miner_ends_its_task_with_an_error_and_the_others_succeed(
    live: LiveService, fault: Fault
) -> None:
    faulty, healthy = _devices(live, "luxos")[3], _devices(live, "luxos")[4]
    ids = _ids(live)
    bad_id, good_id = ids[faulty.device.ip], ids[healthy.device.ip]
    faulty.device.fault = fault
    try:
        with live.client(live.keys["operator"]) as client:
            response = client.post(
                "/api/v1/actions",
                json={"action": "locate", "params": {"on": True}, "selector": {"ids": [bad_id, good_id]}},
            )
            assert response.status_code == 202, response.text
            job = job_end(client, response.json())
            tasks = {t["device_id"]: t for t in job["tasks"]}
            assert job["state"] == "partial" and job["devices_failed"] == 1
            assert tasks[good_id]["state"] == "succeeded"
            assert tasks[bad_id]["state"] == "failed" and tasks[bad_id]["error_code"]
            entries = client.get("/api/v1/audit", params={"device_id": bad_id}).json()["entries"]
            failed = next(e for e in entries if e["job_id"] == job["id"] and e["outcome"] == "failed")
            assert failed["device_ids"] == [bad_id]
            assert tasks[bad_id]["error_code"] in failed["detail"]
            act(client, good_id, "locate", on=False)
    finally:
        faulty.device.fault = None
        # Leave the module's fleet as found: two cycles hold one whole poll that read the healed miner
        # (the staged curtailment below plans from the snapshot, where a miner read while faulty has no
        # power and no estimate).
        after_cycles(live, 2)
    assert healthy.device.locate is False


def _site_kw(client: httpx.Client, site: str) -> float:
    items = client.get("/api/v1/devices", params={"site": site, "limit": 1000}).json()["items"]
    return sum(item["power_w"] for item in items if item["power_w"] is not None) / 1000.0


def test_staged_curtailment_to_a_site_target_and_back(live: LiveService) -> None:
    step_devices, step_kw = 2, 7.0
    with live.client(live.keys["operator"]) as client:
        # The site's power counts every device by the same rule as the ramp (reported, else PDU outlet,
        # else estimated: the stock Antminers report none), so it is read from a plan, not summed from
        # the devices' reported watts.
        probe = {"action": "sleep", "selector": {"site": live.site}, "dry_run": True}
        before = client.post("/api/v1/actions", json={**probe, "ramp": {"interval_s": 0}}).json()["site_kw"]
        target = round(0.55 * before, 3)
        ramp = {"step_devices": step_devices, "step_kw": step_kw, "interval_s": 0.5, "target_site_kw": target}
        body = {"action": "sleep", "selector": {"site": live.site}, "ramp": ramp}

        plan = client.post("/api/v1/actions", json={**body, "dry_run": True})
        assert plan.status_code == 200, plan.text
        plan_json = plan.json()
        assert {d["device_id"] for d in plan_json["devices"]} == set(_ids(live).values())
        excluded = {d["device_id"] for d in plan_json["devices"] if d["excluded"]}
        unpowered = {
            item["id"] for item in client.get("/api/v1/devices").json()["items"] if item["power_w"] is None
        }
        # Devices that report no power are planned on an estimate (and counted in the site by it), not
        # left out (docs/actions.md, "Power figures").
        by_id = {d["device_id"]: d for d in plan_json["devices"]}
        assert unpowered and all(by_id[d]["power_source"] == "estimated" for d in unpowered)
        assert not unpowered & excluded
        assert plan_json["expected_site_kw_after"] <= target < plan_json["site_kw"]
        for step in plan_json["steps"]:
            assert len(step["device_ids"]) <= step_devices and step["expected_kw"] <= step_kw
        audit = client.get("/api/v1/audit").json()["entries"]
        assert audit[0]["outcome"] == "dry_run" and audit[0]["job_id"] is None

        response = client.post("/api/v1/actions", json=body)
        assert response.status_code == 202, response.text
        job = job_end(client, response.json())
        assert job["state"] == "succeeded", job
        done = [s for s in job["steps"] if s["state"] == "done"]
        assert (
            done
            and [s["device_ids"] for s in done[: len(plan_json["steps"])]]
            == [s["device_ids"] for s in plan_json["steps"]][: len(done)]
        )
        readings = [before] + [s["site_kw_after"] for s in done]
        assert all(r is not None for r in readings)
        for earlier, later, step in zip(readings, readings[1:], done, strict=False):
            assert later < earlier  # falls step by step
            assert len(step["device_ids"]) <= step_devices
            # each device's measured draw moves by up to ~15 W between reads (simulator noise)
            assert earlier - later <= step_kw + 0.015 * len(live.fleet)
        assert readings[-1] <= target
        assert readings[-2] > target  # it stopped at the first step that reached the target
        slept = [d for s in done for d in s["device_ids"]]
        assert all(_state(client, d) == "sleeping" for d in slept)

        wake = {
            "action": "wake",
            "selector": {"ids": slept},
            "ramp": {"step_devices": step_devices, "interval_s": 0.5},
        }
        response = client.post("/api/v1/actions", json=wake)
        assert response.status_code == 202, response.text
        job = job_end(client, response.json())
        assert job["state"] == "succeeded", job
        woken = [s for s in job["steps"] if s["state"] == "done"]
        assert sorted(d for s in woken for d in s["device_ids"]) == sorted(slept)
        readings = [s["site_kw_after"] for s in woken]
        assert all(len(s["device_ids"]) <= step_devices for s in woken)
        assert readings == sorted(readings)  # rises step by step
        after_cycles(live, 1)
        assert all(_state(client, d) == "mining" for d in slept)
        assert _site_kw(client, live.site) > target


def test_cancel_stops_the_remaining_steps(live: LiveService) -> None:
    luxos = [_ids(live)[item.device.ip] for item in _devices(live, "luxos")]
    body = {
        "action": "locate",
        "params": {"on": True},
        "selector": {"ids": luxos},
        "ramp": {"step_devices": 1, "interval_s": 30},
    }
    with live.client(live.keys["operator"]) as client:
        job = client.post("/api/v1/actions", json=body).json()
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not any(s["state"] == "done" for s in job["steps"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
            job = client.get(f"/api/v1/actions/{job['id']}").json()
        cancelled = client.post(f"/api/v1/actions/{job['id']}/cancel")
        assert cancelled.status_code == 200
        job = job_end(client, cancelled.json())
        assert job["state"] == "cancelled"
        states = [t["state"] for t in job["tasks"]]
        assert states.count("succeeded") == 1 and states.count("cancelled") == len(luxos) - 1
        entries = client.get("/api/v1/audit").json()["entries"]
        assert any(e["job_id"] == job["id"] and e["outcome"] == "cancelled" for e in entries)
        first = next(t["device_id"] for t in job["tasks"] if t["state"] == "succeeded")
        act(client, first, "locate", on=False)


def test_a_reader_replica_answers_actions_with_409_but_plans_dry_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("reader")
    with live_service(fleet_samples.sqlite_url(tmp), tmp, devices=2, subnet="127.40.2.0/24") as reader:
        device_id = next(iter(_ids(reader).values()))
        with reader.client(reader.keys["operator"]) as client:
            response = client.post(f"/api/v1/devices/{device_id}/actions", json={"action": "sleep"})
            assert response.status_code == 409
            assert "collecting process" in response.json()["detail"]
            body = {"action": "sleep", "selector": {"ids": [device_id]}, "dry_run": True}
            assert client.post("/api/v1/actions", json=body).status_code == 200
            assert client.post("/api/v1/actions", json={**body, "dry_run": False}).status_code == 409


def _cli(live: LiveService, role: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEETMON_API_KEY": live.keys[role]}
    return subprocess.run(
        [sys.executable, "-m", "fleetmon.cli.main", "action", *args, "--api", live.base_url],
        check=False,
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT_S,
        env=env,
    )


def test_the_cli_follows_a_job_and_its_exit_status_says_how_it_ended(live: LiveService) -> None:
    miner, faulty = _devices(live, "avalon")[1], _devices(live, "avalon")[2]
    result = _cli(live, "operator", "locate", miner.device.ip, "--param", "on=true")
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout and live.keys["operator"] not in result.stdout + result.stderr
    assert miner.device.locate is True
    assert _cli(live, "operator", "locate", miner.device.ip, "--param", "on=false").returncode == 0
    assert miner.device.locate is False

    refused = _cli(live, "viewer", "sleep", miner.device.ip)
    assert refused.returncode == 2 and "403" in refused.stderr
    assert miner.device.state is SimState.MINING

    faulty.device.fault = Fault.HANG
    try:
        failed = _cli(live, "operator", "locate", faulty.device.ip)
    finally:
        faulty.device.fault = None
    assert failed.returncode == 1 and "failed" in failed.stdout

    states = [item.device.state for item in live.fleet]
    plan = _cli(
        live, "operator", "sleep", "--site", live.site, "--dry-run", "--ramp", "step_devices=3,interval_s=0"
    )
    assert plan.returncode == 0, plan.stderr
    assert "nothing sent" in plan.stdout and "step 1:" in plan.stdout
    assert [item.device.state for item in live.fleet] == states  # nothing was sent

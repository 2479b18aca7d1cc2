"""Ramps over miners that report no power (issue 19): a device's power is its reported watts, else its PDU
outlet's, else the catalog's estimate, and the site's figure is summed by the same rule. A staged
curtailment of a site where most miners are stock Antminers (which, like the real firmware, report no
watts) still falls step by step to the target, no step larger than asked. A simulated fleet over real
sockets, a collecting service, a real SQLite database; the snmpsim agent for the PDU case.

Test addresses: 127.44.0.0/16 only (this module: 127.44.3.0/24, 127.44.4.0/24).
"""

from __future__ import annotations

from collections.abc import Iterator

import fleet_samples
import httpx
import pytest
from action_jobs import job_end
from fleet_samples import T0, make_sample
from service_harness import LiveService, antminer_factory_login, live_service
from snmpsim_agent import start_agent

from collectors.sample import State
from collectors.simulator.device import Firmware, Make
from collectors.simulator.fleet import build_fleet
from fleetmon.config import (
    ActionSettings,
    PduOutletSettings,
    PduSettings,
)
from fleetmon.service.power import IDLE_W, PowerSource, device_power, estimate_w

PASSWORD_ENV = "FLEETMON_I19_RAMP_ANTMINER_PW"
MIX = "antminer:7,luxos:3,avalon:0,whatsminer:0,braiins:0,vnish:0"
NOISE_KW_PER_DEVICE = 0.1
"""How far one device's figure may move between two reads with nothing done to it: the simulator jitters
each board's hashrate by ~1.5 % (and reported power with it, +-15 W), and an estimate follows the hashrate
(~3 % of ~3.3 kW at the extreme)."""


# ---- the rule, per device --------------------------------------------------------------------------


def test_reported_watts_come_first_then_the_pdu_outlet_then_an_estimate() -> None:
    reporting = make_sample(1, T0)  # an S19 Pro that reports 3253 W
    assert reporting.power_w is not None
    assert device_power(reporting, 3400.0) == device_power(reporting, None)
    power = device_power(reporting, None)
    assert power is not None and (power.watts, power.source) == (reporting.power_w, PowerSource.REPORTED)

    silent = reporting.model_copy(update={"power_w": None, "efficiency_jth": None})
    power = device_power(silent, 3400.0)
    assert power is not None and (power.watts, power.source) == (3400.0, PowerSource.PDU)
    power = device_power(silent, None)
    assert power is not None and power.source is PowerSource.ESTIMATED
    # the catalog's 3250 W for an S19 Pro, scaled by the hashrate over the expected hashrate
    assert silent.hashrate_ths is not None and silent.expected_hashrate_ths is not None
    ratio = silent.hashrate_ths / silent.expected_hashrate_ths
    assert power.watts == pytest.approx(3250.0 * ratio, abs=0.1) and power.watts < 3250.0


def test_an_estimate_is_the_idle_figure_asleep_and_none_when_down_or_unknown() -> None:
    silent = make_sample(1, T0).model_copy(update={"power_w": None})
    assert estimate_w(silent.model_copy(update={"state": State.SLEEPING, "hashrate_ths": 0.0})) == IDLE_W
    assert estimate_w(silent.model_copy(update={"hashrate_ths": 0.0})) == IDLE_W  # not hashing: the floor
    assert estimate_w(make_sample(1, T0, state=State.UNREACHABLE)) is None
    assert estimate_w(silent.model_copy(update={"model": "Unknown Box 9000", "make": None})) is None
    assert device_power(make_sample(1, T0, state=State.UNREACHABLE), None) is None


# ---- a site of mostly non-reporting miners, through the API ------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("ramp-power")
    base = antminer_factory_login(PASSWORD_ENV)
    with live_service(
        fleet_samples.sqlite_url(tmp),
        tmp,
        devices=10,
        mix=MIX,
        subnet="127.44.3.0/24",
        collecting=True,
        interval_s=1.0,
        actions=ActionSettings(connect_timeout_s=0.5, read_timeout_s=0.5, timeout_s=1.5, concurrency=8),
        settings_base=base,
    ) as service:
        yield service


def _stock_ids(live: LiveService, client: httpx.Client) -> set[int]:
    stock = {
        i.device.ip
        for i in live.fleet
        if i.device.spec.make is Make.ANTMINER and i.device.firmware is Firmware.STOCK
    }
    items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    assert all(item["power_w"] is None for item in items if item["ip"] in stock)  # as the real firmware
    return {item["id"] for item in items if item["ip"] in stock}


def test_a_curtailment_falls_step_by_step_over_miners_that_report_no_power(live: LiveService) -> None:
    step_devices, step_kw = 2, 7.0
    with live.client(live.keys["operator"]) as client:
        stock = _stock_ids(live, client)
        assert len(stock) >= 5
        probe = {
            "action": "sleep",
            "selector": {"site": live.site},
            "dry_run": True,
            "ramp": {"interval_s": 0},
        }
        site = client.post("/api/v1/actions", json=probe).json()
        assert site["site_kw_sources"]["estimated_kw"] > site["site_kw_sources"]["reported_kw"] > 0
        target = round(0.4 * site["site_kw"], 3)
        ramp = {"step_devices": step_devices, "step_kw": step_kw, "interval_s": 0.2, "target_site_kw": target}
        body = {"action": "sleep", "selector": {"site": live.site}, "ramp": ramp}

        plan = client.post("/api/v1/actions", json={**body, "dry_run": True}).json()
        by_id = {d["device_id"]: d for d in plan["devices"]}
        assert all(by_id[d]["power_source"] == "estimated" for d in stock)
        # left out only for what it is doing (the fleet has a miner found asleep), never for its power
        assert all(by_id[d]["excluded"] is None for d in stock if by_id[d]["state"] == "mining")
        assert all(by_id[d]["power_source"] == "reported" for d in set(by_id) - stock)
        planned = {d for s in plan["steps"] for d in s["device_ids"]}
        assert planned & stock  # the non-reporting miners are curtailed too
        assert plan["expected_site_kw_after"] <= target < plan["site_kw"]
        for step in plan["steps"]:
            assert len(step["device_ids"]) <= step_devices and step["expected_kw"] <= step_kw

        response = client.post("/api/v1/actions", json=body)
        assert response.status_code == 202, response.text
        job = job_end(client, response.json())
        assert job["state"] == "succeeded", job
        done = [s for s in job["steps"] if s["state"] == "done"]
        readings = [plan["site_kw"]] + [s["site_kw_after"] for s in done]
        for earlier, later, step in zip(readings, readings[1:], done, strict=False):
            assert later < earlier  # falls step by step
            assert len(step["device_ids"]) <= step_devices and step["expected_kw"] <= step_kw
            assert earlier - later <= step_kw + NOISE_KW_PER_DEVICE * len(live.fleet)
            sources = step["site_kw_after_sources"]
            share = sources["reported_kw"] + sources["pdu_kw"] + sources["estimated_kw"]
            assert share == pytest.approx(step["site_kw_after"], abs=0.002)
            assert sources["estimated_kw"] > 0
        assert readings[-1] <= target < readings[-2]
        slept = [d for s in done for d in s["device_ids"]]
        assert set(slept) & stock
        for device_id in slept:
            device = client.get(f"/api/v1/devices/{device_id}", params={"samples": 0}).json()["device"]
            assert device["state"] == "sleeping"

        wake = {
            "action": "wake",
            "selector": {"ids": slept},
            "ramp": {"step_devices": step_devices, "interval_s": 0.2},
        }
        job = job_end(client, client.post("/api/v1/actions", json=wake).json())
        assert job["state"] == "succeeded", job
        woken = [s["site_kw_after"] for s in job["steps"] if s["state"] == "done"]
        assert woken == sorted(woken) and woken[-1] > target  # rises step by step, back over the target


def test_a_miner_fed_by_a_read_pdu_outlet_is_planned_on_the_outlet_watts(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    subnet, seed = "127.44.4.0/24", 7
    fleet = build_fleet(4, mix="antminer:1", subnet=subnet, seed=seed)
    stock_ip = fleet[0].device.ip
    tmp = tmp_path_factory.mktemp("ramp-pdu")
    with start_agent() as agent, pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLEETMON_I19_PDU_APC", "apc")
        pdu = PduSettings(
            name="a07-apc",
            host="127.0.0.1",
            port=agent.port,
            community_env="FLEETMON_I19_PDU_APC",
            outlets=[PduOutletSettings(outlet=2, miner=stock_ip)],  # type: ignore[arg-type]
        )
        url = fleet_samples.sqlite_url(tmp)
        with (
            live_service(url, tmp, devices=4, seed=seed, subnet=subnet, mix="antminer:1", pdus=[pdu]) as live,
            live.client(live.keys["operator"]) as client,
        ):
            outlets = client.get("/api/v1/pdus").json()["items"][0]["outlets"]
            outlet = next(o for o in outlets if o["miner_ip"] == stock_ip)
            assert outlet["power_w"] is not None and outlet["miner_power_w"] is None
            body = {
                "action": "sleep",
                "selector": {"site": live.site},
                "dry_run": True,
                "ramp": {"step_devices": 1, "interval_s": 0},
            }
            plan = client.post("/api/v1/actions", json=body).json()
    by_ip = {d["host"]: d for d in plan["devices"]}
    fed = by_ip[stock_ip]
    assert (fed["power_source"], fed["power_w"]) == ("pdu", outlet["power_w"])
    assert all(d["power_source"] == "estimated" for ip, d in by_ip.items() if ip != stock_ip)
    sources = plan["site_kw_sources"]
    assert sources["pdu_kw"] == pytest.approx(outlet["power_w"] / 1000.0, abs=0.001)
    assert sources["reported_kw"] == 0.0 and sources["estimated_kw"] > 0

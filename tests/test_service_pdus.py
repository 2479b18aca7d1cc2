"""PDU-measured power beside miner-reported power, through the live service: a simulated fleet, the real
snmpsim agent serving the APC and Raritan recordings, and a third PDU on a port where nothing answers.

The expected outlet powers come from reading the agent directly with collectors.snmp (whose values
tests/test_snmp_pdu.py checks against the recordings), the miner powers from GET /api/v1/devices.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import fleet_samples
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_harness import LiveService, live_service, next_subnet
from snmpsim_agent import Agent, free_udp_port, start_agent

from collectors.simulator.fleet import build_fleet
from collectors.snmp import PduReading, SnmpTarget, SnmpTimeouts, read_pdu
from fleetmon.config import ConfigError, PduOutletSettings, PduSettings, Settings, load_settings

COMMUNITIES = {"FLEETMON_TEST_PDU_APC": "apc", "FLEETMON_TEST_PDU_RARITAN": "raritan"}
DEAD_VAR = "FLEETMON_TEST_PDU_DEAD"
DEVICES, SEED = 24, 7


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with start_agent() as running:
        yield running


@pytest.fixture(scope="module")
def readings(agent: Agent) -> dict[str, PduReading]:
    """Each simulated PDU read directly, for the expected values."""

    async def read(community: str) -> PduReading:
        return await read_pdu(SnmpTarget(agent.host, agent.port, community), SnmpTimeouts(1.0, 1))

    return {c: asyncio.run(read(c)) for c in ("apc", "raritan")}


@pytest.fixture(scope="module")
def service(agent: Agent, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """24 simulated miners; APC outlets 1-3 feed miners 0-2, Raritan outlets 1-2 miners 3-4, and a PDU
    on a silent port feeds miner 5."""
    tmp = tmp_path_factory.mktemp("pdus")
    subnet = next_subnet()
    ips = [item.device.ip for item in build_fleet(DEVICES, subnet=subnet, seed=SEED)]
    pdus = [
        _pdu("a07-apc", agent.port, "FLEETMON_TEST_PDU_APC", {1: ips[0], 2: ips[1], 3: ips[2]}),
        _pdu("b02-raritan", agent.port, "FLEETMON_TEST_PDU_RARITAN", {1: ips[3], 2: ips[4]}),
        _pdu("c01-dead", free_udp_port(), DEAD_VAR, {1: ips[5]}),
    ]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**COMMUNITIES, DEAD_VAR: "public"}.items():
            patch.setenv(name, value)
        url = fleet_samples.sqlite_url(tmp)
        with live_service(url, tmp, devices=DEVICES, seed=SEED, subnet=subnet, pdus=pdus) as live:
            assert [item.device.ip for item in live.fleet] == ips
            yield live


def _pdu(name: str, port: int, community_env: str, outlets: dict[int, str]) -> PduSettings:
    return PduSettings(
        name=name,
        host="127.0.0.1",
        port=port,
        community_env=community_env,
        outlets=[PduOutletSettings(outlet=n, miner=ip) for n, ip in outlets.items()],  # type: ignore[arg-type]
    )


def _miner_power(service: LiveService) -> dict[str, tuple[int, float | None]]:
    with service.client(service.keys["viewer"]) as client:
        items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    return {item["ip"]: (item["id"], item["power_w"]) for item in items}


def test_pdu_list_shows_outlet_power_beside_miner_power(
    service: LiveService, readings: dict[str, PduReading]
) -> None:
    miners = _miner_power(service)
    with service.client(service.keys["viewer"]) as client:
        response = client.get("/api/v1/pdus")
    assert response.status_code == 200
    pdus = {item["name"]: item for item in response.json()["items"]}
    assert set(pdus) == {"a07-apc", "b02-raritan", "c01-dead"}
    ips = [item.device.ip for item in service.fleet]
    compared = 0
    for name, community, mapping in (("a07-apc", "apc", ips[0:3]), ("b02-raritan", "raritan", ips[3:5])):
        pdu, reading = pdus[name], readings[community]
        assert pdu["up"] is True and pdu["error"] is None
        assert pdu["vendor"] == community and pdu["total_power_w"] == reading.total_power_w
        outlets = {(o["unit"], o["outlet"]): o for o in pdu["outlets"]}
        assert set(outlets) == {(o.unit, o.index) for o in reading.outlets}  # every outlet, mapped or not
        for outlet in reading.outlets:
            row = outlets[(outlet.unit, outlet.index)]
            assert (row["power_w"], row["name"]) == (outlet.power_w, outlet.name)
        for number, ip in enumerate(mapping, start=1):
            row = outlets[(1, number)]
            miner_id, miner_w = miners[ip]
            assert (row["miner_ip"], row["miner_id"], row["miner_power_w"]) == (ip, miner_id, miner_w)
            if miner_w is None:  # stock Antminer firmware does not report power
                assert row["difference_w"] is None
            else:
                assert row["difference_w"] == pytest.approx(row["power_w"] - miner_w)
                compared += 1
        assert pdu["mapped_pdu_power_w"] == pytest.approx(
            sum(outlets[(1, n)]["power_w"] for n in (1, 2, 3)[: len(mapping)])
        )
        reported = [w for ip in mapping if (w := miners[ip][1]) is not None]
        assert pdu["mapped_miner_power_w"] == (pytest.approx(sum(reported)) if reported else None)
        unmapped = [o for o in pdu["outlets"] if o["miner_ip"] is None]
        assert unmapped and all(o["miner_power_w"] is None and o["difference_w"] is None for o in unmapped)
    assert compared >= 1, "no mapped miner reports its own power: the comparison went untested"


def test_unreadable_pdu_is_down_with_an_error_and_no_zeros(service: LiveService) -> None:
    with service.client(service.keys["viewer"]) as client:
        dead = next(p for p in client.get("/api/v1/pdus").json()["items"] if p["name"] == "c01-dead")
    assert dead["up"] is False and dead["error"]
    assert dead["total_power_w"] is None and dead["vendor"] is None
    (outlet,) = dead["outlets"]
    assert outlet["miner_ip"] == service.fleet[5].device.ip
    assert outlet["power_w"] is None and outlet["difference_w"] is None
    assert outlet["miner_power_w"] is not None  # the miner itself still reports


def test_device_detail_carries_its_outlet_power(
    service: LiveService, readings: dict[str, PduReading]
) -> None:
    miners = _miner_power(service)
    mapped_ip, free_ip = service.fleet[1].device.ip, service.fleet[10].device.ip
    with service.client(service.keys["viewer"]) as client:
        mapped = client.get(f"/api/v1/devices/{miners[mapped_ip][0]}").json()
        free = client.get(f"/api/v1/devices/{miners[free_ip][0]}").json()
    expected = next(o.power_w for o in readings["apc"].outlets if o.index == 2)
    assert mapped["pdu_power_w"] == expected
    outlet = mapped["pdu_outlet"]
    assert (outlet["pdu"], outlet["unit"], outlet["outlet"]) == ("a07-apc", 1, 2)
    assert outlet["miner_power_w"] == mapped["device"]["power_w"]
    assert outlet["difference_w"] == pytest.approx(expected - mapped["device"]["power_w"])
    assert free["pdu_power_w"] is None and free["pdu_outlet"] is None


def test_metrics_export_outlet_power_per_mapped_miner_and_pdu_up(
    service: LiveService, readings: dict[str, PduReading]
) -> None:
    with service.client(service.keys["viewer"]) as client:
        body = client.get("/metrics").text
    samples = [s for family in text_string_to_metric_families(body) for s in family.samples]
    outlet_power = {
        (s.labels["pdu"], s.labels.get("miner_ip")): s.value
        for s in samples
        if s.name == "fleetmon_pdu_outlet_power_watts"
    }
    ips = [item.device.ip for item in service.fleet]
    apc = {o.index: o.power_w for o in readings["apc"].outlets}
    for number, ip in enumerate(ips[0:3], start=1):
        assert outlet_power[("a07-apc", ip)] == apc[number]
    up = {s.labels["pdu"]: s.value for s in samples if s.name == "fleetmon_pdu_up"}
    assert up == {"a07-apc": 1.0, "b02-raritan": 1.0, "c01-dead": 0.0}
    assert not any(s.labels.get("pdu") == "c01-dead" and s.name.endswith("_watts") for s in samples)
    miner_power = {s.labels["ip"]: s.value for s in samples if s.name == "fleetmon_miner_power_watts"}
    mapped = {ip for (pdu, ip) in outlet_power if ip is not None}
    assert mapped & set(miner_power), "no mapped miner's own power is exported beside its outlet's"


# ---- configuration --------------------------------------------------------------------------------


def _settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "fleetmon.toml"
    path.write_text(text)
    return load_settings(path)


PDU = """
[[pdus]]
name = "a07"
host = "10.20.0.5"
community_env = "FLEETMON_TEST_PDU_CONFIG"
outlets = [{ outlet = 1, miner = "10.20.7.11" }, { outlet = 2, unit = 2, miner = "10.20.7.12" }]
"""


def test_pdus_load_from_toml_with_the_community_by_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETMON_TEST_PDU_CONFIG", "s3cret-community")
    settings = _settings(tmp_path, PDU + '\n[collector]\nsite = "tx1"\n')
    (pdu,) = settings.pdus
    assert (pdu.name, pdu.port, settings.pdu_site(pdu)) == ("a07", 161, "tx1")
    config = pdu.pdu_config()
    assert [(b.unit, b.outlet, str(b.miner_ip)) for b in config.outlets] == [
        (1, 1, "10.20.7.11"),
        (2, 2, "10.20.7.12"),
    ]
    assert "s3cret-community" not in repr(settings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('community = "public"\n', "never inlined"),
        ('colour = "red"\n', "unknown key 'pdus.0.colour'"),
    ],
)
def test_pdu_config_rejects_inline_communities_and_unknown_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, message: str
) -> None:
    monkeypatch.setenv("FLEETMON_TEST_PDU_CONFIG", "x")
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, PDU.replace("[[pdus]]\n", "[[pdus]]\n" + extra))


def test_pdu_config_rejects_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETMON_TEST_PDU_CONFIG", "x")
    with pytest.raises(ConfigError, match="two PDUs are named 'a07'"):
        _settings(tmp_path, PDU + PDU.replace("10.20.7.1", "10.20.8.1"))
    with pytest.raises(ConfigError, match=r"miner 10\.20\.7\.11 is mapped to a07 outlet 1\.1 and to b01"):
        _settings(tmp_path, PDU + PDU.replace('"a07"', '"b01"').replace("10.20.7.12", "10.20.9.9"))
    with pytest.raises(ConfigError, match="mapped twice"):
        _settings(tmp_path, PDU.replace("outlet = 2, unit = 2, ", "outlet = 1, "))
    with pytest.raises(ConfigError, match="miner"):
        _settings(tmp_path, PDU.replace("10.20.7.11", "not-an-ip"))


def test_missing_community_variable_stops_startup_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEETMON_TEST_PDU_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="a07: environment variable FLEETMON_TEST_PDU_CONFIG"):
        _settings(tmp_path, PDU)


def test_pdu_transitions_are_logged_once(
    agent: Agent, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fleetmon.service.pdus import PduPoller

    monkeypatch.setenv("FLEETMON_TEST_PDU_APC", "apc")
    pdu = _pdu("flappy", agent.port, "FLEETMON_TEST_PDU_APC", {})
    settings = Settings(pdus=[pdu], snmp={"timeout_s": 0.3, "retries": 0})  # type: ignore[arg-type]
    poller = PduPoller(settings)

    async def cycles(communities: list[str]) -> list[bool]:
        up = []
        for community in communities:
            monkeypatch.setenv("FLEETMON_TEST_PDU_APC", community)
            (view,) = await poller.poll()
            up.append(view.reading is not None)
        poller.close()
        return up

    with caplog.at_level(logging.INFO, logger="fleetmon.service.pdus"):
        up = asyncio.run(cycles(["apc", "zq-secret-7", "zq-secret-7", "zq-secret-7", "apc", "apc"]))
    assert up == [True, False, False, False, True, True]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("is down" in m for m in messages) == 1
    assert sum("readable again" in m for m in messages) == 1
    assert not any("zq-secret-7" in m for m in messages)  # the community is never logged
    assert os.environ["FLEETMON_TEST_PDU_APC"] == "apc"

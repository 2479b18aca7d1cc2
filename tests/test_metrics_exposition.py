from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime

import pytest
from conftest import services_required
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.sample import Board, Pool, Sample, SecurityFinding, State
from collectors.snmp.models import AmbientSensor, Inlet, Outlet, PduReading, Vendor
from fleetmon.service.exposition import render
from fleetmon.service.metrics import MINER_FAMILIES, build_registry
from fleetmon.service.snapshot import (
    CollectorStats,
    DeviceView,
    FleetSnapshot,
    PduView,
    SupplyChainFigures,
)

TS = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)


def _mining(ip: str, site: str = "tx-1") -> DeviceView:
    sample = Sample(
        ip=ip,
        ts=TS,
        state=State.MINING,
        make="antminer",
        model="Antminer S19 Pro",
        firmware_vendor="stock",
        hashrate_ths=104.5,
        expected_hashrate_ths=110.0,
        boards=[
            Board(index=0, hashrate_ths=34.8, temp_c=63.0, chip_temp_c=77.0, chips=114, expected_chips=114),
            Board(index=1, hashrate_ths=0.0, temp_c=30.0, chips=0, expected_chips=114),
        ],
        temp_max_c=77.0,
        fans_rpm=[5400, 0],
        power_w=3180.0,
        efficiency_jth=30.4,
        pools=[
            Pool(
                url="stratum+tcp://pool.example:3333",
                user='w"1',
                status="Alive",
                accepted=10,
                rejected=1,
                active=True,
            )
        ],
        uptime_s=3600,
        serial="JYZZAB12345",
        mac="AA:BB:CC:00:11:22",
    )
    return DeviceView(
        site=site,
        sample=sample,
        manufacturer="Bitmain",
        manufacturer_country="CN",
        assembly_country="MY",
        origin_source="inventory",
    )


def _pdus() -> tuple[PduView, ...]:
    reading = PduReading(
        host="10.0.9.1",
        port=161,
        vendor=Vendor.RARITAN,
        outlets=[
            Outlet(index=1, name="rack A1 #1", power_w=3180.0),
            Outlet(index=2, power_w=12.5),  # nothing mapped to it
            Outlet(index=3, name="spare"),  # not metered: no sample, never 0
            Outlet(index=1, unit=2, name='odd "name"', power_w=3300.0),
        ],
        inlets=[Inlet(index=1, power_w=9800.0), Inlet(index=2)],
        sensors=[
            AmbientSensor(sensor="1", temperature_c=24.5, humidity_percent=41.0),
            AmbientSensor(sensor="2", temperature_c=31.0),
        ],
    )
    mapped = {(1, 1): "10.0.0.1", (2, 1): "10.0.0.2"}
    return (
        PduView(name="rack-a1-pdu1", host="10.0.9.1", site="tx-1", reading=reading, outlet_miners=mapped),
        PduView(name="rack-a2-pdu1", host="10.0.9.2", site="tx-1", reading=None, error="timeout"),
    )


def _open_mining(ip: str) -> DeviceView:
    """A mining device whose read found its API open to writes (so every miner family has a series)."""
    view = _mining(ip)
    finding = SecurityFinding(code="api_write_open", severity="critical", message="open")
    return DeviceView(site=view.site, sample=view.sample.model_copy(update={"security": [finding]}))


def _snapshot() -> FleetSnapshot:
    down = DeviceView(site="tx-1", sample=Sample(ip="10.0.0.9", ts=TS, state=State.UNREACHABLE))
    stats = CollectorStats(site="tx-1").after_cycle(2.5, 3, {"timeout": 1}, end=time.time())
    figures = SupplyChainFigures(
        hash_share={"manufacturer": {"Bitmain": 1.0}},
        hhi={"manufacturer": 10000.0},
        china_dependency_ratio=1.0,
        exposure_score=42.0,
    )
    return FleetSnapshot(
        taken_at=time.time(),
        devices=(_mining("10.0.0.1"), _open_mining("10.0.0.2"), down),
        collectors=(stats,),
        supply_chain=figures,
        pdus=_pdus(),
    )


def _samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_fast_writer_matches_client_python_sample_for_sample() -> None:
    snap = _snapshot()
    registry = build_registry(lambda: snap)
    ours = _samples(render(registry).decode())
    theirs = _samples(generate_latest(registry).decode())
    assert ours == theirs and len(ours) > 40
    assert {name for name, _, _ in ours} >= {spec.name for spec in MINER_FAMILIES}


def test_fast_writer_declares_every_family_as_client_python_does() -> None:
    registry = build_registry(_snapshot)

    def headers(body: bytes) -> list[str]:
        return [line for line in body.decode().splitlines() if line.startswith("# ")]

    assert headers(render(registry)) == headers(generate_latest(registry))


def test_probe_registry_renders_only_the_miner_families() -> None:
    snap = FleetSnapshot(taken_at=0.0, devices=(_mining("10.0.0.1"),), pdus=_pdus())
    names = {name for name, _, _ in _samples(render(build_registry(lambda: snap, fleet=False)).decode())}
    assert names and all(name.startswith("fleetmon_miner_") for name in names)


def test_infinities_and_nan_are_spelled_as_prometheus_expects() -> None:
    view = _mining("10.0.0.4")
    odd = view.sample.model_copy(
        update={"power_w": float("inf"), "efficiency_jth": float("nan"), "temp_max_c": float("-inf")}
    )
    snap = FleetSnapshot(taken_at=0.0, devices=(DeviceView(site="tx-1", sample=odd),))
    registry = build_registry(lambda: snap, fleet=False)

    def values(body: bytes) -> dict[str, str]:
        lines = body.decode().splitlines()
        wanted = ("fleetmon_miner_power_watts", "fleetmon_miner_efficiency", "fleetmon_miner_temperature")
        return {line.split("{")[0]: line.rsplit(" ", 1)[1] for line in lines if line.startswith(wanted)}

    expected = {
        "fleetmon_miner_power_watts": "+Inf",
        "fleetmon_miner_efficiency_joules_per_terahash": "NaN",
        "fleetmon_miner_temperature_celsius": "-Inf",
    }
    assert values(render(registry)) == expected == values(generate_latest(registry))


def _pdu_samples() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    by_name: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for name, labels, value in _samples(render(build_registry(_snapshot)).decode()):
        if name.startswith("fleetmon_pdu_"):
            by_name.setdefault(name, {})[labels] = value
    return by_name


def test_pdu_up_is_one_when_read_and_zero_when_the_read_failed() -> None:
    up = {dict(labels)["pdu"]: v for labels, v in _pdu_samples()["fleetmon_pdu_up"].items()}
    assert up == {"rack-a1-pdu1": 1.0, "rack-a2-pdu1": 0.0}


def test_pdu_outlets_carry_the_mapped_miner_and_skip_unmetered_ones() -> None:
    outlets = {
        (d["unit"], d["outlet"]): (d["name"], d["miner_ip"], v)
        for labels, v in _pdu_samples()["fleetmon_pdu_outlet_power_watts"].items()
        for d in [dict(labels)]
    }
    assert outlets == {
        ("1", "1"): ("rack A1 #1", "10.0.0.1", 3180.0),
        ("1", "2"): ("", "", 12.5),
        ("2", "1"): ('odd "name"', "10.0.0.2", 3300.0),
    }


def test_pdu_inlets_and_sensors_export_only_reported_values() -> None:
    pdu = _pdu_samples()
    inlets = {dict(labels)["inlet"]: v for labels, v in pdu["fleetmon_pdu_inlet_power_watts"].items()}
    temps = {dict(labels)["sensor"]: v for labels, v in pdu["fleetmon_pdu_temperature_celsius"].items()}
    humidity = {dict(labels)["sensor"]: v for labels, v in pdu["fleetmon_pdu_humidity_ratio"].items()}
    assert inlets == {"1": 9800.0}
    assert temps == {"1": 24.5, "2": 31.0}
    assert humidity == {"1": pytest.approx(0.41)}
    every_pdu = {dict(labels)["pdu"] for samples in pdu.values() for labels in samples}
    readings = {dict(labels)["pdu"] for n, s in pdu.items() if n != "fleetmon_pdu_up" for labels in s}
    assert every_pdu == {"rack-a1-pdu1", "rack-a2-pdu1"} and readings == {"rack-a1-pdu1"}


def test_unreachable_miner_is_down_and_reports_no_zero_hashrate() -> None:
    samples = _samples(render(build_registry(_snapshot)).decode())
    up = {dict(labels)["ip"]: v for name, labels, v in samples if name == "fleetmon_miner_up"}
    assert up == {"10.0.0.1": 1.0, "10.0.0.2": 1.0, "10.0.0.9": 0.0}
    rates = {
        dict(labels)["ip"]
        for name, labels, _ in samples
        if name == "fleetmon_miner_hashrate_hashes_per_second"
    }
    assert rates == {"10.0.0.1", "10.0.0.2"}


def test_hashrate_is_exported_in_hashes_per_second() -> None:
    samples = _samples(render(build_registry(_snapshot)).decode())
    value = next(
        v
        for name, labels, v in samples
        if name == "fleetmon_miner_hashrate_hashes_per_second" and dict(labels)["ip"] == "10.0.0.1"
    )
    assert value == pytest.approx(104.5e12)


def test_label_values_with_quotes_and_backslashes_are_escaped() -> None:
    view = _mining("10.0.0.3")
    odd = view.sample.model_copy(update={"model": 'Antminer "S19" \\ Pro'})
    snap = FleetSnapshot(taken_at=0.0, devices=(DeviceView(site="tx-1", sample=odd),))
    text = render(build_registry(lambda: snap)).decode()
    models = {
        dict(labels).get("model") for name, labels, _ in _samples(text) if name == "fleetmon_miner_info"
    }
    assert models == {'Antminer "S19" \\ Pro'}


def test_promtool_accepts_the_exposition(tmp_path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if services_required():
            pytest.fail("promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool is not installed")
    body = render(build_registry(_snapshot))
    result = subprocess.run(
        [promtool, "check", "metrics"], check=False, input=body, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b"", (result.stdout, result.stderr)

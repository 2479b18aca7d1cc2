from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime

import pytest
from conftest import services_required
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.sample import Board, Pool, Sample, State
from fleetmon.service.exposition import render
from fleetmon.service.metrics import build_registry
from fleetmon.service.snapshot import CollectorStats, DeviceView, FleetSnapshot, SupplyChainFigures

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
        devices=(_mining("10.0.0.1"), _mining("10.0.0.2"), down),
        collectors=(stats,),
        supply_chain=figures,
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

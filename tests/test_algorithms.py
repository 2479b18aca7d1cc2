"""Hashrate of other algorithms is never added into bitcoin TH/s (issue 14): samples carry the
algorithm from the device catalog, each reply's own unit wins, and the supply-chain figures and fleet
totals sum SHA-256 only, reporting the rest apart."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from capture_server import CaptureSet, load_sets, read_capture

from collectors.connection import Timeouts
from collectors.models import SHA256
from collectors.sample import Sample, State
from fleetmon.service.fleet import fleet_summary
from fleetmon.service.metrics import fleet_families
from fleetmon.service.snapshot import DeviceView, FleetSnapshot
from fleetmon.supplychain.analytics import Basis, Dimension, china_dependency, hash_share
from fleetmon.supplychain.exposure import fleet_exposure
from fleetmon.supplychain.fleet import FleetUnit, build_unit
from fleetmon.supplychain.report import hash_share_json
from fleetmon.supplychain.tariffs import shipped_schedule
from fleetmon.web.racks import rack_heatmap

TIMEOUTS = Timeouts(connect=2.0, read=2.0, device=5.0)
TS = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sets(captures_dir: Path) -> dict[str, CaptureSet]:
    return load_sets(captures_dir)


# The capture's own rate field, read by eye, and the tera-units it means on the model's algorithm.
@pytest.mark.parametrize(
    ("name", "algorithm", "hashrate"),
    [
        ("antminer/l3", "Scrypt", None),  # checked against GHS 5s below
        ("antminer/d3", "X11", None),
        ("antminer/e3", "Ethash", None),
        ("antminer/z11", "Equihash", None),
        ("antminer/t15", SHA256, None),
        ("antminer/s19pro", SHA256, 110.56689),  # "GHS 5s": 110566.89 with "rate_unit": "GH"
        ("whatsminer/m30s-new-firmware", SHA256, 85.16347324),
        ("avalon/avalon1566", SHA256, None),
    ],
)
async def test_samples_carry_the_models_algorithm(
    sets: dict[str, CaptureSet], name: str, algorithm: str, hashrate: float | None
) -> None:
    sample = await read_capture(sets[name], TIMEOUTS)
    assert sample.algorithm == algorithm
    if hashrate is not None:
        assert sample.hashrate_ths == pytest.approx(hashrate, rel=1e-6)


async def test_scrypt_miner_reads_in_its_own_units_not_a_million_times_low(
    sets: dict[str, CaptureSet],
) -> None:
    """An L3+ `GHS 5s` of ~500 is MH/s of scrypt: 0.0005 tera-units, healthy, not degraded to zero."""
    sample = await read_capture(sets["antminer/l3"], TIMEOUTS)
    assert sample.hashrate_ths is not None and 1e-4 < sample.hashrate_ths < 1e-3
    assert sample.state is State.MINING


def _sample(ip: str, algorithm: str | None, ths: float, model: str) -> Sample:
    return Sample(
        ip=ip,
        ts=TS,
        state=State.MINING,
        make="Antminer",
        model=model,
        algorithm=algorithm,
        hashrate_ths=ths,
        expected_hashrate_ths=ths,
        power_w=1000.0,
    )


def test_fleet_summary_and_metrics_total_sha256_only() -> None:
    views = (
        DeviceView(site="tx-1", sample=_sample("10.0.0.1", SHA256, 110.0, "Antminer S19 Pro")),
        DeviceView(site="tx-1", sample=_sample("10.0.0.2", None, 95.0, "Antminer S19")),  # old sample
        DeviceView(site="tx-1", sample=_sample("10.0.0.3", "Scrypt", 0.0095, "Antminer L7")),
    )
    snap = FleetSnapshot(taken_at=0.0, devices=views)
    summary = fleet_summary(snap)
    assert summary.hashrate_ths == pytest.approx(205.0)
    assert summary.expected_hashrate_ths == pytest.approx(205.0)
    assert summary.power_w == pytest.approx(3000.0)  # watts are watts whatever the coin
    assert summary.sites[0].hashrate_ths == pytest.approx(205.0)
    families = {f.name: f for f in fleet_families(snap)}
    [total] = families["fleetmon_fleet_hashrate_hashes_per_second"].samples
    assert total.value == pytest.approx(205.0e12)


def test_rack_heat_map_sums_sha256_only() -> None:
    views = (
        DeviceView(site="tx-1", sample=_sample("10.0.0.1", SHA256, 110.0, "Antminer S19 Pro")),
        DeviceView(site="tx-1", sample=_sample("10.0.0.2", None, 95.0, "Antminer S19")),
        DeviceView(site="tx-1", sample=_sample("10.0.0.3", "Scrypt", 0.0095, "Antminer L7")),
    )
    [cell] = rack_heatmap(FleetSnapshot(taken_at=0.0, devices=views), {}).racks
    assert cell.devices == 3
    assert cell.hashrate_ths == pytest.approx(205.0)
    assert cell.expected_hashrate_ths == pytest.approx(205.0)
    assert cell.devices_other_algorithm == 1


def _unit(model: str, ths: float, serial: str, algorithm: str | None = None) -> FleetUnit:
    record: dict[str, object] = {"serial": serial, "model": model, "make": "antminer", "hashrate_ths": ths}
    if algorithm is not None:
        record["algorithm"] = algorithm
    return build_unit(record)


def test_hash_share_reports_other_algorithms_apart() -> None:
    units = [
        _unit("Antminer S19 Pro", 110.0, "a"),
        _unit("Whatsminer M30S+", 100.0, "b"),
        _unit("Antminer L3+", 0.0005, "c"),
        _unit("Antminer D3", 0.019, "d"),
        _unit("Some Scrypt Box", 0.009, "e", algorithm="Scrypt"),
    ]
    assert [u.algorithm for u in units] == [SHA256, SHA256, "Scrypt", "X11", "Scrypt"]
    share = hash_share(units, [Dimension.MANUFACTURER], Basis.MEASURED)
    assert share.total_ths == pytest.approx(210.0)
    assert sum(g.devices for g in share.groups) == 2
    assert share.other_algorithms == pytest.approx({"Scrypt": 0.0095, "X11": 0.019})
    assert share.devices_other_algorithm == 3 and share.devices_without_hashrate == 0
    assert china_dependency(units, Basis.MEASURED).total_ths == pytest.approx(210.0)


def test_exposure_weights_by_bitcoin_hashrate_only() -> None:
    units = [_unit("Antminer S19 Pro", 110.0, "a"), _unit("Antminer L3+", 0.0005, "c")]
    exposure = fleet_exposure(units, shipped_schedule(), date(2026, 12, 1))
    by_unit = {row.unit: row for row in exposure.units}
    assert by_unit["c"].hashrate_ths is None and by_unit["c"].usd_per_ths is None
    assert by_unit["a"].hashrate_ths == pytest.approx(110.0)


async def test_rate_unit_of_the_reply_wins_over_the_model_table(sets: dict[str, CaptureSet]) -> None:
    """The same S19 Pro numbers under `"rate_unit": "MH/s"` are a thousand times smaller."""
    capture = sets["antminer/s19pro"]
    replies = {k: v.replace(b'"rate_unit": "GH"', b'"rate_unit": "MH/s"') for k, v in capture.replies.items()}
    assert replies != capture.replies
    sample = await read_capture(replace(capture, replies=replies), TIMEOUTS)
    assert sample.hashrate_ths == pytest.approx(0.11056689, rel=1e-6)
    assert sample.boards[0].hashrate_ths is not None and sample.boards[0].hashrate_ths < 0.1


async def test_unit_text_inside_a_value_wins_over_the_key_name(sets: dict[str, CaptureSet]) -> None:
    """A Whatsminer `MHS 1m` that says `"85.16 TH/s"` is 85.16 TH/s, not 85.16 MH/s."""
    capture = sets["whatsminer/m30s-new-firmware"]
    replies = {
        k: re.sub(rb'"MHS 1m":85\d{6}\.\d+', b'"MHS 1m":"85.16 TH/s"', v) for k, v in capture.replies.items()
    }
    assert replies != capture.replies
    sample = await read_capture(replace(capture, replies=replies), TIMEOUTS)
    assert sample.hashrate_ths == pytest.approx(85.16)
    assert "low_hashrate" not in [
        e.code for e in sample.errors
    ]  # read as MH/s it would be a million times low


def test_report_shows_other_algorithms_apart() -> None:
    units = [_unit("Antminer S19 Pro", 110.0, "a"), _unit("Antminer L3+", 0.0005, "c")]
    share = hash_share(units, [Dimension.MANUFACTURER], Basis.MEASURED)
    body = hash_share_json(share)
    assert body["total_ths"] == pytest.approx(110.0)
    assert body["other_algorithms"] == pytest.approx({"Scrypt": 0.0005})
    assert body["devices_other_algorithm"] == 1

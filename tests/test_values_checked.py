"""Values are checked at the wire border (issue 14): a number that cannot be true is refused with an
`invalid_value` error naming the field and the value, an absent sensor stays a plain None, and the state
never claims `mining` on refused numbers.

Real captures are served over real sockets with only the named fields altered; the simulator's
`non_finite` fault serves every firmware family with non-finite hashrate numbers in the raw bytes.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
from capture_server import CaptureSet, load_sets, read_capture

from collectors.connection import Timeouts
from collectors.framing import decode_reply
from collectors.reader import read_device
from collectors.sample import Sample, State
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.personalities.non_finite import spoil_rates
from collectors.wire import INVALID_VALUE, Checks, Quantity, dash_temps

TIMEOUTS = Timeouts(connect=2.0, read=2.0, device=5.0)


@pytest.fixture(scope="module")
def sets(captures_dir: Path) -> dict[str, CaptureSet]:
    return load_sets(captures_dir)


async def _read(capture: CaptureSet) -> Sample:
    return await read_capture(capture, TIMEOUTS)


def _altered(capture: CaptureSet, pattern: str, value: str, count: int = 1) -> CaptureSet:
    """The capture with the first `count` matches of `pattern` (a regex on the raw bytes) replaced by
    `value` in every reply that has them (a multi-command capture holds the same records again)."""
    replies = {}
    hits = 0
    for command, raw in capture.replies.items():
        changed, n = re.subn(pattern, value, raw.decode(), count=count)
        hits += n
        replies[command] = changed.encode()
    assert hits, f"{pattern!r} not in {capture.name}"
    return replace(capture, replies=replies)


def _invalid(sample: Sample) -> list[str]:
    return [e.message for e in sample.errors if e.code == INVALID_VALUE]


# ------------------------------------------------------------------------------------------ the border
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", "inf", "1e999", -5.0, "-0.5"])
def test_impossible_hashrate_is_refused_and_named(value: object) -> None:
    checks = Checks()
    assert checks.rate(value, "GHS 5s", 1e-3) is None
    [refusal] = checks.refused
    assert refusal.field == "GHS 5s" and refusal.quantity is Quantity.HASHRATE
    assert refusal.error().code == INVALID_VALUE and "GHS 5s" in refusal.error().message


@pytest.mark.parametrize("value", [None, "", "N/A", [], {}])
def test_absent_hashrate_is_none_without_error(value: object) -> None:
    checks = Checks()
    assert checks.rate(value, "GHS 5s", 1e-3) is None
    assert checks.refused == []


@pytest.mark.parametrize("value", [-273, -273.15, -83, -1, 0, 255, "", None, "0", -20])
def test_no_sensor_sentinels_are_plain_none(value: object) -> None:
    checks = Checks()
    assert checks.temperature(value, "temp1") is None
    assert checks.refused == []


@pytest.mark.parametrize("value", [-41, 201, 999, math.nan, "inf", 1e300])
def test_temperature_outside_minus_40_to_200_is_refused(value: object) -> None:
    checks = Checks()
    assert checks.temperature(value, "Chip Temp Max") is None
    assert [(r.field, r.quantity) for r in checks.refused] == [("Chip Temp Max", Quantity.TEMPERATURE)]


def test_temperature_in_range_is_kept_even_past_the_old_150_cut() -> None:
    checks = Checks()
    assert checks.temperature(160.5, "temp2_1") == 160.5
    assert checks.temperature("-39", "inlet") is None  # a sub-zero hashboard register is no reading
    assert checks.refused == []


def test_negative_power_and_fan_are_refused_but_a_stopped_fan_is_kept() -> None:
    checks = Checks()
    assert checks.watts(-3200, "Power") is None
    assert checks.rpm(-1, "fan1") is None
    assert checks.rpm(0, "fan2") == 0
    assert checks.watts(0, "Power") is None  # "not measured", not bad data
    assert [r.field for r in checks.refused] == ["Power", "fan1"]


def test_dash_string_names_the_whole_string_of_a_bad_part() -> None:
    checks = Checks()
    assert dash_temps("73-999-64-0", "temp_chip2", checks) == [73.0, 64.0]
    assert [(r.field, r.value) for r in checks.refused] == [("temp_chip2", "73-999-64-0")]


@pytest.mark.parametrize(
    ("text", "ths"),
    [("11.49 GH/s", 0.01149), ("891.29 Ksol/s", 891.29e-9), ("1.2 TH/s", 1.2), ("504 MH", 504e-6)],
)
def test_unit_text_inside_a_value_wins_over_the_field_unit(text: str, ths: float) -> None:
    assert Checks().rate(text, "rate", 1.0) == pytest.approx(ths)


def test_bare_nan_and_overflowing_numbers_reach_the_border_as_non_finite() -> None:
    reply = decode_reply(b'{"SUMMARY":[{"MHS av":nan,"MHS 1m":1e999,"MHS 5s":NaN,"x":-inf}]}\x00')
    record = reply["SUMMARY"][0]
    assert math.isnan(record["MHS av"]) and math.isnan(record["MHS 5s"])
    assert record["MHS 1m"] == math.inf and record["x"] == -math.inf


# ---------------------------------------------------------------------------------- real captures
async def test_no_real_capture_has_an_invalid_value(sets: dict[str, CaptureSet]) -> None:
    """Sentinels and zero slots in every capture are absent sensors, never reported as bad data."""
    flagged = {}
    for name, capture in sorted(sets.items()):
        sample = await _read(capture)
        if _invalid(sample):
            flagged[name] = _invalid(sample)
    assert flagged == {}


async def test_refused_5s_window_falls_back_to_the_sound_average(sets: dict[str, CaptureSet]) -> None:
    capture = _altered(sets["antminer/s19pro"], r'"GHS 5s": [0-9.]+', '"GHS 5s": 1e999')
    sample = await _read(capture)
    assert sample.state is State.MINING
    assert sample.hashrate_ths == pytest.approx(111.83463, rel=1e-3)  # "GHS av"
    [message] = _invalid(sample)
    assert "GHS 5s" in message and "inf" in message


async def test_all_hashrate_fields_refused_is_an_error_not_mining(sets: dict[str, CaptureSet]) -> None:
    capture = sets["antminer/s19pro"]
    capture = replace(
        capture, replies={k: spoil_rates(v) if k != "version" else v for k, v in capture.replies.items()}
    )
    sample = await _read(capture)
    assert sample.hashrate_ths is None
    assert sample.state is State.ERROR
    invalid = _invalid(sample)
    assert any("GHS 5s" in m for m in invalid) and any("chain_rate1" in m for m in invalid)
    assert all(b.hashrate_ths is None for b in sample.boards)


async def test_refused_total_with_sound_boards_reads_the_boards_sum(sets: dict[str, CaptureSet]) -> None:
    capture = _altered(
        sets["whatsminer/m30s-new-firmware"], r'"MHS (1m|5s|av)":85\d{6}\.\d+', r'"MHS \1":NaN', 0
    )
    sample = await _read(capture)
    assert sample.hashrate_ths == pytest.approx(sum(b.hashrate_ths or 0 for b in sample.boards))
    assert sample.state is not State.ERROR
    assert len(_invalid(sample)) == 3


async def test_hashrate_above_ten_times_nominal_is_refused(sets: dict[str, CaptureSet]) -> None:
    # S19 Pro nominal 110 TH/s: 1,200,000 GH/s is 1,200 TH/s, a reading no S19 Pro can give.
    capture = _altered(sets["antminer/s19pro"], r'"GHS 5s": [0-9.]+', '"GHS 5s": 1200000')
    sample = await _read(capture)
    # The boards' own rates are sound, so the same reply still gives the total: their sum.
    assert sample.hashrate_ths == pytest.approx(sum(b.hashrate_ths or 0 for b in sample.boards))
    assert sample.hashrate_ths == pytest.approx(110.5669, rel=1e-4)
    assert sample.state is State.MINING
    [message] = _invalid(sample)
    assert "hashrate_ths" in message and "1200" in message and "nominal 110" in message


async def test_whatsminer_board_temperature_out_of_range_is_named(sets: dict[str, CaptureSet]) -> None:
    capture = _altered(
        sets["whatsminer/m30s-new-firmware"], r'"Chip Temp Max":[0-9.]+', '"Chip Temp Max":-300', 0
    )
    sample = await _read(capture)
    invalid = _invalid(sample)
    assert [m.split(" = ")[0] for m in invalid] == [f"DEVS[{i}].Chip Temp Max" for i in range(3)]
    assert all("-300" in m for m in invalid)
    # The average stands in only where the maximum was refused.
    assert [b.chip_temp_c for b in sample.boards] == pytest.approx([82.49, 73.46, 74.9])


# ----------------------------------------------------------------------- the simulator's fault knob
@pytest.mark.parametrize(
    ("mix", "subnet"),
    [
        ("antminer:1", "127.62.0.0/29"),
        ("whatsminer:1", "127.62.0.8/29"),
        ("avalon:1", "127.62.0.16/29"),
        ("braiins:1", "127.62.0.24/29"),
        ("luxos:1", "127.62.0.32/29"),
        ("vnish:1", "127.62.0.40/29"),
    ],
)
async def test_non_finite_device_is_not_mining_and_names_the_field(mix: str, subnet: str) -> None:
    async with simulated_fleet(1, mix=mix, subnet=subnet, seed=5) as fleet:
        device = fleet.devices[0].device
        healthy = (await read_device(device.ip, timeouts=TIMEOUTS)).sample
        device.fault = Fault.NON_FINITE
        sample = (await read_device(device.ip, timeouts=TIMEOUTS)).sample
    assert healthy.hashrate_ths is not None and not _invalid(healthy)
    assert sample.hashrate_ths is None
    assert sample.state not in (State.MINING, State.DEGRADED, State.IDLE)
    invalid = _invalid(sample)
    assert invalid, sample.errors
    assert all(re.search(r"(MHS|GHS|hash-|chain_rate|rate_30m|MGHS|GHSspd)", m) for m in invalid)


def test_non_finite_fault_writes_1e999_and_bare_nan_in_the_bytes() -> None:
    raw = (
        b'{"SUMMARY":[{"GHS 5s":"110566.89","GHS av":109132.81,"chain_rate1":"36622.66"}],'
        b'"MM ID0":"GHSspd[1.5] MGHS[1 2 3]"}'
    )
    spoiled = spoil_rates(raw)
    assert b'"GHS 5s":1e999' in spoiled and b'"GHS av":NaN' in spoiled and b'"chain_rate1":1e999' in spoiled
    assert b"GHSspd[nan]" in spoiled and b"MGHS[nan nan nan]" in spoiled


async def test_a_named_machine_maximum_is_the_hottest_reading_not_averaged(
    sets: dict[str, CaptureSet],
) -> None:
    plain = await _read(sets["antminer/s19pro"])
    capture = _altered(sets["antminer/s19pro"], r'"temp_max": 0', '"temp_max": 91')
    sample = await _read(capture)
    assert plain.temp_max_c == pytest.approx(78.0)
    assert sample.temp_max_c == pytest.approx(91.0)
    assert sample.temp_avg_c == plain.temp_avg_c

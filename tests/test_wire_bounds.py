"""A device reply with values no store can hold (NUL in a string, a counter past 64 bits) still reads.

The wire conversions turn such values into None, so the Sample contract (which refuses them) never sees
them and the rest of the device's reading is kept. Served over a real socket from a real capture with
only the named fields altered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from capture_server import load_sets, read_capture

from collectors.connection import Timeouts
from collectors.sample import Sample, State
from collectors.wire import Checks, to_int, to_str

TIMEOUTS = Timeouts(connect=2.0, read=2.0, device=5.0)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70, "1e30", 1e300, "18446744073709551616"])
def test_counter_past_64_bits_is_none(value: object) -> None:
    assert to_int(value) is None


def test_counter_at_64_bit_limit_is_exact() -> None:
    assert to_int(2**63 - 1) == 2**63 - 1
    assert to_int("2848") == 2848


@pytest.mark.parametrize("value", ["stratum+tcp://pool\x00.example:3333", "\x00", "S19\x00\x00"])
def test_string_holding_nul_is_none(value: str) -> None:
    assert to_str(value) is None


async def test_reply_with_nul_strings_and_huge_counters_keeps_the_rest_of_the_reading(
    captures_dir: Path,
) -> None:
    capture = load_sets(captures_dir)["antminer/s19-really-cold"]
    pools = json.loads(capture.replies["pools"])
    first = pools["POOLS"][0]
    url = first["URL"]
    first["User"] = "x.001\u0000"
    first["Accepted"] = 2**70
    first["Rejected"] = "1e30"
    pools["POOLS"][1]["URL"] = "stratum+tcp://second.example:3333\u0000evil"
    capture.replies["pools"] = json.dumps(pools, ensure_ascii=False).encode()
    sample = await read_capture(capture, TIMEOUTS)
    assert sample.state is State.MINING
    assert sample.hashrate_ths == pytest.approx(110.78679, rel=1e-6)  # as test_captures_read has it
    assert [pool.url for pool in sample.pools] == [url]  # the NUL-laden URL is no pool we can name
    assert (sample.pools[0].user, sample.pools[0].accepted, sample.pools[0].rejected) == (None, None, None)
    assert Sample.from_json(sample.to_json()) == sample


def test_hottest_chip_is_read_before_the_average_and_a_refused_maximum_falls_back() -> None:
    checks = Checks()
    record = {"Chip Temp Max": 93.0, "Chip Temp Avg": 73.9}
    assert checks.first_temperature(record, ("Chip Temp Max", "Chip Temp Avg"), "DEVS[0].") == 93.0
    # No sensor (a sentinel) is no reading, not an error; an impossible value is refused, named.
    assert (
        checks.first_temperature(
            {"Chip Temp Max": -273, "Chip Temp Avg": 74.0}, ("Chip Temp Max", "Chip Temp Avg")
        )
        == 74.0
    )
    assert not checks.refused
    assert (
        checks.first_temperature(
            {"chip-temp-max": 900.0, "chip-temp-avg": 75.0}, ("chip-temp-max", "chip-temp-avg"), "edevs[2]."
        )
        == 75.0
    )
    assert [r.field for r in checks.refused] == ["edevs[2].chip-temp-max"]

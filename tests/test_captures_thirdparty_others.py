"""Captures from other projects of Whatsminer and Avalon firmware our own set lacks, read over a socket.

Each set is served by `capture_server` and read by `collectors.reader` as a device would be. Expected
values are read by eye from the capture files (SOURCES.md, "Added 2026-12-07 (captures-others)") and
written as literals, never computed by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from capture_server import CaptureSet, Reading, assert_reads_as, load_sets, read_capture

from collectors.connection import Timeouts
from collectors.sample import State

TIMEOUTS = Timeouts(connect=2.0, read=2.0, device=5.0)

# set: (make, firmware_vendor, model, state, hashrate_ths, temp_max_c, fans_rpm, power_w)
EXPECTED: dict[str, Reading] = {
    # btminer 2024+ build: summary is {"STATUS":"S","Code":131,"Msg":{...}} with "MHS 1m": 140544208 (MH/s);
    # hottest = summary "Chip Temp Max": 84.19318389892578 (edevs has board sensors only); "Fan Speed In"
    # 3764 / "Fan Speed Out" 3735; "Power": 3173.4533333333334. devdetails is deprecated (Code 132) and
    # no reply names the model, so it is honestly unknown.
    "whatsminer/m6x-215chip": (
        "Whatsminer",
        "stock",
        None,
        State.MINING,
        140.544208,
        84.19318389892578,
        [3764, 3735],
        3173.4533333333334,
    ),
    # Only `version` was captured: VERSION PROD "AvalonMiner 1246-N-90", MODEL "1246-N-90". Every poll
    # command is refused (Code 14), so the device is identified but its reading is an error.
    "avalon/avalon1246-n-90": ("Avalon", "stock", "Avalon A1246", State.ERROR, None, None, [], None),
}


@pytest.fixture(scope="module")
def sets(captures_dir: Path) -> dict[str, CaptureSet]:
    return load_sets(captures_dir)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
async def test_thirdparty_capture_is_read_as_captured(name: str, sets: dict[str, CaptureSet]) -> None:
    assert_reads_as(await read_capture(sets[name], TIMEOUTS), EXPECTED[name])


async def test_whatsminer_2024_boards_are_read_in_ths(sets: dict[str, CaptureSet]) -> None:
    """edevs "MHS 1m" 45.61 / 50.13 / 44.8 are TH/s on this build (they add up to the summary's 140.5)."""
    sample = await read_capture(sets["whatsminer/m6x-215chip"], TIMEOUTS)
    assert [b.hashrate_ths for b in sample.boards] == pytest.approx([45.61, 50.13, 44.8])
    assert [b.temp_c for b in sample.boards] == [73.88, 78.19, 72.62]  # edevs "Temperature"
    assert [b.chips for b in sample.boards] == [215, 215, 215]  # "Effective Chips"
    assert sample.expected_hashrate_ths == pytest.approx(165.848)  # summary "Factory GHS": 165848
    # get_miner_info: mac, hostname, "ledstat": "auto"; "minersn" is empty.
    assert (sample.mac, sample.hostname, sample.serial, sample.locate) == (
        "CE:0C:1D:00:2A:53",
        "WhatsMiner",
        None,
        False,
    )
    assert sample.errors == []


async def test_avalon_n_variant_keeps_its_identity(sets: dict[str, CaptureSet]) -> None:
    sample = await read_capture(sets["avalon/avalon1246-n-90"], TIMEOUTS)
    # VERSION "MAC": "b4a2eb3c7f99", "VERSION": "22061301_be77c30_ef5defc"
    assert (sample.mac, sample.firmware_version) == ("B4:A2:EB:3C:7F:99", "22061301_be77c30_ef5defc")
    assert {e.code for e in sample.errors} == {"api_error:14"}

"""Antminer replies captured by other projects (hydro X21/X23 stock, Hiveon and MSKminer X19 builds), served
over a real socket and read as the capture says.

Expected values are read by eye from the capture files (SOURCES.md, "Added 2026-12-07"), never recomputed
by the code under test: e.g. the S21 XP Hyd. sends `"GHS 5s": 483979.25` with `"rate_unit": "GH"`, which is
483.97925 TH/s.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from capture_server import CaptureServer, CaptureSet, Reading, assert_reads_as, load_sets, read_capture

from collectors.connection import Timeouts
from collectors.firmware import build_date
from collectors.reader import read_device
from collectors.sample import State

TIMEOUTS = Timeouts(connect=2.0, read=2.0, device=5.0)

# set: (make, firmware_vendor, model, state, hashrate_ths, temp_max_c, fans_rpm, power_w)
EXPECTED: dict[str, Reading] = {
    # stats only (version refused). "GHS 5s": 483979.25 GH; hottest temp_chip1 "63-59-56-61" (temp_max 0
    # is no reading); fan1..fan4 = 0 with fan_num 4 on a hydro machine: no fans; no power field.
    "antminer/s21xp-hyd": (
        "Antminer",
        "stock",
        "Antminer S21 XP Hyd",
        State.MINING,
        483.97925,
        63.0,
        [],
        None,
    ),
    # stats only. "GHS 5s": 572845.56 GH; temp_max 59 (chips at most 56); fan_num 0; the rpc stats has no
    # power (the web stats.cgi of the same instant says "watt": 5525, not read by fleetmon).
    "antminer/s23-hyd": ("Antminer", "stock", "Antminer S23 Hyd", State.MINING, 572.84556, 59.0, [], None),
    # stats only. Type "Antminer S19x88 Hiveon"; "GHS 5s": 6751.0 GH against total_rateideal 63288.82
    # (most chips "xx"): low hashrate; temp_chip1 "61-61-61-61"; fan1..fan4 3090/3000/3000/3090;
    # total_power 1345.
    "hiveon/s19x88": (
        "Antminer",
        "hiveon",
        "Antminer S19 No PIC",
        State.DEGRADED,
        6.751,
        61.0,
        [3090, 3000, 3000, 3090],
        1345.0,
    ),
    # version + stats. Type "S19-88 v.2.6.0.39 " (no brand word), BMMiner "4.11.1 rwglr"; "GHS 5s":
    # 99989.59 GH; temp_chip1 "59-59-59-59"; fan1..fan4 5010/5160/5070/5040; total_power 3358.
    "antminer/s19-88-mskminer": (
        "Antminer",
        "mskminer",
        "Antminer S19 No PIC",
        State.MINING,
        99.98959,
        59.0,
        [5010, 5160, 5070, 5040],
        3358.0,
    ),
}


@pytest.fixture(scope="module")
def sets(captures_dir: Path) -> dict[str, CaptureSet]:
    return load_sets(captures_dir)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
async def test_capture_set_is_read_as_captured(name: str, sets: dict[str, CaptureSet]) -> None:
    assert_reads_as(await read_capture(sets[name], TIMEOUTS), EXPECTED[name])


@pytest.mark.parametrize(
    ("name", "boards", "expected_ths"),
    [
        # chain_rate1..3 "161794.68"/"159226.52"/"162958.05" GH, chain_acn 160; total_rateideal 473000.0
        ("antminer/s21xp-hyd", [(161.79468, 160), (159.22652, 160), (162.95805, 160)], 473.0),
        # chain_rate1..3 "188896.10"/"192194.63"/"191754.83" GH, chain_acn 84; total_rateideal 581972.7
        ("antminer/s23-hyd", [(188.8961, 84), (192.19463, 84), (191.75483, 84)], 581.9727),
        # chain_rate1..3 2264.99/1781.21/2704.8 GH (slots 4..16 empty: acn 0), total_rateideal 63288.82
        ("hiveon/s19x88", [(2.26499, 88), (1.78121, 88), (2.7048, 88)], 63.28882),
        # chain_rate1..3 34084.86/32303.65/33601.08 GH, total_rateideal 99674.88
        ("antminer/s19-88-mskminer", [(34.08486, 88), (32.30365, 88), (33.60108, 88)], 99.67488),
    ],
)
async def test_boards_and_nameplate_are_read_as_captured(
    name: str, boards: list[tuple[float, int]], expected_ths: float, sets: dict[str, CaptureSet]
) -> None:
    sample = await read_capture(sets[name], TIMEOUTS)
    assert [(b.hashrate_ths, b.chips) for b in sample.boards] == [
        (pytest.approx(rate), chips) for rate, chips in boards
    ]
    assert sample.expected_hashrate_ths == pytest.approx(expected_ths)


async def test_mskminer_release_is_the_version_in_its_type(sets: dict[str, CaptureSet]) -> None:
    sample = await read_capture(sets["antminer/s19-88-mskminer"], TIMEOUTS)
    assert sample.firmware_version == "2.6.0.39"  # Type "S19-88 v.2.6.0.39 "
    assert [e.code for e in sample.errors] == []  # a brand is known: no unknown_make


@pytest.mark.parametrize("name", ["hiveon/s19x88", "antminer/s19-88-mskminer", "antminer/s9-hiveon"])
async def test_a_cached_identity_is_not_contradicted_by_the_vendor_note_in_type(
    name: str, sets: dict[str, CaptureSet]
) -> None:
    """The Type carries a vendor note (" Hiveon", " v.2.6.0.39"): the next poll must keep the cached
    identity, not identify the device again on every cycle."""
    server = CaptureServer(sets[name])
    port = await server.start()
    try:
        first = await read_device("127.0.0.1", port, timeouts=TIMEOUTS)
        assert first.identity is not None
        server.requests.clear()
        second = await read_device("127.0.0.1", port, timeouts=TIMEOUTS, known=first.identity)
    finally:
        await server.close()
    # Identification asks `privileged` once (the posture check) and then polls: a re-identification
    # shows as a second `stats` and a `privileged` after the cached poll's `stats+pools`.
    assert server.requests == ["stats+pools"]
    assert second.identity is not None
    assert (second.identity.model, second.identity.firmware_vendor) == (
        first.identity.model,
        first.identity.firmware_vendor,
    )
    assert second.sample.state is first.sample.state


@pytest.mark.parametrize(
    ("compile_time", "expected"),
    [
        ("10 Dec 2024 14:34:31 GMT", dt.date(2024, 12, 10)),  # MSKminer S19-88 VERSION CompileTime
        ("Thu Apr 10 18:12:59 UTC 2025", dt.date(2025, 4, 10)),  # Hiveon S19x88 stats CompileTime
        ("Thu Jan 8 15:44:15 CST 20266", None),  # the S21 XP Hyd.'s: a five-digit year is no date
    ],
)
def test_build_dates_of_the_captured_compile_times(compile_time: str, expected: dt.date | None) -> None:
    assert build_date(compile_time) == expected

"""What the dashboard shows, checked without a browser: hashrate and power in readable units (the
table of cases tests/test_web_dashboard.py also runs through the page's script), the worst-devices
list without sleeping miners, and the CSV export's spreadsheet safety."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import fleet_samples
import pytest

from collectors.sample import Sample, State, is_paused
from fleetmon.service.fleet import devices_csv, fleet_summary
from fleetmon.service.state import FleetState
from fleetmon.web.readable import hashrate_text, power_text

HASHRATE_CASES: list[tuple[float | None, str]] = [
    (None, "–"),
    (0, "0.0 TH/s"),
    (95.31, "95.3 TH/s"),
    (999.94, "999.9 TH/s"),
    (999.96, "1.00 PH/s"),  # rounds up to 1,000 of its unit: shown in the next one
    (1000, "1.00 PH/s"),
    (1234.5, "1.23 PH/s"),
    (9999, "10.0 PH/s"),  # three significant digits after rounding up
    (10_400, "10.4 PH/s"),
    (99_990, "100 PH/s"),
    (104_000, "104 PH/s"),
    (999_999, "1.00 EH/s"),
    (1_036_036, "1.04 EH/s"),  # the example
    (1_125_000, "1.13 EH/s"),  # an exact half rounds away from zero on both sides
    (2.5e9, "2,500 EH/s"),
    (-5, "-5.0 TH/s"),
]
POWER_CASES: list[tuple[float | None, str]] = [
    (None, "–"),
    (0, "0 W"),
    (812, "812 W"),
    (999.4, "999 W"),
    (999.6, "1.00 kW"),
    (3250, "3.25 kW"),
    (3255, "3.25 kW"),  # 3.255 is 3.25499... as a double: both sides round the exact value
    (128_400, "128 kW"),
    (4.2e6, "4.20 MW"),
    (12_345_678, "12.3 MW"),
]


@pytest.mark.parametrize(("value", "text"), HASHRATE_CASES)
def test_hashrate_reads_in_th_ph_or_eh(value: float | None, text: str) -> None:
    assert hashrate_text(value) == text


@pytest.mark.parametrize(("value", "text"), POWER_CASES)
def test_power_reads_in_w_kw_or_mw(value: float | None, text: str) -> None:
    assert power_text(value) == text


def _state(samples: list[Sample]) -> FleetState:
    state = FleetState()
    for number, sample in enumerate(samples, start=1):
        state.apply("site-a", sample, number)
    return state


def test_sleeping_miners_are_not_ranked_among_the_worst() -> None:
    now = datetime.now(UTC)
    slow = fleet_samples.make_sample(1, now).model_copy(update={"hashrate_ths": 80.0})
    asleep = fleet_samples.make_sample(2, now, state=State.SLEEPING).model_copy(
        update={"hashrate_ths": 0.0, "power_w": 12.0}
    )
    idle = fleet_samples.make_sample(3, now, state=State.IDLE).model_copy(update={"hashrate_ths": 0.0})
    summary = fleet_summary(_state([slow, asleep, idle]).snapshot())
    ranked = [d.ip for d in summary.worst_performers]
    assert asleep.ip not in ranked
    # An idle miner may have lost its pool: it stays, worst first, then the slow one.
    assert ranked == [idle.ip, slow.ip]
    assert summary.devices_by_state["sleeping"] == 1


def test_csv_quotes_what_a_spreadsheet_would_run_as_a_formula() -> None:
    now = datetime.now(UTC)
    hostile = fleet_samples.make_sample(1, now).model_copy(
        update={"hostname": '=HYPERLINK("http://x")', "model": "+cmd", "serial": "-1", "power_w": None}
    )
    rows = list(csv.DictReader(io.StringIO(devices_csv(_state([hostile]).snapshot().devices))))
    assert rows[0]["hostname"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["model"] == "'+cmd"
    assert rows[0]["serial"] == "'-1"
    assert rows[0]["power_w"] == ""  # not reported: empty, never 0
    assert float(rows[0]["hashrate_ths"]) == hostile.hashrate_ths


def test_only_sleeping_counts_as_paused_on_purpose() -> None:
    assert [s.value for s in State if is_paused(s)] == ["sleeping"]
    assert is_paused("sleeping") and not is_paused("no-such-state")

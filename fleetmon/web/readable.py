"""Hashrate and power in units a person reads at a glance: TH/s, PH/s, EH/s; W, kW, MW.

The API and the CSV keep raw numbers in the units of their field names (`hashrate_ths`, `power_w`);
scaling happens only where a person reads the figure. static/app.js has the same rule in
`hashrateText` and `powerText`, and tests/test_web_dashboard.py checks both against one table of cases,
so a figure reads the same wherever it is shown.

The rule: the largest unit in which the figure is at least 1 (never below the base unit), then three
significant digits (1.04 EH/s, 10.4 PH/s, 104 PH/s), except in the base unit, which keeps the
precision a single miner is read at (95.3 TH/s, 3,250 W). A figure that rounds up to 1,000 of its unit
is shown in the next one (999,999 TH/s is 1.00 EH/s, not 1000 PH/s). Halves round away from zero, as
JavaScript's number formatting does. A missing figure is an en dash.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MISSING = "–"
HASHRATE_UNITS = ("TH/s", "PH/s", "EH/s")
POWER_UNITS = ("W", "kW", "MW")


def _rounded(value: float, decimals: int) -> Decimal:
    return Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _decimals(mantissa: float) -> int:
    magnitude = abs(mantissa)
    return 2 if magnitude < 10 else 1 if magnitude < 100 else 0


def scaled(value: float | None, units: tuple[str, ...], base_decimals: int) -> str:
    """`value` (in units[0]) in the largest of `units` (steps of 1,000) it reaches, as text."""
    if value is None:
        return MISSING
    step = 0
    while step < len(units) - 1 and abs(value) >= 1000 ** (step + 1):
        step += 1
    while True:
        mantissa = value / 1000**step
        decimals = base_decimals if step == 0 else _decimals(mantissa)
        shown = _rounded(mantissa, decimals)
        if step == len(units) - 1 or abs(shown) < 1000:
            break
        step += 1
    if step > 0 and abs(shown) >= 10 ** (3 - decimals) and decimals > 0:
        # 9.999 PH/s rounds to 10.00: keep three significant digits (10.0 PH/s).
        decimals -= 1
        shown = _rounded(mantissa, decimals)
    return f"{shown:,.{decimals}f} {units[step]}"


def hashrate_text(ths: float | None) -> str:
    """A hashrate given in TH/s, e.g. 1,036,036 -> "1.04 EH/s", 95.31 -> "95.3 TH/s"."""
    return scaled(ths, HASHRATE_UNITS, 1)


def power_text(watts: float | None) -> str:
    """A power given in W, e.g. 3,250 -> "3.25 kW", 812 -> "812 W", 4,200,000 -> "4.20 MW"."""
    return scaled(watts, POWER_UNITS, 0)

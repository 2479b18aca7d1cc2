"""Canaan Avalon (cgminer 4.10/4.11): A7xx-A15xx and the Avalon Q home line.

The interesting data hides in `stats`: one `MM IDn` value per module, a string of `Key[value]` tokens
(`GHSspd[199241.07] MGHS[59459.52 61407.83 63139.66] MTmax[77 78 77] ...`), or on the Avalon Q one
`MM ID0:Summary` value plus `HBinfo` holding the per-chip `PVT_Tn` arrays. Units: MH/s in summary/devs,
GH/s in the MM strings (`MGHS`, `GHSmm`, `GHSspd`). Temperatures: a board's `chip_temp_c` is its
`MTmax` (A12xx+) or the module's `TMax` (7xx-9xx), the hottest chip, else the hottest `PVT_Tn` chip;
`temp_c` is `MTavg` (the board average) or the module's `Temp`/outlet `HBOTemp`.
Sleeping: `SoftOFF[n]` non-zero or
`SYSTEMSTATU[Work: In Idle ...]`. The locate light: `Led[n]` (`LED[n]` on some builds), 1 lit.
"""

from __future__ import annotations

import math
import re
from typing import ClassVar

from collectors.drivers.base import Driver, Reading, cgminer_pools
from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.models import ModelSpec
from collectors.sample import Board
from collectors.wire import first, pick, section, to_float, to_int

MHS_TO_THS = 1e-6
GHS_TO_THS = 1e-3
MHS_FIELDS = ("MHS 1m", "MHS 5s")
_TOKEN = re.compile(r"(\w+)\[([^\]]*)\]")

MMValue = str | list[float]
Module = dict[str, str]
"""One module's `Key[value]` tokens, the values as sent (converted by `mm_value` when read)."""


def mm_value(key: str, raw: str) -> MMValue:
    """One token's value: a list of numbers where it has several and all are numbers, else the string."""
    parts = raw.split()
    if key != "SYSTEMSTATU" and len(parts) > 1:
        try:
            # What `to_float` gives each part when every one is a plain number: float() in one pass.
            numbers = [float(p) for p in parts]
        except ValueError:  # junk, or a `%` suffix `to_float` drops: part by part
            checked = [to_float(p) for p in parts]
            if all(n is not None for n in checked):
                return [n for n in checked if n is not None]
            return raw.strip()
        if all(map(math.isfinite, numbers)):
            return numbers
    return raw.strip()


def parse_mm(text: str) -> dict[str, MMValue]:
    """Parse an Avalon `Key[value]` string: lists of numbers where the value has several, else strings."""
    return {key: mm_value(key, raw) for key, raw in mm_tokens(text).items()}


def mm_tokens(text: str) -> Module:
    """An Avalon `Key[value]` string's tokens, unconverted (a repeated key keeps its last value).

    A module string carries ~75 tokens, ten of them per-chip arrays of 100-160 numbers (`PVT_V0`, `MW0`,
    ...) that no reading uses: converting only the tokens read (`_num`, `_list`) gives the same values
    as converting all of them (`parse_mm`) for a fraction of the CPU.
    """
    return dict(_TOKEN.findall(text))


def _value(mm: Module, key: str) -> MMValue | None:
    raw = mm.get(key)
    return None if raw is None else mm_value(key, raw)


def _num(mm: Module, key: str) -> float | None:
    value = _value(mm, key)
    if isinstance(value, list):
        return value[0] if value else None
    return to_float(value.rstrip("%")) if isinstance(value, str) else None


def _list(mm: Module, key: str) -> list[float]:
    value = _value(mm, key)
    if isinstance(value, list):
        return value
    number = to_float(value.rstrip("%")) if isinstance(value, str) else None
    return [number] if number is not None else []


def modules(stats: Reply | None) -> list[Module]:
    """Every `MM IDn` module of a stats/estats reply, tokenized (HBinfo merged into the module on Avalon
    Q); read its values with `_num` / `_list`."""
    found: list[Module] = []
    for record in section(stats, "STATS"):
        hbinfo = record.get("HBinfo")
        for key in sorted(k for k in record if k.startswith("MM ID")):
            value = record[key]
            if isinstance(value, str):
                mm = mm_tokens(value)
                if isinstance(hbinfo, str):
                    mm.update({k: v for k, v in mm_tokens(hbinfo).items() if k not in mm})
                found.append(mm)
    return found


def module_light(mms: list[Module]) -> bool | None:
    """The locate light from the modules' `Led[n]` (or `LED[n]`) tokens: lit when any module's is
    non-zero, None when no module carries the token."""
    values = [_num(mm, "Led") if "Led" in mm else _num(mm, "LED") for mm in mms]
    known = [v for v in values if v is not None]
    return any(v > 0 for v in known) if known else None


class AvalonDriver(Driver):
    """Avalon replies -> one Reading."""

    dialect: ClassVar[Dialect] = Dialect.AVALON
    joinable: ClassVar[tuple[str, ...]] = ("summary", "stats", "pools", "devs")
    required: ClassVar[tuple[str, ...]] = ("summary", "stats", "devs")

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        reading = Reading(pools=cgminer_pools(replies.get("pools")))
        summary = first(replies.get("summary"), "SUMMARY")
        devs = first(replies.get("devs"), "DEVS")
        mms = modules(replies.get("stats") or replies.get("estats"))
        checks = reading.checks
        ths = checks.first_rate(devs, MHS_FIELDS, MHS_TO_THS, "DEVS.")
        if ths is None:
            ths = checks.first_rate(summary, (*MHS_FIELDS, "MHS 30s"), MHS_TO_THS, "SUMMARY.")
        if ths is not None:
            reading.hashrate_ths = round(ths, 6)
        elif mms:
            spd = [checks.rate(_value(mm, "GHSspd"), "GHSspd", GHS_TO_THS) for mm in mms]
            known = [s for s in spd if s is not None]
            reading.hashrate_ths = round(sum(known), 6) if known else None
        reading.uptime_s = to_int(pick(summary, "Elapsed")) or to_int(pick(devs, "Device Elapsed"))
        expected = [_num(mm, "GHSmm") for mm in mms]
        known_expected = [e for e in expected if e]
        if known_expected:
            reading.expected_hashrate_ths = round(sum(known_expected) * GHS_TO_THS, 6)
        if len(mms) == 1 and ("MGHS" in mms[0] or "MTmax" in mms[0]):
            self._boards_of_one_module(mms[0], reading)
        else:
            self._module_boards(mms, reading)
        power = [checks.watts(_num(mm, "WALLPOWER"), "WALLPOWER") for mm in mms]
        known_power = [p for p in power if p]
        reading.power_w = sum(known_power) if known_power else None
        for mm in mms:
            status = str(_value(mm, "SYSTEMSTATU") or "")
            soft_off = _num(mm, "SoftOFF")
            if "In Idle" in status or (soft_off is not None and soft_off > 0):
                reading.sleeping = True
        reading.locate = module_light(mms)
        return reading

    @staticmethod
    def _boards_of_one_module(mm: Module, reading: Reading) -> None:
        checks = reading.checks
        rates = _list(mm, "MGHS")
        tmax = _list(mm, "MTmax")
        tavg = _list(mm, "MTavg")
        count = max(len(rates), len(tmax))
        outlet = checks.temperature(_num(mm, "HBOTemp"), "HBOTemp")
        for i in range(count):
            chips_temps = [t for t in _list(mm, f"PVT_T{i}") if t]
            board_temp = checks.temperature(tavg[i], f"MTavg[{i}]") if i < len(tavg) else outlet
            chip_temp = checks.temperature(tmax[i], f"MTmax[{i}]") if i < len(tmax) else None
            if chip_temp is None and chips_temps:
                chip_temp = checks.temperature(max(chips_temps), f"PVT_T{i}")
            rate = checks.rate(rates[i], f"MGHS[{i}]", GHS_TO_THS) if i < len(rates) else None
            reading.boards.append(
                Board(
                    index=i,
                    hashrate_ths=round(rate, 6) if rate is not None else None,
                    temp_c=board_temp,
                    chip_temp_c=chip_temp,
                    chips=len(chips_temps) if chips_temps else None,
                )
            )
        fans = [checks.rpm(_num(mm, f"Fan{n}"), f"Fan{n}") for n in range(1, 9) if f"Fan{n}" in mm]
        reading.fans_rpm = [f for f in fans if f is not None]

    @staticmethod
    def _module_boards(mms: list[Module], reading: Reading) -> None:
        """Older units (7xx-9xx): one module per `MM IDn`, each reported as one board."""
        checks = reading.checks
        for position, mm in enumerate(mms):
            reading.boards.append(
                Board(
                    index=position,
                    temp_c=checks.temperature(_num(mm, "Temp"), f"MM ID{position}.Temp"),
                    chip_temp_c=checks.temperature(_num(mm, "TMax"), f"MM ID{position}.TMax"),
                )
            )
            fan = checks.rpm(_num(mm, "Fan"), f"MM ID{position}.Fan")
            if fan is not None:
                reading.fans_rpm.append(fan)
            for n in range(1, 9):
                value = checks.rpm(_num(mm, f"Fan{n}"), f"MM ID{position}.Fan{n}")
                if value is not None:
                    reading.fans_rpm.append(value)

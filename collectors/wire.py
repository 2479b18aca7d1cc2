"""Loose wire values -> typed values, once, at the border: sentinels and junk become None.

Firmware sends numbers as numbers or strings (`"GHS 5s":"54997.01"`), dash strings (`"73-45-64-65"`),
sentinels for "no sensor" (`-273`, `0-0-0-0`, `""`), the strings "nan"/"inf", counters past any
64-bit register, and (from a JSON `\\u0000` escape) strings holding NUL characters. Drivers read every
field through these functions, so a missing or nonsense field is None and never 0, and no driver indexes
raw dictionaries more than one level deep.

Absent is not invalid. A value that means "no sensor" or "not reported" (a missing key, `""`, `null`,
junk text, the sentinels `-273`/`-83`/`-1`/`255`, a `0` temperature, `0-0-0-0`) is plain None and no
error: an empty slot is not bad data. A value that *is* a number but cannot be true (NaN, `1e999`,
infinity, a negative hashrate, power or fan speed, a temperature outside -40..200 C) is refused by
`Checks`: None as well, plus an `invalid_value` error naming the field and the value, so bad data is
never silence. The hashrate ceiling (10x the model's nominal) needs the model and is applied in
`collectors.drivers.base.build_sample`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from collectors.framing import Reply
from collectors.sample import DeviceError

SENTINEL_TEMPS = frozenset({-273.0, -273.15, -1.0, -83.0, 255.0})
"""Temperatures that mean "no sensor" (Avalon -273, S9 -83 on a faulty sensor, unset 255)."""

TEMP_MIN_C = -40.0
TEMP_MAX_C = 200.0
"""Outside this range a temperature is not a reading but bad data (no sensor in a miner reports it)."""
INVALID_VALUE = "invalid_value"

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def to_float(value: object) -> float | None:
    """A finite float from a number or numeric string; None for '', 'nan', 'inf', None or junk."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().rstrip("%")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_int(value: object) -> int | None:
    """An int from a number or numeric string (floats are rounded); None when not a number.

    None too outside the signed 64-bit range: no device counter is that large ("1e30" is junk), and no
    store could hold it.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number: int = value  # exact: a float would round counters past 2**53
    else:
        as_float = to_float(value)
        if as_float is None:
            return None
        number = round(as_float)
    return number if INT64_MIN <= number <= INT64_MAX else None


def to_str(value: object) -> str | None:
    """A stripped string, None for empty or non-strings; numbers become their text.

    None for a string holding a NUL character: C firmware cannot mean one inside a value, only a
    broken or hostile reply sends `\\u0000`, and no store could hold it.
    """
    if isinstance(value, str):
        text = value.strip()
        return text if text and "\x00" not in text else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def to_bool(value: object) -> bool | None:
    """True/False from booleans and 'true'/'false'/'Y'/'N' strings; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "y", "yes", "1"):
            return True
        if lowered in ("false", "n", "no", "0"):
            return False
    return None


def _number(value: object) -> float | None:
    """Any float a value spells, non-finite ones included (`1e999`, NaN, "inf"); None when not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int past float range is as unreal as 1e999
            return math.inf
    if isinstance(value, str):
        text = value.strip().rstrip("%")
        try:
            return float(text) if text else None
        except ValueError:
            return None
    return None


def dash_temps(value: object, name: str, checks: Checks) -> list[float]:
    """The real readings in an Antminer dash string like `"73-45-64-65"` (zeros dropped, `"2--1-20"` ok)."""
    if not isinstance(value, str):
        return []
    readings: list[float] = []
    for part in value.replace("--", "-").split("-"):
        reading = checks.temperature(part, name, whole=value)
        if reading is not None:
            readings.append(reading)
    return readings


class Quantity(StrEnum):
    """What a refused value was meant to measure."""

    HASHRATE = "hashrate"
    TEMPERATURE = "temperature"
    POWER = "power"
    FAN = "fan"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One wire value refused as impossible: which field, what it held, why."""

    field: str
    value: object
    quantity: Quantity
    reason: str

    def error(self) -> DeviceError:
        """The `invalid_value` error entry for the sample."""
        return DeviceError(
            code=INVALID_VALUE, message=f"{self.field} = {_shown(self.value)} refused: {self.reason}"
        )


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# A rate with its unit in the value: "11.49 GH/s", "891.29 Ksol/s", "1.2 TH/s", "504 MH".
_RATE_TEXT = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf(?:inity)?)\s*"
    r"([kmgtpe]?)(h|sol)(?:/s)?\s*$",
    re.IGNORECASE,
)
_PREFIX_TO_TERA = {"": 1e-12, "k": 1e-9, "m": 1e-6, "g": 1e-3, "t": 1.0, "p": 1e3, "e": 1e6}
_UNIT_TEXT = re.compile(r"^\s*([kmgtpe]?)(h|sol)(?:/s)?\s*$", re.IGNORECASE)


def unit_ths(text: object) -> float | None:
    """Tera-units per unit named by a `rate_unit`-style text ("GH", "GH/s", "MH/s", "Ksol/s"), or None."""
    if not isinstance(text, str):
        return None
    match = _UNIT_TEXT.match(text)
    return _PREFIX_TO_TERA[match.group(1).lower()] if match else None


def rate_text(value: object) -> tuple[float, float] | None:
    """(number, tera-units per unit) when a string carries its own unit ("11.49 GH/s"), else None."""
    if not isinstance(value, str) or not value or value[-1].isdigit():
        return None  # fast path: a bare number (most `chain_rateN`) carries no unit
    match = _RATE_TEXT.match(value)
    if match is None:
        return None
    return float(match.group(1)), _PREFIX_TO_TERA[match.group(2).lower()]


@dataclass(slots=True)
class Checks:
    """The values refused while reading one reply; drivers read measured numbers through it.

    Every method returns the value in sample units, or None; a number that cannot be true is also
    recorded in `refused` (see the module docstring for where absent ends and invalid begins).
    """

    refused: list[Refusal] = field(default_factory=list)

    def refuse(self, name: str, value: object, quantity: Quantity, reason: str) -> None:
        """Record one refused value."""
        self.refused.append(Refusal(name, value, quantity, reason))

    def _finite(self, value: object, name: str, quantity: Quantity) -> float | None:
        number = _number(value)
        if number is not None and not math.isfinite(number):
            self.refuse(name, value if isinstance(value, str) else number, quantity, "not a finite number")
            return None
        return number

    def rate(self, value: object, name: str, unit: float) -> float | None:
        """A hashrate in tera-units from a field whose unit is `unit` (tera-units per wire unit) unless
        the value names its own ("11.49 GH/s"); negative or non-finite is refused."""
        texted = rate_text(value)
        number, scale = texted if texted is not None else (self._finite(value, name, Quantity.HASHRATE), unit)
        if number is None:
            return None
        if not math.isfinite(number):
            self.refuse(name, value, Quantity.HASHRATE, "not a finite number")
            return None
        if number < 0:
            self.refuse(name, value, Quantity.HASHRATE, "a hashrate cannot be negative")
            return None
        return round(number * scale, 12)

    def first_rate(
        self, record: Mapping[str, Any], names: Sequence[str], unit: float, where: str = ""
    ) -> float | None:
        """The first sound rate among `names` (a refused 5 s window falls back to the next field);
        `where` prefixes the field in an error (`DEVS[1].`)."""
        for name in names:
            value = record.get(name)
            if value is None or value == "":
                continue
            rate = self.rate(value, where + name, unit)
            if rate is not None:
                return rate
        return None

    def first_temperature(
        self, record: Mapping[str, Any], names: Sequence[str], where: str = ""
    ) -> float | None:
        """The first sound temperature among `names` (the hottest chip's field before the average's);
        `where` prefixes the field in an error."""
        for name in names:
            value = self.temperature(record.get(name), where + name)
            if value is not None:
                return value
        return None

    def temperature(self, value: object, name: str, *, whole: object = None) -> float | None:
        """Degrees Celsius; None for sentinels and zeros (no sensor); refused outside -40..200 C."""
        number = self._finite(value, name, Quantity.TEMPERATURE)
        if number is None or number in SENTINEL_TEMPS or number == 0:
            return None
        if not TEMP_MIN_C <= number <= TEMP_MAX_C:
            shown = whole if whole is not None else value
            self.refuse(name, shown, Quantity.TEMPERATURE, f"outside {TEMP_MIN_C:g}..{TEMP_MAX_C:g} C")
            return None
        # Between -40 and 0 a hashboard sensor reads an unset register, not the air: no reading.
        return number if number > 0 else None

    def watts(self, value: object, name: str) -> float | None:
        """Watts; 0 is "not measured" (None); negative or non-finite is refused."""
        number = self._finite(value, name, Quantity.POWER)
        if number is None or number == 0:
            return None
        if number < 0:
            self.refuse(name, value, Quantity.POWER, "power cannot be negative")
            return None
        return number

    def rpm(self, value: object, name: str) -> int | None:
        """A fan speed in RPM; negative or non-finite is refused (0 is a stopped fan, kept)."""
        number = self._finite(value, name, Quantity.FAN)
        if number is None:
            return None
        if number < 0:
            self.refuse(name, value, Quantity.FAN, "a fan speed cannot be negative")
            return None
        return to_int(number)


def as_mapping(value: object) -> dict[str, Any]:
    """The value when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def section(reply: Reply | None, name: str) -> list[dict[str, Any]]:
    """The records of one reply section (`SUMMARY`, `STATS`, ...); an empty list when absent."""
    if reply is None:
        return []
    records = reply.get(name)
    if isinstance(records, dict):
        return [records]
    if not isinstance(records, Sequence) or isinstance(records, str):
        return []
    return [r for r in records if isinstance(r, dict)]


def status_record(reply: Reply) -> dict[str, Any] | None:
    """The first record of a CGMiner-style `STATUS` list (`STATUS`, `Code`, `Msg`, ...), or None when the
    reply has none (Whatsminer's top-level `"STATUS": "E"` string is not one)."""
    status = reply.get("STATUS")
    if isinstance(status, list) and status and isinstance(status[0], dict):
        return status[0]
    return None


def first(reply: Reply | None, name: str) -> dict[str, Any]:
    """The first record of a section, or an empty dict."""
    records = section(reply, name)
    return records[0] if records else {}


def first_or_msg(reply: Reply | None, name: str) -> dict[str, Any]:
    """The first record of a section or, when the reply has no such section, its `Msg` object.

    btminer builds of 2024 on answer `summary` the way they answer their `get_*` commands, the fields in
    a `Msg` object under a string STATUS (`{"STATUS": "S", "Code": 131, "Msg": {"MHS 1m": ...}}`) instead
    of a `SUMMARY` list; the fields themselves are the same.
    """
    record = first(reply, name)
    if record or reply is None:
        return record
    return as_mapping(reply.get("Msg"))


def pick(record: Mapping[str, Any], *keys: str) -> object:
    """The value of the first key present with a non-empty value."""
    for key in keys:
        value = record.get(key)
        if value is not None and value != "":
            return value
    return None


def positive(value: float | None) -> float | None:
    """The value when strictly positive, else None (for fields where 0 means "not measured")."""
    return value if value is not None and value > 0 else None

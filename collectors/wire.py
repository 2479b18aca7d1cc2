"""Loose wire values -> typed values, once, at the border: sentinels and junk become None.

Firmware sends numbers as numbers or strings (`"GHS 5s":"54997.01"`), dash strings (`"73-45-64-65"`),
sentinels for "no sensor" (`-273`, `0-0-0-0`, `""`), the strings "nan"/"inf", counters past any
64-bit register, and (from a JSON `\\u0000` escape) strings holding NUL characters. Drivers read every
field through these functions, so a missing or nonsense field is None and never 0, and no driver indexes
raw dictionaries more than one level deep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from collectors.framing import Reply

SENTINEL_TEMPS = frozenset({-273.0, -273.15, -1.0, -83.0, 255.0})
"""Temperatures that mean "no sensor" (Avalon -273, S9 -83 on a faulty sensor, unset 255)."""

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


def temperature(value: object) -> float | None:
    """A temperature in Celsius, or None for sentinels, zeros and impossible values."""
    number = to_float(value)
    if number is None or number in SENTINEL_TEMPS or number <= 0 or number > 150:
        return None
    return number


def dash_temps(value: object) -> list[float]:
    """The real readings in an Antminer dash string like `"73-45-64-65"` (zeros dropped, `"2--1-20"` ok)."""
    if not isinstance(value, str):
        return []
    readings: list[float] = []
    for part in value.replace("--", "-").split("-"):
        reading = temperature(part)
        if reading is not None:
            readings.append(reading)
    return readings


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


def first(reply: Reply | None, name: str) -> dict[str, Any]:
    """The first record of a section, or an empty dict."""
    records = section(reply, name)
    return records[0] if records else {}


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

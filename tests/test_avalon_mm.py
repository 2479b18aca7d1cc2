"""The Avalon driver converts only the `MM ID` tokens it reads: the same values as converting them all.

`modules` keeps each token's text and `_num` / `_list` convert the one asked for; `parse_mm` converts every
token (what the driver did before). For every token of every captured module string, and for the
corner cases of the conversion (`%` suffixes, junk, non-finite numbers, repeated keys, SYSTEMSTATU),
both give the same value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from collectors.drivers.avalon import _list, _num, _value, mm_tokens, modules, parse_mm
from collectors.wire import to_float

CAPTURES = Path(__file__).parent / "captures" / "device-responses"


def _module_strings() -> list[str]:
    """Every `MM ID` / `HBinfo` string of the captured stats/estats replies that are plain JSON."""
    found: list[str] = []
    for path in sorted(CAPTURES.rglob("*.json")):
        try:
            reply = json.loads(path.read_text())
        except ValueError:
            continue
        records = reply.get("STATS") if isinstance(reply, dict) else None
        for record in records if isinstance(records, list) else []:
            if not isinstance(record, dict):
                continue
            found += [
                v for k, v in record.items() if k.startswith(("MM ID", "HBinfo")) and isinstance(v, str)
            ]
    return found


CORNERS = [
    "A[1 2 3] B[77%] C[1 2%] D[nan 1] E[1 inf] F[x 1] G[] H[ 5 ] I[-273] J[1e999 2] K[0x1 2] L[1_0 2]",
    "SYSTEMSTATU[Work: In Idle, Hash Board: 0] SoftOFF[1] Led[0] LED[1] A[1] A[2 3]",
    "GHSspd[ 12.5 ] GHSmm[junk] WALLPOWER[3200 3300] MGHS[1 NaN] MTmax[80% 81%] PVT_T0[0 70 0 71]",
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("text", [*_module_strings(), *CORNERS])
def test_reading_one_token_gives_what_converting_all_gives(text: str) -> None:
    eager = parse_mm(text)
    lazy = mm_tokens(text)
    assert list(lazy) == list(eager)
    for key, value in eager.items():
        assert _value(lazy, key) == value
        number = value[0] if isinstance(value, list) else None
        if isinstance(value, str):
            number = to_float(value.rstrip("%"))
        assert _same(_num(lazy, key), number)
        expected_list = value if isinstance(value, list) else ([number] if number is not None else [])
        assert _list(lazy, key) == expected_list
    assert _value(lazy, "NoSuchKey") is None
    assert _num(lazy, "NoSuchKey") is None
    assert _list(lazy, "NoSuchKey") == []


def test_captures_hold_module_strings() -> None:
    strings = _module_strings()
    assert len(strings) >= 5
    assert any("PVT_T0" in s for s in strings)


def test_hbinfo_fills_only_keys_the_module_lacks() -> None:
    stats = {"STATS": [{"MM ID0": "A[1] B[2 3]", "HBinfo": "B[9] C[4 5]"}]}
    (mm,) = modules(stats)
    assert _list(mm, "B") == [2.0, 3.0]
    assert _list(mm, "C") == [4.0, 5.0]
    assert _num(mm, "A") == 1.0

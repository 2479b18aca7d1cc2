"""Fuzzing framing and repair: only MinerProtocolError escapes, and valid JSON keeps its meaning."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.errors import MinerProtocolError
from collectors.framing import _reject_constant, _with_missing_commas, decode_reply, repair

CAPTURES = sorted(
    p.read_bytes()
    for p in (Path(__file__).resolve().parents[2] / "shared/reference/device-responses").rglob("*")
    if p.suffix in (".json", ".txt") and p.name != "SOURCES.md"
)
FUZZ = settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_protocol_error(data: bytes) -> None:
    with contextlib.suppress(MinerProtocolError):
        decode_reply(data)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_raise_nothing_but_protocol_error(data: bytes) -> None:
    _decode_or_protocol_error(data)


@FUZZ
@given(st.sampled_from(CAPTURES), st.integers(min_value=0), st.binary(max_size=8), st.integers(0, 40))
def test_mutated_captures_raise_nothing_but_protocol_error(
    capture: bytes, pos: int, junk: bytes, cut: int
) -> None:
    at = pos % (len(capture) + 1)
    _decode_or_protocol_error(capture[:at] + junk + capture[at + cut :])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_valid_json_objects_parse_to_the_same_value(value: dict) -> None:
    assert decode_reply(json.dumps(value).encode() + b"\x00") == value


def test_strings_that_look_like_quirks_are_not_rewritten() -> None:
    data = b'{"a":"}{","b":"nan","c":"[,{","d":",}"}'
    assert decode_reply(data) == {"a": "}{", "b": "nan", "c": "[,{", "d": ",}"}


def test_unrepairable_reply_names_its_first_bytes() -> None:
    try:
        decode_reply(b"<html>not a miner</html>")
    except MinerProtocolError as exc:
        assert "<html>" in str(exc)
    else:
        raise AssertionError("expected MinerProtocolError")


def _fast(text: str) -> object:
    """What `decode_reply` gets before any full repair: json's value, else the comma fast path's."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return _with_missing_commas(text, exc)
    except (ValueError, RecursionError):
        return None


def _glued(value: object, drop: st.DataObject) -> str:
    """`value` as JSON text with some commas left out before a member, a string, a list or an object
    (the glued forms firmware sends: `}{`, `""temp0`, `][`; two glued numbers would be ambiguous)."""
    if isinstance(value, list):
        parts = [_glued(v, drop) for v in value]
    elif isinstance(value, dict):
        parts = [f"{json.dumps(k)}:{_glued(v, drop)}" for k, v in value.items()]
    else:
        return json.dumps(value)
    text = parts[0] if parts else ""
    for part in parts[1:]:
        glue = part[0] in '{["' and drop.draw(st.booleans())
        text += ("" if glue else ",") + part
    return ("[%s]" if isinstance(value, list) else "{%s}") % text


@FUZZ
@given(st.dictionaries(st.text(), json_values, max_size=5), st.data())
def test_values_glued_without_commas_parse_to_the_value(value: dict, drop: st.DataObject) -> None:
    assert decode_reply(_glued(value, drop).encode()) == value


@FUZZ
@given(st.sampled_from(CAPTURES), st.integers(min_value=0), st.binary(max_size=8), st.integers(0, 40))
def test_comma_fast_path_agrees_with_the_full_repair(capture: bytes, pos: int, junk: bytes, cut: int) -> None:
    at = pos % (len(capture) + 1)
    text = (capture[:at] + junk + capture[at + cut :]).decode("utf-8", "replace").strip().rstrip("\x00")
    fast = _fast(text)
    if fast is not None:
        assert fast == json.loads(repair(text))


def test_stock_antminer_stats_takes_the_comma_fast_path() -> None:
    glued = [c for c in CAPTURES if b"}{" in c and b"STATS" in c]
    assert glued, "expected bmminer stats captures with `}{`"
    for capture in glued:
        text = capture.decode("utf-8", "replace").strip().rstrip("\x00")
        fast = _fast(text)
        if fast is not None:
            assert fast == json.loads(repair(text))
    assert any(_fast(c.decode().strip().rstrip("\x00")) is not None for c in glued)

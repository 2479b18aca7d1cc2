"""Fuzzing framing and repair: only MinerProtocolError escapes, valid JSON keeps its meaning, and the
reply frames cut at the same byte however the reply is split into chunks."""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.errors import MinerProtocolError
from collectors.framing import (
    MAX_DEPTH,
    NulFrame,
    V3Frame,
    _reject_constant,
    _with_missing_commas,
    decode_reply,
    repair,
)

CAPTURES = sorted(
    p.read_bytes()
    for p in (Path(__file__).resolve().parent / "captures" / "device-responses").rglob("*")
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


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


def _feed(frame: NulFrame | V3Frame, chunks: list[bytes]) -> bytes | None:
    """What the connection would get: the reply at completion or EOF, MinerProtocolError, nothing else."""
    try:
        for chunk in chunks:
            if frame.feed(chunk):
                return frame.reply()
        return frame.at_eof()
    except MinerProtocolError:
        return None


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=8), st.integers(1, 700))
def test_nul_frame_stops_at_the_first_nul_whatever_the_chunking(
    data: bytes, cuts: list[int], cap: int
) -> None:
    before, nul, _after = data.partition(b"\x00")
    got = _feed(NulFrame(cap), _chunks(data, cuts))
    if len(before) > cap or (nul and not before):
        assert got is None  # over the cap, or an empty reply before the NUL
    else:
        assert got == before  # never a byte past the NUL, whatever came after it


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=8), st.integers(1, 700))
def test_v3_frame_takes_exactly_its_announced_length(body: bytes, cuts: list[int], cap: int) -> None:
    data = len(body).to_bytes(4, "little") + body + b"trailing"
    got = _feed(V3Frame(cap), _chunks(data, cuts))
    assert got == (body if len(body) <= cap else None)
    cut_short = data[: len(data) - len(b"trailing") - 1]  # the device closes one byte early
    assert _feed(V3Frame(cap), _chunks(cut_short, cuts)) is None


@FUZZ
@given(
    st.integers(1, 160).flatmap(
        lambda n: st.lists(st.sampled_from(["[", '{"k":', '["[{",', '{"}]":']), min_size=n, max_size=n)
    ),
    st.text(max_size=8),
)
def test_nesting_past_the_limit_is_refused_and_within_it_kept(openers: list[str], leaf: str) -> None:
    closers = "".join("]" if o.startswith("[") else "}" for o in reversed(openers))
    text = '{"a":' + "".join(openers) + json.dumps(leaf) + closers + "}"
    depth = len(openers) + 1  # brackets inside the strings ("[{", "}]") do not count
    if depth > MAX_DEPTH:
        with pytest.raises(MinerProtocolError, match=r"nests at least \d+ levels deep") as caught:
            decode_reply(text.encode())
        assert int(str(caught.value).split("at least ")[1].split()[0]) > MAX_DEPTH
    else:
        assert decode_reply(text.encode()) == json.loads(text)


@FUZZ
@given(st.sampled_from(CAPTURES), st.integers(min_value=0), st.sampled_from("[{]}"), st.integers(0, 3000))
def test_captures_with_bracket_runs_raise_nothing_but_protocol_error(
    capture: bytes, pos: int, bracket: str, run: int
) -> None:
    at = pos % (len(capture) + 1)
    _decode_or_protocol_error(capture[:at] + bracket.encode() * run + capture[at:])

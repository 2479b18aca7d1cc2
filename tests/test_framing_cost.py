"""Decoding costs work linear in the reply's size, whatever the bytes, and nesting is refused before any
parser recurses.

Work is counted, never timed: the lines `collectors/framing.py` executes plus the characters handed to
json's parser, read by a trace function. For each pathological family the count at 4x the size must be
at most about 4x the count at 1x; a quadratic step (a json retry per glued `}{`, a rescan per quote)
makes it 16x.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from collectors import framing
from collectors.client import INLINE_JSON_BYTES, decode
from collectors.errors import MinerEmptyReplyError, MinerProtocolError
from collectors.framing import MAX_DEPTH, NulFrame, decode_reply, nesting_depth

FRAMING = str(Path(framing.__file__).resolve())
JSON_DECODER = json.decoder.JSONDecoder.decode.__code__


class Work:
    """Counts framing's executed lines and the characters json's parser is given, while active."""

    def __init__(self) -> None:
        self.lines = 0
        self.json_chars = 0
        self.json_calls = 0

    def _trace(self, frame: FrameType, event: str, _arg: Any) -> Callable[..., Any] | None:
        if event == "call":
            if frame.f_code is JSON_DECODER:
                self.json_calls += 1
                self.json_chars += len(frame.f_locals["s"])
                return None
            return self._trace if frame.f_code.co_filename == FRAMING else None
        if event == "line":
            self.lines += 1
        return self._trace

    def run(self, data: bytes) -> int:
        """Decode `data` (a protocol error is a fine outcome) and return the work it took."""
        sys.settrace(self._trace)
        try:
            decode_reply(data)
        except MinerProtocolError:
            pass
        finally:
            sys.settrace(None)
        return self.lines + self.json_chars


def work(data: bytes) -> int:
    return Work().run(data)


PATHOLOGICAL: dict[str, Callable[[int], bytes]] = {
    "glued objects": lambda k: b'{"a":[' + b'{"x":1}' * k + b"]}",
    "glued strings": lambda k: b'{"a":[' + b'"x"' * k + b"]}",
    "glued lists": lambda k: b'{"a":[' + b"[1]" * k + b"]}",
    "deep nesting": lambda k: b'{"a":' + b"[" * k + b"]" * k + b"}",
    "nesting at the limit, repeated": lambda k: (
        b'{"a":[' + (b"[" * 60 + b"]" * 60 + b",") * (k // 60) + b"0]}"
    ),
    "deep nesting inside a string": lambda k: b'{"a":"' + b"[" * k + b'"}',
    "doubled commas": lambda k: b'{"a":[1' + b"," * k + b"2]}",
    "backslash runs": lambda k: b'{"a":"' + b"\\\\" * k + b'"}',
    "escaped quotes, unterminated": lambda k: b'{"a":"' + b'\\"' * k,
    "quotes and brackets, unterminated": lambda k: b'{"a":"' + b'\\"[' * k,
    "bare nan": lambda k: b'{"a":[' + b"nan," * k + b"1]}",
    "list written like a dict": lambda k: b'{"a":[' + b'"k":1,' * k + b'"z":2]}',
    "truncated deep": lambda k: b'{"a":' + b'[{"b":1},' * k,
    "invalid escapes": lambda k: b'{"a":"' + b"\\x" * k + b'"}',
    "plain text": lambda k: b"STATUS=S,Code=11|" + b"SUMMARY,A=1," * k + b"|",
    "trailing junk": lambda k: b'{"a":1}' + b"}" * k,
}


@pytest.mark.parametrize("family", list(PATHOLOGICAL))
def test_decoding_work_grows_linearly_with_the_reply(family: str) -> None:
    make = PATHOLOGICAL[family]
    small, large = work(make(2_000)), work(make(8_000))
    assert small > 0
    assert large <= 4.6 * small, f"{family}: work {small} -> {large} for 4x the bytes"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 300_000])
def test_deep_nesting_is_refused_before_json_recurses(depth: int) -> None:
    data = b'{"STATUS":[],"STATS":' + b"[" * depth + b"]" * depth + b"}\x00"
    counter = Work()
    with pytest.raises(MinerProtocolError, match=r"nests at least \d+ levels deep \(limit 64\)"):
        sys.settrace(counter._trace)
        try:
            decode_reply(data)
        finally:
            sys.settrace(None)
    assert counter.json_calls == 0


def test_nesting_at_the_limit_still_decodes() -> None:
    data = b'{"a":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert nesting_depth(data.decode()) == MAX_DEPTH
    value: Any = decode_reply(data)["a"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == []


def test_brackets_inside_strings_do_not_count() -> None:
    text = '{"a":"' + "[{" * 500 + '\\"]","b":[["\\\\"]]}'
    assert nesting_depth(text) == 3
    assert decode_reply(text.encode())["b"] == [["\\"]]


async def test_big_reply_is_decoded_while_the_event_loop_runs_on() -> None:
    """A reply past INLINE_JSON_BYTES that needs repair is decoded in the decoder thread: other tasks
    keep running meanwhile. Decoded in place, the counter would not run once before `decode` returned."""
    body = b'{"STATS":[' + b'{"x":1,,}' * (INLINE_JSON_BYTES // 8) + b"]}"  # glued `}{` and `,,`
    assert len(body) > INLINE_JSON_BYTES
    done = False
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while not done:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    turns = 0
    reply = await decode(body)
    seen = turns
    done = True
    await counter
    assert isinstance(reply["STATS"], list) and len(reply["STATS"]) > 1000
    assert seen > 0


async def test_small_reply_is_decoded_in_place() -> None:
    """Below the threshold a thread hand-off costs more than the parse: no other task runs meanwhile."""
    done = False
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while not done:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    turns = 0
    reply = await decode(b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":1}]}\x00')
    seen = turns
    done = True
    await counter
    assert reply["SUMMARY"] == [{"Elapsed": 1}]
    assert seen == 0


def test_a_lone_nul_is_empty_and_a_nul_before_junk_is_not() -> None:
    """Random junk may start with a NUL: that is junk (protocol_error), not the empty reply some
    firmware sends (a NUL and nothing else: empty_reply)."""
    with pytest.raises(MinerEmptyReplyError):
        NulFrame(1024).feed(b"\x00")
    with pytest.raises(MinerProtocolError) as caught:
        NulFrame(1024).feed(b"\x00\x8f\x12junk")
    assert not isinstance(caught.value, MinerEmptyReplyError)

"""Bytes <-> JSON for the CGMiner-style API: request encoding, bounded reading, quirk repair.

Reading (`NulFrame`): a reply is everything up to the first NUL or EOF, whichever comes first, never past
`max_bytes` (MinerReplyTooLargeError, memory stays bounded). It is complete at the NUL: some firmware keeps
the socket open after replying, so waiting for a close could hang. The frame classes only count and cut
bytes; the connection (`connection.py`) feeds them what it receives and owns the deadlines.

Decoding (`decode_reply`): valid JSON is parsed as is (the fast path, and the guarantee that a valid reply
always means what it says). Values glued without their comma (bmminer's `}{`, on every stock Antminer
`stats`) are fixed next, at the offsets json itself reports. Anything else goes through `repair`, one
string-aware pass over the text that fixes the malformations listed in protocols.md section 1, without
touching the inside of valid strings:

- a missing comma between two values: `}{`, `""temp0`, `]["`;
- a comma where none may be: `[,{`, trailing `,}` / `,]`, doubled `,,`, a leading `,"id":1}` (gets `{`);
- bare `nan`, `inf`, `-inf`, `NaN`, `Infinity` -> the float NaN/inf, like an overflowing `1e999` (the
  strings "nan"/"inf" are valid JSON and stay strings); `wire.py` refuses them with an `invalid_value`
  error naming the field, so a device's bad number is reported, not silently nulled here;
- invalid escapes inside strings: `\\'` -> `'`, any other `\\x` -> a literal backslash;
- raw control characters (literal newlines) inside strings -> escaped;
- a list written like a dict (Whatsminer API 2.0.4 `["218":"..."]`) -> an object;
- trailing garbage after the complete top-level value (`...}"` on some Avalon and S9k firmware) -> dropped;
- a truncated reply -> cut back to the last complete element and closed (by `repair`; `decode_reply`
  refuses it instead, see below).

The plain-text reply form (`STATUS=S,...|SUMMARY,...|`) is parsed into the same shape as the JSON form.
What cannot be repaired raises MinerProtocolError naming the start of the bytes; nothing else escapes.
Refused outright, before any parser runs: bytes that are not UTF-8 (JSON on the wire is UTF-8, RFC 8259
section 8.1), an empty reply (MinerEmptyReplyError), an HTTP response, and nesting deeper than MAX_DEPTH.
A reply that ends before its top-level value closes is refused too: the numbers it lost cannot be told
from the ones it kept (a cut STATS would show a live board as dead), so the device is an error, not data.

Cost: decoding is linear in the reply's size (`nesting_depth` and the repair pass are single scans, the
comma fast path re-runs json at most `_MAX_MISSING_COMMAS` times). The connection layer decides what runs
off the event loop (`client.decode`); this module stays pure.

Whatsminer API v3 (port 4433) frames every message as a 4-byte little-endian length plus JSON:
`encode_v3_frame` / `V3Frame`.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from collectors.errors import MinerEmptyReplyError, MinerProtocolError, MinerReplyTooLargeError

Reply = dict[str, Any]
"""One decoded reply: a JSON object exactly as the device sent it (after repair)."""

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z", re.ASCII)
_NOT_A_NUMBER = frozenset(
    {"nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}
)
_ESCAPABLE = frozenset('"\\/bfnrtu')
_HEX = frozenset("0123456789abcdefABCDEF")
_CLOSER = {"{": "}", "[": "]"}


# --------------------------------------------------------------------------------------------- requests
def encode_request(command: str, parameter: str | None = None) -> bytes:
    """The JSON request for one command (or an `a+b+c` multi-command), as sent on port 4028."""
    body: dict[str, str] = {"command": command}
    if parameter is not None:
        body["parameter"] = parameter
    return json.dumps(body, separators=(",", ":")).encode()


def encode_v3_frame(message: dict[str, Any]) -> bytes:
    """One Whatsminer API v3 frame: 4-byte little-endian length, then the JSON bytes."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------------------------------------- reading
class NulFrame:
    """One port-4028 reply as its bytes arrive: everything before the first NUL, or before EOF.

    Sans-I/O: the connection feeds each chunk it receives (`feed` says True once the NUL came) and calls
    `at_eof` when the device closes first. Memory stays bounded: past `max_bytes`, `feed` raises
    MinerReplyTooLargeError, and bytes after the NUL are never kept.
    """

    __slots__ = ("_parts", "_size", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> bool:
        """Take one received chunk; True when the reply is complete (its NUL arrived)."""
        received = chunk
        nul = chunk.find(b"\x00")
        if nul >= 0:
            chunk = chunk[:nul]
        self._size += len(chunk)
        if self._size > self.max_bytes:
            start = self._parts[0] if self._parts else chunk
            raise MinerReplyTooLargeError(f"reply exceeds the {self.max_bytes}-byte cap", data=start[:256])
        if chunk:
            self._parts.append(chunk)
        if nul >= 0 and self._size == 0:  # bytes came, but the reply before the NUL is empty: not a close
            if received.strip(b"\x00"):  # a NUL, then junk: not the lone NUL of an empty reply
                raise MinerProtocolError("a NUL, then bytes that are no reply", data=received)
            raise MinerEmptyReplyError("empty reply before the NUL terminator", data=b"\x00")
        return nul >= 0

    def reply(self) -> bytes:
        """The reply's bytes (NUL excluded); at EOF, what came (empty when nothing did)."""
        return b"".join(self._parts)

    at_eof = reply


class V3Frame:
    """One Whatsminer API v3 reply as its bytes arrive: a 4-byte little-endian length, then that many
    bytes of JSON. Same interface as NulFrame; a length over `max_bytes` is refused from the header."""

    __slots__ = ("_buffer", "_length", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._length: int | None = None

    def feed(self, chunk: bytes) -> bool:
        """Take one received chunk; True when the whole frame is here (bytes past it are dropped)."""
        self._buffer += chunk
        if self._length is None:
            if len(self._buffer) < 4:
                return False
            (length,) = struct.unpack_from("<I", self._buffer)
            if length > self.max_bytes:
                header = bytes(self._buffer[:4])
                raise MinerReplyTooLargeError(
                    f"API v3 frame announces {length} bytes, cap {self.max_bytes}", data=header
                )
            self._length = length
            del self._buffer[:4]
        if len(self._buffer) >= self._length:
            del self._buffer[self._length :]
            return True
        return False

    def reply(self) -> bytes:
        """The frame's JSON bytes (call once `feed` said True)."""
        return bytes(self._buffer)

    def at_eof(self) -> bytes:
        """The device closed before the frame was complete: MinerProtocolError, or b"" if nothing came."""
        if self._length is None:
            if not self._buffer:
                return b""
            raise MinerProtocolError("API v3 reply shorter than its 4-byte header", data=bytes(self._buffer))
        raise MinerProtocolError(
            f"API v3 frame cut short ({len(self._buffer)} of {self._length} bytes)", data=bytes(self._buffer)
        )


# --------------------------------------------------------------------------------------------- decoding
MAX_DEPTH = 64
"""Deepest nesting of objects and lists a reply may have. Real replies nest at most 5 levels (the
captures in tests/captures); json's C parser recurses once per level, so a few hundred thousand brackets
would raise RecursionError only after burning CPU, and the repair pass would walk all of them first."""

_DEPTH_CHUNK = 16_384
_BRACKETS_ONLY = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _reject_constant(name: str) -> float:
    # Kept as the non-finite float it spells: wire.py reports it as an invalid value, never silence.
    return float(name)


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep the brackets outside strings nest, counted only until the count passes `limit`.

    Linear in the text and cheap where it matters: a reply with at most `limit` opening brackets cannot
    nest deeper (two `str.count` calls); otherwise the strings are cut out and the brackets left summed
    in C (`_STRING`, `_BRACKETS_ONLY`, a chunk of _DEPTH_CHUNK brackets at a time). Only a reply that
    passes the limit is walked again (`_walked_depth`) for the count the refusal names, which stops at
    the first chunk past the limit (so a reply of 300,000 brackets costs one chunk).
    A string left open at the end counts as string to the end, as the repair pass reads it.
    """
    if text.count("[") + text.count("{") <= limit:
        return _plain_depth(text)
    return _cut_depth(text, limit)


def _cut_depth(text: str, limit: int) -> int:
    """`nesting_depth` past the plain case: the strings cut out by one regex, the brackets left summed;
    the same count as `_walked_depth`, which names it when the limit is passed.

    An Avalon stats reply holds ~500 brackets, nearly all inside its `MM ID` strings (`Key[value]`):
    cutting the strings out in C costs a fraction of walking them one `str.find` at a time. Without a
    backslash every quote opens or closes a string, so the strings are the odd pieces of a split on
    quotes (a string left open at the end included), cheaper still than the regex.
    """
    outside = "".join(text.split('"')[::2]) if "\\" not in text else _STRING.sub("", text)
    brackets = _BRACKETS_ONLY.sub("", outside)
    depth = deepest = 0
    for start in range(0, len(brackets), _DEPTH_CHUNK):
        depth, deepest = _sum_brackets(brackets[start : start + _DEPTH_CHUNK], depth, deepest)
        if deepest > limit:
            return _walked_depth(text, limit)
    return deepest


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
"""One JSON string, escapes included; an unterminated one runs to the end (as `_outside_strings` reads)."""


def _walked_depth(text: str, limit: int) -> int:
    """`nesting_depth` by walking the strings with `str.find`, stopping at the first chunk of about
    _DEPTH_CHUNK characters that passes `limit` (the count a refusal names)."""
    depth = deepest = 0
    pending: list[str] = []
    size = 0
    for segment in _outside_strings(text):
        for start in range(0, len(segment), _DEPTH_CHUNK):  # a long run of brackets: one chunk at a time
            piece = segment[start : start + _DEPTH_CHUNK]
            pending.append(piece)
            size += len(piece)
            if size < _DEPTH_CHUNK:
                continue
            depth, deepest = _sum_brackets("".join(pending), depth, deepest)
            if deepest > limit:
                return deepest
            pending.clear()
            size = 0
    return _sum_brackets("".join(pending), depth, deepest)[1]


def _outside_strings(text: str) -> Iterator[str]:
    """The pieces of `text` between its JSON strings (an unterminated string runs to the end)."""
    i, n = 0, len(text)
    while i < n:
        quote = text.find('"', i)
        if quote < 0:
            yield text[i:]
            return
        yield text[i:quote]
        end = quote
        while True:
            end = text.find('"', end + 1)
            if end < 0:
                return
            back = end - 1
            while text[back] == "\\":
                back -= 1
            if (end - 1 - back) % 2 == 0:  # an even run of backslashes: this quote closes the string
                i = end + 1
                break


def _sum_brackets(chunk: str, depth: int, deepest: int) -> tuple[int, int]:
    """The depth after `chunk` and the deepest point so far, starting at `depth`."""
    sums = list(accumulate(map(_STEP.__getitem__, _BRACKETS_ONLY.sub("", chunk)), initial=depth))
    return sums[-1], max(deepest, max(sums))  # noqa: PLW3301 (max(deepest, *sums) unpacks every sum)


def _plain_depth(text: str) -> int:
    """The depth of a text with few brackets (strings included: an upper bound, and exact when small)."""
    depth = deepest = 0
    for ch in _BRACKETS_ONLY.sub("", text):
        depth += _STEP[ch]
        deepest = max(deepest, depth)
    return deepest


def _reply_text(data: bytes) -> str:
    """The reply as text, or MinerProtocolError for what no firmware's JSON is: not UTF-8, empty, an HTTP
    response on the API port, nesting deeper than MAX_DEPTH (checked before any parser recurses)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MinerProtocolError(
            f"reply is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", data=data
        ) from exc
    text = text.strip().rstrip("\x00").strip()
    if not text:
        raise MinerEmptyReplyError("empty reply", data=data)
    if text.startswith("HTTP/"):
        raise MinerProtocolError("an HTTP response, not a miner API reply (a web server?)", data=data)
    # Most replies open at most MAX_DEPTH brackets, and so cannot nest deeper: two `str.count` calls
    # answer for them, without the scan `nesting_depth` makes to say how deep they do nest.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = nesting_depth(text)
        if depth > MAX_DEPTH:
            raise MinerProtocolError(
                f"reply nests at least {depth} levels deep (limit {MAX_DEPTH})", data=data
            )
    return text


def decode_valid(data: bytes) -> Reply | None:
    """The reply when it is valid JSON (json's C parser alone), None when it needs `decode_reply`'s
    repairs; MinerProtocolError for bytes no repair could help (see `_reply_text`) or a non-object."""
    text = _reply_text(data)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        raise MinerProtocolError("reply is not a JSON object", data=data)
    return value


def decode_reply(data: bytes) -> Reply:
    """Decode one reply into a JSON object, repairing known firmware quirks; MinerProtocolError otherwise.

    Cost is linear in the reply's size: one depth scan, at most `_MAX_MISSING_COMMAS + 1` runs of json's
    C parser, then at most one repair pass and one more parse.
    """
    text = _reply_text(data)
    value: Any = None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        if not text.startswith("STATUS="):
            value = _with_missing_commas(text, exc)
    except (ValueError, RecursionError):
        pass
    if value is None:
        if text.startswith("STATUS="):
            return parse_plain_text(text)
        fixer = _Repair(text, data)
        repaired = fixer.run()
        if fixer.truncated:
            raise MinerProtocolError(
                f"reply ends inside {fixer.open_at_end} open brackets (cut off before its end)", data=data
            )
        try:
            value = json.loads(repaired, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise MinerProtocolError(f"unrepairable JSON ({exc})", data=data) from exc
    if not isinstance(value, dict):
        raise MinerProtocolError("reply is not a JSON object", data=data)
    return value


_MISSING_COMMA = "Expecting ',' delimiter"
_MAX_MISSING_COMMAS = 16


def _with_missing_commas(text: str, error: json.JSONDecodeError) -> Any:
    """The commonest quirk, fast: values glued without their comma (bmminer's `}{` in STATS).

    `error` is what json said of `text`. json reports the offset where a comma was due, always outside
    any string, and `repair` would insert the same comma there; here the C parser finds each spot
    instead of the Python tokenizer walking every character. Any other fault (or too many glued values)
    returns None and `repair` takes the original text, so what this accepts is exactly what the full
    pass would produce.
    """
    for _ in range(_MAX_MISSING_COMMAS):
        if error.msg != _MISSING_COMMA or text[error.pos : error.pos + 1] not in ("{", "[", '"'):
            return None
        text = f"{text[: error.pos]},{text[error.pos :]}"
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            error = exc
        except (ValueError, RecursionError):
            return None
    return None


def repair(text: str, *, original: bytes | None = None) -> str:
    """Rewrite a malformed reply into valid JSON text (see the module docstring for what is fixed)."""
    fixer = _Repair(text, original if original is not None else text.encode("utf-8", "replace"))
    return fixer.run()


class _Repair:
    """One pass over the text; `prev` is the kind of the last significant token written."""

    def __init__(self, text: str, original: bytes) -> None:
        self.text = text
        self.original = original
        self.out: list[str] = []
        self.stack: list[list[Any]] = []  # [opener, index of the opener in out]
        self.prev = "start"  # start | open | value | key | colon | comma
        self.safe_len = 0  # out length and stack depth at the last point where the text could be closed
        self.safe_depth = 0
        self.truncated = False  # the text ended before its top-level value closed
        self.open_at_end = 0

    def fail(self, why: str) -> MinerProtocolError:
        return MinerProtocolError(f"unrepairable reply: {why}", data=self.original)

    def _mark_safe(self) -> None:
        self.safe_len = len(self.out)
        self.safe_depth = len(self.stack)

    def _value_start(self) -> None:
        """Before a value: insert the comma that firmware forgot between two values."""
        if self.prev == "value" and self.stack:
            self.out.append(",")
            self.prev = "comma"

    def _value_done(self) -> None:
        self.prev = "value"
        self._mark_safe()

    def run(self) -> str:
        text, n, i = self.text, len(self.text), 0
        while i < n:
            ch = text[i]
            if ch in " \t\r\n\x00":
                i += 1
            elif ch in "{[":
                if self.prev == "start" and self.out:
                    break
                if len(self.stack) >= MAX_DEPTH:
                    raise self.fail(f"nesting deeper than {MAX_DEPTH} levels at offset {i}")
                self._value_start()
                self.stack.append([ch, len(self.out)])
                self.out.append(ch)
                self.prev = "open"
                self._mark_safe()
                i += 1
            elif ch in "}]":
                if not self.stack:
                    raise self.fail(f"unexpected {ch!r} at offset {i}")
                if self.prev == "comma":
                    self.out.pop()
                elif self.prev in ("colon", "key"):
                    self.out.append("null" if self.prev == "colon" else ":null")
                opener = self.stack.pop()[0]
                self.out.append(_CLOSER[opener])
                self._value_done()
                i += 1
                if not self.stack:
                    return "".join(self.out)  # anything after the top-level value is junk
            elif ch == ",":
                if self.prev == "start":
                    # Avalon sometimes drops the opening brace: `,"id":1}`.
                    self.stack.append(["{", 0])
                    self.out.append("{")
                    self.prev = "open"
                elif self.prev in ("value", "key"):
                    if self.prev == "key":
                        self.out.append(":null")
                    self.out.append(",")
                    self.prev = "comma"
                # after `[`, `{`, `,` or `:` a comma is noise: `[,{`, `,,`
                i += 1
            elif ch == ":":
                if not self.stack:
                    raise self.fail(f"':' outside any object at offset {i}")
                top = self.stack[-1]
                if top[0] == "[" and self.prev == "value":
                    # A list written like a dict (Whatsminer API 2.0.4): make it the object it means.
                    top[0] = "{"
                    self.out[top[1]] = "{"
                    self.prev = "key"
                if self.prev == "key":
                    self.out.append(":")
                    self.prev = "colon"
                i += 1
            elif ch == '"':
                if not self.stack:
                    raise self.fail("reply does not start with '{'")
                as_key = self.stack[-1][0] == "{" and self.prev in ("open", "comma")
                if not as_key:
                    self._value_start()
                    if self.stack[-1][0] == "{" and self.prev == "comma":
                        as_key = True
                end, literal = self._string(i + 1)
                if end < 0:
                    break  # truncated inside a string
                self.out.append(literal)
                i = end
                if as_key:
                    self.prev = "key"
                else:
                    self._value_done()
            else:
                j = i
                while j < n and (text[j].isalnum() or text[j] in "+-._"):
                    j += 1
                if j == i:
                    raise self.fail(f"unexpected {ch!r} at offset {i}")
                if not self.stack:
                    raise self.fail("reply does not start with '{'")
                if j >= n:
                    break  # a bare token cut by the end of the reply may itself be cut: drop it
                word = text[i:j]
                self._value_start()
                self.out.append(self._bare(word))
                self._value_done()
                i = j
        return self._close_truncated()

    def _bare(self, word: str) -> str:
        lower = word.lower()
        if lower in ("true", "false", "null"):
            return lower
        if lower in _NOT_A_NUMBER:
            return "NaN" if "nan" in lower else ("-Infinity" if lower.startswith("-") else "Infinity")
        if _NUMBER.match(word):
            return word
        candidate = word.lstrip("+")
        try:
            float(candidate)
        except ValueError:
            raise self.fail(f"bare word {word[:20]!r} is not a JSON value") from None
        return json.dumps(float(candidate))

    def _string(self, start: int) -> tuple[int, str]:
        """Scan a string body from `start`; return (index after the closing quote, JSON literal)."""
        text, n = self.text, len(self.text)
        buf = ['"']
        i = start
        while i < n:
            ch = text[i]
            if ch == '"':
                buf.append('"')
                return i + 1, "".join(buf)
            if ch == "\\":
                if i + 1 >= n:
                    return -1, ""
                nxt = text[i + 1]
                if nxt == "u" and i + 5 < n and all(c in _HEX for c in text[i + 2 : i + 6]):
                    buf.append(text[i : i + 6])
                    i += 6
                    continue
                if nxt in _ESCAPABLE and nxt != "u":
                    buf.append(text[i : i + 2])
                elif nxt == "'":
                    buf.append("'")
                else:
                    buf.append("\\\\")  # a lone backslash: keep it as a literal character
                    i += 1
                    continue
                i += 2
                continue
            if ch < " ":
                buf.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{ord(ch):04x}"))
            else:
                buf.append(ch)
            i += 1
        return -1, ""

    def _close_truncated(self) -> str:
        if not self.out:
            raise self.fail("no JSON object in reply")
        self.truncated = bool(self.stack)
        self.open_at_end = len(self.stack)
        del self.out[self.safe_len :]
        if self.safe_depth == 0:
            raise self.fail("reply ends before any complete value")
        closers = [_CLOSER[entry[0]] for entry in reversed(self.stack[: self.safe_depth])]
        return "".join(self.out) + "".join(closers)


# ------------------------------------------------------------------------------------------- plain text
def _plain_value(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else None


def _split_escaped(text: str, sep: str) -> list[str]:
    """Split on `sep` where it is not backslash-escaped; unescape `\\|`, `\\,`, `\\=`, `\\\\`."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(ch + text[i + 1])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_plain_text(text: str) -> Reply:
    """Parse the plain-text reply form `STATUS=S,...|SECTION,k=v,...|` into the JSON reply shape."""
    reply: Reply = {}
    for index, section in enumerate(s for s in _split_escaped(text.strip(), "|") if s.strip()):
        fields = _split_escaped(section, ",")
        name = "STATUS" if index == 0 else None
        record: dict[str, Any] = {}
        for field in fields:
            key, eq, raw = field.partition("=")
            if not eq:
                if name is None:
                    name = _unescape(key).strip() or None
                continue
            record[_unescape(key)] = _plain_value(_unescape(raw))
        reply.setdefault(name or "DATA", []).append(record)
    if "STATUS" not in reply:
        raise MinerProtocolError("plain-text reply without STATUS", data=text)
    return reply

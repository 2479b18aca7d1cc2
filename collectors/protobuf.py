"""Protocol Buffers wire format, the little of it Braiins OS's gRPC messages need: pure data, no I/O.

A message is written from `(field number, value)` pairs: an `int` or `bool` is a varint (wire type 0),
`str` / `bytes` are length-delimited (type 2; a nested message is its encoded bytes). Reading gives
every field number its values in order: varints as `int`, length-delimited as `bytes` (a string or a
nested message, as the schema says: `text` / `decode` them), fixed 64/32-bit as their raw bytes.
Unknown fields are kept, not refused (proto3's rule: a newer firmware may add fields). Bytes that do not
parse raise `ProtobufError`; the caller turns it into the error of its layer.
"""

from __future__ import annotations

from collections.abc import Iterable

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
MAX_VARINT_BYTES = 10

Field = int | bool | str | bytes
Fields = dict[int, list[int | bytes]]


class ProtobufError(ValueError):
    """Bytes that are not a Protocol Buffers message."""


def varint(value: int) -> bytes:
    """A non-negative int as a varint (negative int32/int64 take ten bytes, two's complement)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(fields: Iterable[tuple[int, Field]]) -> bytes:
    """A message from (field number, value) pairs, in the order given (proto3 omits default values:
    pass only what should be sent)."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, bool | int):
            out += varint(number << 3 | VARINT) + varint(int(value))
        else:
            data = value.encode("utf-8") if isinstance(value, str) else value
            out += varint(number << 3 | LENGTH) + varint(len(data)) + data
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(pos, min(pos + MAX_VARINT_BYTES, len(data))):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise ProtobufError(f"varint at byte {pos} does not end")


def decode(data: bytes) -> Fields:
    """Every field of a message: field number -> its values in wire order."""
    fields: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"field number 0 at byte {pos}")
        value: int | bytes
        if wire == VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == LENGTH:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise ProtobufError(f"field {number} claims {size} bytes, {len(data) - pos} remain")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > len(data):
                raise ProtobufError(f"field {number} is cut short")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ProtobufError(f"field {number} has wire type {wire}, which proto3 does not use")
        fields.setdefault(number, []).append(value)
    return fields


def number(fields: Fields, field: int, default: int = 0) -> int:
    """The last value of a varint field (proto3: the default when absent)."""
    values = fields.get(field)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, int):
        raise ProtobufError(f"field {field} is not a varint")
    return value


def message(fields: Fields, field: int) -> Fields:
    """A nested message field, decoded (empty when absent)."""
    values = fields.get(field)
    if not values:
        return {}
    value = values[-1]
    if not isinstance(value, bytes):
        raise ProtobufError(f"field {field} is not a message")
    return decode(value)


def text(fields: Fields, field: int) -> str:
    """A string field ("" when absent)."""
    values = fields.get(field)
    if not values:
        return ""
    value = values[-1]
    if not isinstance(value, bytes):
        raise ProtobufError(f"field {field} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"field {field} is not UTF-8") from exc

"""The stored form of a sample's boards and pools: positional JSON arrays, not objects.

A board stored as `{"index": 0, "hashrate_ths": 36.6, "temp_c": 60.5, ...}` repeats six key names in
every row of every sample; stored as `[0,36.6,60.5,75.25,114,114]` (the fields in `Board`'s declared
order, null where absent) it is about a third of the size, and three boards are most of a sample's
bytes. Pools the same (`Pool` field order). Fans and errors are stored as their plain JSON.

Exact round trip: a float is written as Python's shortest repr and parsed back to the same float, so
`Sample.to_json()` of a stored sample is byte-identical to the collector's line. Readers accept the
object form too: rows written before migration 0006 (and SQLite files of that time) hold objects. An
array longer than the model's fields is refused (ValueError): it was written by a newer fleetmon.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic_core import to_json

from collectors.sample import Board, Pool

BOARD_FIELDS: tuple[str, ...] = tuple(Board.model_fields)
POOL_FIELDS: tuple[str, ...] = tuple(Pool.model_fields)

if BOARD_FIELDS != ("index", "hashrate_ths", "temp_c", "chip_temp_c", "chips", "expected_chips"):
    raise RuntimeError("Board's fields changed: update boards_json and keep the stored order")
if POOL_FIELDS != ("url", "user", "status", "accepted", "rejected", "active"):
    raise RuntimeError("Pool's fields changed: update pools_json and keep the stored order")


def _dumps(rows: list[list[Any]]) -> str:
    # pydantic-core's serialiser: ~2x faster than the json module here, the same shortest float text.
    return to_json(rows).decode()


def boards_json(boards: Sequence[Board]) -> str:
    """The boards as a JSON array of positional arrays."""
    return _dumps(
        [[b.index, b.hashrate_ths, b.temp_c, b.chip_temp_c, b.chips, b.expected_chips] for b in boards]
    )


def pools_json(pools: Sequence[Pool]) -> str:
    """The pools as a JSON array of positional arrays."""
    return _dumps([[p.url, p.user, p.status, p.accepted, p.rejected, p.active] for p in pools])


def _objects(stored: Any, fields: tuple[str, ...], what: str) -> list[Any]:
    if isinstance(stored, str | bytes):
        stored = json.loads(stored)
    if not isinstance(stored, list):
        raise ValueError(f"stored {what} are not a JSON array: {stored!r:.80}")
    out: list[Any] = []
    for item in stored:
        if isinstance(item, list):
            if len(item) > len(fields):
                raise ValueError(
                    f"stored {what} entry has {len(item)} fields, this fleetmon knows {len(fields)}"
                )
            out.append({name: value for name, value in zip(fields, item, strict=False) if value is not None})
        else:
            out.append(item)
    return out


def boards_from_stored(stored: Any) -> list[Any]:
    """Stored boards (positional arrays or objects, parsed or as text) as a list of field mappings."""
    return _objects(stored, BOARD_FIELDS, "boards")


def pools_from_stored(stored: Any) -> list[Any]:
    """Stored pools (positional arrays or objects, parsed or as text) as a list of field mappings."""
    return _objects(stored, POOL_FIELDS, "pools")

"""Plain row dataclasses to and from table rows, for the dataclasses whose fields bear their table's
column names (`JobRow`, `TaskRow`, `KeyRow`): a column added to the table and the dataclass needs no
third edit in a field-by-field copy."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    R = TypeVar("R", bound=DataclassInstance)
else:
    R = TypeVar("R")


def column_values(record: DataclassInstance) -> dict[str, Any]:
    """The record's fields as column values (its own objects, not copies)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def from_columns(cls: type[R], row: Any, **overrides: Any) -> R:
    """A `cls` of the row's columns of the same names, `overrides` in place of some of them."""
    values = {f.name: getattr(row, f.name) for f in fields(cls)}
    values.update(overrides)
    return cls(**values)

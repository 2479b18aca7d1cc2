"""Dead letters: what the database cannot store is kept raw in `rejected_samples`, never retried forever.

Two kinds of dead letter, both written by SampleStore.write before it returns for their batch, so the MQTT
ingester acknowledges them only once they are stored:
- a sample whose values the database refused (a NUL character PostgreSQL text cannot hold, an integer
  past 64 bits) that reached the writer without the Sample contract's checks;
- a payload that is not a valid sample at all (the ingester hands it over with the validation error).

Why a table rather than a file: at farm scale ingesters run on several hosts or in containers whose
disk is thrown away, while the database is the one place they share and that an operator already
reads (`fleetmon db rejected`); on a single machine the table lives in the same SQLite file.

Which errors count as "bad data" (`is_data_error`): SQLSTATE classes 22 (data exception: bad encoding,
out of range) and 23 (integrity: a constraint the values break), client-side value errors (psycopg and
sqlite3 raise OverflowError for integers past 64 bits; sqlite3 an InterfaceError for a value it cannot
bind). Everything else, class 42 (undefined table or column) included, means the database or the schema
is not ready, and is retried: dead-lettering every sample because a migration is missing would empty
the pipeline into this table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from sqlalchemy import Connection, Engine, Table, insert, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from collectors.sample import utcnow
from fleetmon.storage.errors import StorageDataError, StorageUnavailableError
from fleetmon.storage.models import RejectedSample

REJECTED: Table = RejectedSample.__table__  # type: ignore[attr-defined]

MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Rejection:
    """One dead letter: the raw bytes, where they came from (`source`: an MQTT topic, `writer`), why."""

    source: str
    payload: bytes
    error: str
    site: str | None = None
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class StoredRejection:
    """A dead letter as read back from the table."""

    id: int
    received_at: datetime
    source: str
    site: str | None
    error: str
    payload: bytes


def is_data_error(exc: BaseException) -> bool:
    """True when `exc` means "these values cannot be stored", False for an outage or a schema problem."""
    if isinstance(exc, StorageDataError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, OverflowError):
        return True
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True
    return isinstance(exc, sqlite3.DataError | sqlite3.IntegrityError | sqlite3.InterfaceError)


def _text(value: str) -> str:
    """A text column's value: a NUL (which PostgreSQL text refuses) shown as `\\x00`."""
    return value.replace("\x00", "\\x00")


def insert_rejections(conn: Connection, rejections: Sequence[Rejection]) -> None:
    """Add dead letters in `conn`'s transaction (the caller commits)."""
    if not rejections:
        return
    conn.execute(
        insert(REJECTED),
        [
            {
                "received_at": item.received_at,
                "source": _text(item.source),
                "site": None if item.site is None else _text(item.site),
                "error": _text(item.error[:MAX_ERROR_CHARS]),
                "payload": item.payload,
            }
            for item in rejections
        ],
    )


def iter_rejections(engine: Engine, limit: int | None = None) -> Iterator[StoredRejection]:
    """Dead letters, newest first (at most `limit`); raises StorageUnavailableError when unreadable."""
    query = select(REJECTED).order_by(REJECTED.c.received_at.desc(), REJECTED.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    try:
        with engine.connect() as conn:
            for row in conn.execute(query):
                yield StoredRejection(
                    id=row.id,
                    received_at=row.received_at,
                    source=row.source,
                    site=row.site,
                    error=row.error,
                    payload=bytes(row.payload),
                )
    except SQLAlchemyError as exc:
        raise StorageUnavailableError(f"reading rejected_samples failed: {exc}") from exc

"""The `api_keys` table: named queries for fleetmon.service.auth, which owns what a key means.

Only the SHA-256 digest of a key's secret is stored. Every function raises StorageUnavailableError
(fleetmon.storage.errors) when the database fails, never a SQLAlchemy exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Table, select, update

from fleetmon.storage.errors import translated
from fleetmon.storage.models import ApiKey
from fleetmon.storage.rows import column_values, from_columns

API_KEYS: Table = ApiKey.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One stored key, secret digest included."""

    id: str
    name: str | None
    role: str
    secret_sha256: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _row(row: object) -> KeyRow:
    return from_columns(KeyRow, row)


def insert_key(engine: Engine, key: KeyRow) -> None:
    """Store a new key."""
    with translated("storing an API key failed"), engine.begin() as conn:
        conn.execute(API_KEYS.insert().values(**column_values(key)))


def all_keys(engine: Engine) -> list[KeyRow]:
    """Every stored key, oldest first."""
    query = select(API_KEYS).order_by(API_KEYS.c.created_at, API_KEYS.c.id)
    with translated("reading the API keys failed"), engine.connect() as conn:
        return [_row(row) for row in conn.execute(query)]


def key_by_id(engine: Engine, key_id: str) -> KeyRow | None:
    """The stored key with this id, or None."""
    with translated("reading an API key failed"), engine.connect() as conn:
        row = conn.execute(select(API_KEYS).where(API_KEYS.c.id == key_id)).first()
    return None if row is None else _row(row)


def revoke_key_row(engine: Engine, key_id: str, at: datetime) -> bool:
    """Mark a key revoked at `at` (a key revoked before keeps its first time); False when none has this id."""
    with translated("revoking an API key failed"), engine.begin() as conn:
        found = conn.execute(select(API_KEYS.c.revoked_at).where(API_KEYS.c.id == key_id)).first()
        if found is None:
            return False
        if found.revoked_at is None:
            conn.execute(update(API_KEYS).where(API_KEYS.c.id == key_id).values(revoked_at=at))
    return True


def touch_key(engine: Engine, key_id: str, at: datetime) -> None:
    """Record that the key was used at `at`."""
    with translated("recording an API key's use failed"), engine.begin() as conn:
        conn.execute(update(API_KEYS).where(API_KEYS.c.id == key_id).values(last_used_at=at))

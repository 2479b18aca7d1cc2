"""The `origin_records` table: store parsed inventory CSV lines, load them back for the analytics.

`origin_records` is keyed by serial; importing a file again updates the rows it names (the newest
paperwork wins) and leaves the others alone. The fleet state joins these records to devices by
serial as samples are applied, so assembly country and origin basis come from the operator's evidence
where it exists and from the catalog's defaults (marked inferred) elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from collectors.sample import utcnow
from fleetmon.storage.errors import translated
from fleetmon.storage.models import OriginRecord
from fleetmon.supplychain.origin import InventoryRecord, declared_origin
from fleetmon.supplychain.tariffs import DEFAULT_HTS

ORIGINS: Table = OriginRecord.__table__  # type: ignore[attr-defined]
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoredInventory:
    """What an import did: serials seen for the first time and serials whose record was replaced."""

    new: int
    updated: int

    @property
    def written(self) -> int:
        """Rows written in all."""
        return self.new + self.updated


def store_inventory(engine: Engine, records: Sequence[InventoryRecord], source: str) -> int:
    """Upsert records by serial in one transaction; returns how many were written."""
    return upsert_inventory(engine, records, source).written


def upsert_inventory(engine: Engine, records: Sequence[InventoryRecord], source: str) -> StoredInventory:
    """Upsert records by serial in one transaction (idempotent: importing the same file twice leaves
    the same rows); counts which serials were new and which were already stored.

    Raises StorageUnavailableError when the database fails (a missing schema included)."""
    with translated("cannot store inventory"), engine.begin() as conn:
        return _upsert(conn, records, source)


def _upsert(conn: Connection, records: Sequence[InventoryRecord], source: str) -> StoredInventory:
    if not records:
        return StoredInventory(new=0, updated=0)
    now = utcnow()
    rows = [
        {
            "serial": r.serial,
            "assembly_country": r.origin.country if r.origin else None,
            "origin_evidence": r.origin.evidence if r.origin else None,
            "confidence": r.origin.confidence if r.origin else None,
            "customs_value_usd": r.customs_value_usd,
            "entry_date": r.entry_date,
            "hts_code": r.hts_code,
            "liquidation_date": r.liquidation_date,
            "source_file": source[:512],
            "imported_at": now,
        }
        for r in records
    ]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    existing = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        serials = [row["serial"] for row in chunk]
        existing += conn.execute(
            select(func.count()).select_from(ORIGINS).where(ORIGINS.c.serial.in_(serials))
        ).scalar_one()
        stmt = insert(ORIGINS)
        updated = {name: stmt.excluded[name] for name in rows[0] if name != "serial"}
        conn.execute(stmt.on_conflict_do_update(index_elements=["serial"], set_=updated), chunk)
    return StoredInventory(new=len(rows) - existing, updated=existing)


def load_inventory(engine: Engine) -> dict[str, InventoryRecord]:
    """Every stored record as the analytics' InventoryRecord, by serial; StorageUnavailableError."""
    query = select(
        ORIGINS.c.serial,
        ORIGINS.c.assembly_country,
        ORIGINS.c.origin_evidence,
        ORIGINS.c.customs_value_usd,
        ORIGINS.c.entry_date,
        ORIGINS.c.hts_code,
        ORIGINS.c.liquidation_date,
    )
    found: dict[str, InventoryRecord] = {}
    with translated("cannot read the inventory"), engine.connect() as conn:
        for line, row in enumerate(conn.execute(query), start=1):
            origin = (
                declared_origin(row.assembly_country, row.origin_evidence) if row.assembly_country else None
            )
            found[row.serial] = InventoryRecord(
                line=line,
                serial=row.serial,
                model=None,
                origin=origin,
                customs_value_usd=row.customs_value_usd,
                entry_date=row.entry_date,
                hts_code=row.hts_code or DEFAULT_HTS,
                liquidation_date=row.liquidation_date,
            )
    return found

"""Writing samples: one transaction per batch, idempotent on (device, ts), on SQLite and PostgreSQL.

`SampleStore.write` is synchronous and meant for one worker thread (the async `BatchWriter` in
fleetmon.storage.batch runs it there). Per batch it
1. makes sure every site exists (cached name -> id),
2. upserts each device once, with the values of its newest sample in the batch: identity columns keep
   their old value where the new sample has none (an unreachable device does not forget its serial),
   and a replayed older sample never overwrites newer state,
3. inserts the samples with `ON CONFLICT (device_id, ts) DO NOTHING`, so a redelivered or replayed
   sample is absorbed instead of duplicated or failing the batch. SQLite: executemany of prebuilt
   tuples. PostgreSQL: binary COPY into a staging table and one INSERT ... SELECT (fleetmon.storage.pgcopy).

A batch the database refuses for its values (StorageDataError: a NUL in a string, an integer past 64
bits, anything `rejected.is_data_error` names) is split in halves, each written in its own transaction,
down to the single samples at fault; those go to `rejected_samples` with the error, logged once each,
and the batch counts as written. Only then does `write` return, so the ingester acknowledges the bad
messages once they are kept, and the good ones are not held back by them. Costs nothing while batches
are clean: the split runs only after a data error. An outage (StorageUnavailableError) is raised as
before, for the caller to retry or spool; samples already committed by the split are then absorbed by
the (device, ts) key on the retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    case,
    cast,
    column,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import TypeEngine

from collectors.models import manufacturer_of
from collectors.sample import DeviceError, Sample, SecurityFinding, format_ts, utcnow
from fleetmon.storage.compact import boards_json, pools_json
from fleetmon.storage.errors import StorageDataError, StorageError, StorageUnavailableError
from fleetmon.storage.models import Device, SampleRow, Site
from fleetmon.storage.pgcopy import STAGE_COLUMNS, copy_insert
from fleetmon.storage.rejected import Rejection, insert_rejections, is_data_error

log = logging.getLogger(__name__)

SITES: Table = Site.__table__  # type: ignore[attr-defined]
DEVICES: Table = Device.__table__  # type: ignore[attr-defined]
SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]

IDENTITY_COLUMNS = ("make", "manufacturer", "model", "firmware_vendor", "firmware_version", "serial", "mac")
IDENTITY_COLUMNS_ALL = (*IDENTITY_COLUMNS, "hostname")


@dataclass(frozen=True, slots=True)
class SiteSample:
    """A sample and the site whose collector produced it (the site is not part of the wire sample)."""

    site: str
    sample: Sample


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch did: rows inserted, items dead-lettered, and samples already stored (duplicates)."""

    received: int
    inserted: int
    rejected: int = 0

    @property
    def duplicates(self) -> int:
        """Samples of the batch that were already stored."""
        return self.received - self.inserted - self.rejected


WriteItem = SiteSample | Rejection
"""What a batch holds: samples to store, and payloads already known to be bad (kept as dead letters)."""


DeviceKey = tuple[int, str, int]
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


_ERRORS = TypeAdapter(list[DeviceError])
_FANS = TypeAdapter(list[int])
_SECURITY = TypeAdapter(list[SecurityFinding])

# The samples columns in insert order, with the element type PostgreSQL's UNNEST arrays need.
SAMPLE_COLUMNS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("device_id", Integer()),
    ("ts", DateTime(timezone=True)),
    ("state", Text()),
    ("hashrate_ths", Float()),
    ("expected_hashrate_ths", Float()),
    ("temp_max_c", Float()),
    ("temp_avg_c", Float()),
    ("power_w", Float()),
    ("efficiency_jth", Float()),
    ("uptime_s", BigInteger()),
    ("boards", Text()),
    ("fans_rpm", Text()),
    ("pools", Text()),
    ("errors", Text()),
    ("make", Text()),
    ("model", Text()),
    ("firmware_vendor", Text()),
    ("firmware_version", Text()),
    ("serial", Text()),
    ("mac", Text()),
    ("hostname", Text()),
    ("algorithm", Text()),
    ("security", Text()),
    ("locate", Boolean()),
)
SAMPLE_COLUMN_NAMES = tuple(name for name, _ in SAMPLE_COLUMNS)
if tuple(name for name, _ in STAGE_COLUMNS) != SAMPLE_COLUMN_NAMES:
    raise RuntimeError("fleetmon.storage.pgcopy's staging columns differ from SAMPLE_COLUMNS")

DEVICE_COLUMNS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("site_id", Integer()),
    ("ip", Text()),
    ("port", Integer()),
    *((name, Text()) for name in IDENTITY_COLUMNS_ALL),
    ("state", Text()),
    ("first_seen", DateTime(timezone=True)),
    ("last_seen", DateTime(timezone=True)),
)
DEVICE_COLUMN_NAMES = tuple(name for name, _ in DEVICE_COLUMNS)


def sample_values(device_id: int, sample: Sample, ts: Any = None) -> tuple[Any, ...]:
    """The `samples` row for one Sample, in SAMPLE_COLUMNS order, JSON columns already serialised.

    Serialising here with pydantic's compiled serialisers, once, is the cheapest point: the database
    driver then only passes strings through. `ts`: the timestamp in the driver's storage form, when
    the caller has it (SQLite's text), else the sample's datetime.
    """
    return (
        device_id,
        sample.ts if ts is None else ts,
        sample.state.value,
        sample.hashrate_ths,
        sample.expected_hashrate_ths,
        sample.temp_max_c,
        sample.temp_avg_c,
        sample.power_w,
        sample.efficiency_jth,
        sample.uptime_s,
        boards_json(sample.boards),
        _FANS.dump_json(sample.fans_rpm).decode(),
        pools_json(sample.pools),
        _ERRORS.dump_json(sample.errors).decode(),
        sample.make,
        sample.model,
        sample.firmware_vendor,
        sample.firmware_version,
        sample.serial,
        sample.mac,
        sample.hostname,
        sample.algorithm,
        _SECURITY.dump_json(sample.security).decode(),
        sample.locate,
    )


def _identity(sample: Sample) -> tuple[Any, ...]:
    return (
        sample.state,
        sample.make,
        sample.model,
        sample.firmware_vendor,
        sample.firmware_version,
        sample.serial,
        sample.mac,
        sample.hostname,
    )


def _device_values(site_id: int, sample: Sample) -> tuple[Any, ...]:
    return (
        site_id,
        sample.ip,
        sample.port,
        sample.make,
        manufacturer_of(sample.make),
        sample.model,
        sample.firmware_vendor,
        sample.firmware_version,
        sample.serial,
        sample.mac,
        sample.hostname,
        sample.state.value,
        sample.ts,
        sample.ts,
    )


def _recordset(columns: Sequence[tuple[str, TypeEngine[Any]]]) -> Select[Any]:
    """SELECT ... FROM json_to_recordset(:rows) AS r(col type, ...): a whole batch as one JSON parameter.

    PostgreSQL's fastest path short of COPY: one statement, one round trip and one parameter per batch,
    where executemany binds every field of every row and UNNEST's text arrays pay for escaping each
    element in Python.
    """
    typed = [column(name, type_) for name, type_ in columns]
    rows = cast(bindparam("rows", type_=Text()), postgresql.JSON())
    records = func.json_to_recordset(rows).table_valued(*typed).render_derived(name="r", with_types=True)
    return select(*(records.c[name] for name, _ in columns))


def _json_record(names: Sequence[str], row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(names, row, strict=True))
    for name in ("ts", "first_seen", "last_seen"):
        if name in record:
            record[name] = format_ts(record[name])
    return record


def _json_batch(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> str:
    return json.dumps([_json_record(names, row) for row in rows])


class SampleStore:
    """Writes batches of samples; keeps site and device ids cached across batches. Not thread-safe."""

    def __init__(self, engine: Engine, last_seen_resolution: timedelta = LAST_SEEN_RESOLUTION) -> None:
        """`last_seen_resolution`: an unchanged device row is rewritten only this often.

        Rewriting every device row on every poll would double the write load for a timestamp nobody
        needs to the second (the newest sample is found through the samples index); a change of state
        or identity is always written at once.
        """
        self.engine = engine
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database dialect {self._dialect!r}")
        self._sites: dict[str, int] = {}
        self._devices: dict[DeviceKey, int] = {}
        # What this store last wrote to each device row: (identity and state, first_seen, last_seen).
        self._written: dict[DeviceKey, tuple[tuple[Any, ...], datetime, datetime]] = {}
        self._staged: dict[DeviceKey, tuple[tuple[Any, ...], datetime, datetime]] = {}
        self._sqlite_sample_insert = _sqlite_sample_insert_sql()
        self.last_seen_resolution = last_seen_resolution

    def _insert(self, table: Table) -> Any:
        # Both dialect constructs offer on_conflict_do_nothing/do_update and `excluded`.
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def write(self, batch: Sequence[WriteItem]) -> WriteResult:
        """Store a batch (one transaction while its values are good); keep what is refused as dead letters.

        Raises StorageUnavailableError when the database fails for any reason but the batch's values.
        """
        if not batch:
            return WriteResult(0, 0)
        samples = [item for item in batch if isinstance(item, SiteSample)]
        dead = [item for item in batch if isinstance(item, Rejection)]
        inserted = 0
        if samples:
            try:
                inserted = self._write_samples(samples)
            except StorageDataError as exc:
                log.warning(
                    "database refused a batch of %d samples (%s); isolating the bad ones", len(samples), exc
                )
                inserted, refused = self._isolate(samples)
                dead.extend(refused)
        if dead:
            self._keep_rejections(dead)
        return WriteResult(received=len(batch), inserted=inserted, rejected=len(dead))

    def _isolate(self, samples: Sequence[SiteSample]) -> tuple[int, list[Rejection]]:
        """Write the halves apart, recursively: (inserted, rejections of the samples at fault)."""
        middle = len(samples) // 2
        inserted = 0
        refused: list[Rejection] = []
        for half in (samples[:middle], samples[middle:]):
            try:
                inserted += self._write_samples(half)
            except StorageDataError as exc:
                if len(half) == 1:
                    refused.append(_rejection(half[0], exc))
                else:
                    more, bad = self._isolate(half)
                    inserted += more
                    refused.extend(bad)
        return inserted, refused

    def _keep_rejections(self, rejections: Sequence[Rejection]) -> None:
        try:
            with self.engine.begin() as conn:
                insert_rejections(conn, rejections)
        except (OperationalError, DBAPIError) as exc:
            message = f"keeping {len(rejections)} rejected samples failed: {exc}"
            raise StorageUnavailableError(message) from exc
        for item in rejections:
            log.error(
                "rejected %s (site %s): %s; kept in rejected_samples", item.source, item.site, item.error
            )

    def _write_samples(self, batch: Sequence[SiteSample]) -> int:
        """Store samples in one transaction; rows inserted. StorageDataError when their values are refused."""
        self._staged.clear()
        try:
            with self.engine.begin() as conn:
                device_ids = self._prepare(conn, batch)
                inserted = self._insert_samples(conn, device_ids, batch)
        except BaseException as exc:
            # Ids cached inside a rolled-back transaction may not exist; start afresh.
            self._sites.clear()
            self._devices.clear()
            self._written.clear()
            if isinstance(exc, StorageError):
                raise
            if is_data_error(exc):
                raise StorageDataError(f"the values of {len(batch)} samples were refused: {exc}") from exc
            if isinstance(exc, OperationalError | DBAPIError):
                raise StorageUnavailableError(f"writing {len(batch)} samples failed: {exc}") from exc
            raise
        self._written.update(self._staged)
        return inserted

    def _prepare(self, conn: Connection, batch: Sequence[SiteSample]) -> list[int]:
        """Sites and devices written (in `conn`); returns each sample's device id."""
        site_ids = self._site_ids(conn, {item.site for item in batch})
        newest: dict[DeviceKey, Sample] = {}
        for item in batch:
            key = (site_ids[item.site], item.sample.ip, item.sample.port)
            seen = newest.get(key)
            if seen is None or item.sample.ts >= seen.ts:
                newest[key] = item.sample
        self._upsert_devices(conn, newest)
        devices = self._devices
        return [devices[(site_ids[item.site], item.sample.ip, item.sample.port)] for item in batch]

    def _insert_samples(
        self, conn: Connection, device_ids: Sequence[int], batch: Sequence[SiteSample]
    ) -> int:
        pairs = zip(device_ids, batch, strict=True)
        if self._dialect == "postgresql":
            # A generator: the rows are built while the COPY streams them.
            return copy_insert(conn, (sample_values(i, item.sample) for i, item in pairs))
        rows = [sample_values(i, item.sample, _sqlite_ts(item.sample.ts)) for i, item in pairs]
        result = conn.exec_driver_sql(self._sqlite_sample_insert, rows)
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)

    def _site_ids(self, conn: Connection, names: Iterable[str]) -> dict[str, int]:
        missing = [name for name in names if name not in self._sites]
        if missing:
            now = utcnow()
            conn.execute(
                self._insert(SITES).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": name, "created_at": now} for name in missing],
            )
            query = select(SITES.c.id, SITES.c.name).where(SITES.c.name.in_(missing))
            for site_id, name in conn.execute(query):
                self._sites[name] = site_id
        return self._sites

    def _needs_write(self, key: DeviceKey, sample: Sample) -> bool:
        identity = _identity(sample)
        written = self._written.get(key)
        if written is None or key not in self._devices:
            self._staged[key] = (identity, sample.ts, sample.ts)
            return True
        old_identity, first_seen, last_seen = written
        if sample.ts < first_seen:
            self._staged[key] = (identity, sample.ts, max(last_seen, sample.ts))
            return True
        if sample.ts <= last_seen:
            return False  # an older sample (replay): the row already holds newer state
        if identity != old_identity or sample.ts - last_seen >= self.last_seen_resolution:
            self._staged[key] = (identity, first_seen, sample.ts)
            return True
        return False

    def _upsert_devices(self, conn: Connection, newest: dict[DeviceKey, Sample]) -> None:
        values = [
            _device_values(key[0], sample) for key, sample in newest.items() if self._needs_write(key, sample)
        ]
        if not values:
            return
        if self._dialect == "postgresql":
            stmt = postgresql.insert(DEVICES).from_select(DEVICE_COLUMN_NAMES, _recordset(DEVICE_COLUMNS))
            conn.execute(_device_upsert(stmt), {"rows": _json_batch(DEVICE_COLUMN_NAMES, values)})
        else:
            stmt = _device_upsert(sqlite.insert(DEVICES))
            conn.execute(stmt, [dict(zip(DEVICE_COLUMN_NAMES, row, strict=True)) for row in values])
        unknown = [key for key in newest if key not in self._devices]
        # Chunked so the IN list stays well under every driver's bind-parameter limit.
        for start in range(0, len(unknown), 500):
            chunk = unknown[start : start + 500]
            query = select(DEVICES.c.id, DEVICES.c.site_id, DEVICES.c.ip, DEVICES.c.port).where(
                tuple_(DEVICES.c.site_id, DEVICES.c.ip, DEVICES.c.port).in_(chunk)
            )
            for device_id, site_id, ip, port in conn.execute(query):
                self._devices[(site_id, ip, port)] = device_id


def _rejection(item: SiteSample, exc: StorageDataError) -> Rejection:
    """The dead letter of one sample the database refused: its JSON (or repr, if even that fails)."""
    sample = item.sample
    try:
        payload = sample.to_json().encode()
    except (ValueError, PydanticSerializationError):
        payload = repr(sample).encode()
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    error = f"database refused sample of {sample.ip}:{sample.port} at {sample.ts}: {cause}"
    return Rejection(source="writer", payload=payload, error=error, site=item.site)


def _sqlite_ts(ts: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME storage text (`%Y-%m-%d %H:%M:%S.%f`, UTC), 3x faster than strftime."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_sample_insert_sql() -> str:
    """The dialect's INSERT ... ON CONFLICT DO NOTHING, compiled once to `?` SQL in SAMPLE_COLUMNS order.

    Executed through the driver's executemany with prebuilt tuples: SQLAlchemy's per-row parameter
    processing was a third of the SQLite insert time, and every value here is already in storage form
    (ts as SQLAlchemy's DATETIME text, JSON serialised).
    """
    stmt = sqlite.insert(SAMPLES).values({name: bindparam(name) for name in SAMPLE_COLUMN_NAMES})
    stmt = stmt.on_conflict_do_nothing(index_elements=["device_id", "ts"])
    compiled = stmt.compile(dialect=sqlite.dialect(paramstyle="qmark"))
    if tuple(compiled.positiontup or ()) != SAMPLE_COLUMN_NAMES:
        raise RuntimeError("compiled SQLite insert does not bind the columns in SAMPLE_COLUMNS order")
    return str(compiled)


def _device_upsert(stmt: Any) -> Any:
    """ON CONFLICT (site, ip, port) DO UPDATE, letting only a newer sample change state and identity."""
    excluded = stmt.excluded
    newer = excluded.last_seen >= DEVICES.c.last_seen
    updates: dict[str, Any] = {
        column: case((newer, func.coalesce(excluded[column], DEVICES.c[column])), else_=DEVICES.c[column])
        for column in IDENTITY_COLUMNS_ALL
    }
    updates["state"] = case((newer, excluded.state), else_=DEVICES.c.state)
    updates["last_seen"] = case((newer, excluded.last_seen), else_=DEVICES.c.last_seen)
    updates["first_seen"] = case(
        (excluded.first_seen < DEVICES.c.first_seen, excluded.first_seen), else_=DEVICES.c.first_seen
    )
    return stmt.on_conflict_do_update(index_elements=["site_id", "ip", "port"], set_=updates)

"""PostgreSQL's `samples` partitions: one per UTC day, made ahead of time; whole days dropped at retention.

Since migration 0006 `samples` is partitioned by range on `ts`: `samples_pYYYYMMDD` holds that UTC day,
`samples_default` every timestamp no day partition covers. Why days: at 100,000 miners polled once a
minute a day is 144 million rows, a partition small enough to drop in one go and large enough that 30
days of retention are ~34 partitions, which the planner prunes cheaply; hourly partitions would be 720
for the same history, and a "newest sample of a device" probe visits every partition's key index.

A sample is never refused for its time. One from a miner with a wrong clock (a year ahead, or 1970)
lands in `samples_default`; `maintain_partitions` reports how many are there (and logs it). When the
day such a sample belongs to comes within the days made ahead, its rows are moved out of the default
partition into the new day's partition in the same transaction that attaches it (PostgreSQL refuses
to create a partition whose rows sit in the default one). Retention deletes the default partition's
expired rows like any others.

Every change runs under one advisory lock, so the service's housekeeping and a cron job doing the
same work at once wait for each other instead of racing to create the same table. On SQLite, or a
PostgreSQL schema not yet migrated, these functions do nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, Engine, text

from fleetmon.storage.errors import translated

log = logging.getLogger(__name__)

DAYS_AHEAD = 3
DEFAULT_PARTITION = "samples_default"
_DAY_NAME = re.compile(r"^samples_p(\d{8})$")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fleetmon.samples.partitions'))"


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What one maintenance run did: day partitions created, and rows in the default partition."""

    created: list[str] = field(default_factory=list)
    default_rows: int = 0


def day_partition(day: date) -> str:
    """The name of the partition holding the UTC day `day`."""
    return f"samples_p{day:%Y%m%d}"


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _literal(day: date) -> str:
    # An explicit +00 offset: the bound does not depend on the session's TimeZone.
    return _start(day).strftime("'%Y-%m-%d %H:%M:%S+00'")


def is_partitioned(conn: Connection) -> bool:
    """Whether `samples` in the current schema is a partitioned table (PostgreSQL after migration 0006)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'samples' AND n.nspname = current_schema()"
        )
    ).scalar()
    return kind == "p"


def day_partitions(conn: Connection) -> dict[date, str]:
    """The day partitions attached to `samples`, by day (partitions not named by us are left out)."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'samples'::regclass"
        )
    ).scalars()
    days: dict[date, str] = {}
    for name in names:
        match = _DAY_NAME.match(name)
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def _create_day(conn: Connection, day: date) -> None:
    """Create and attach one day's partition, moving that day's rows out of the default partition."""
    name = day_partition(day)
    bounds = f"FROM ({_literal(day)}) TO ({_literal(day + timedelta(days=1))})"
    params = {"start": _start(day), "end": _start(day + timedelta(days=1))}
    stranded = conn.execute(
        text(f"SELECT count(*) FROM {DEFAULT_PARTITION} WHERE ts >= :start AND ts < :end"), params
    ).scalar_one()
    if not stranded:
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF samples FOR VALUES {bounds}"))
        return
    conn.execute(text(f"CREATE TABLE {name} (LIKE samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= :start AND ts < :end RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        params,
    )
    conn.execute(text(f"ALTER TABLE samples ATTACH PARTITION {name} FOR VALUES {bounds}"))
    log.info("partition %s created; %d samples moved into it from %s", name, stranded, DEFAULT_PARTITION)


def maintain_partitions(engine: Engine, now: datetime, days_ahead: int = DAYS_AHEAD) -> PartitionReport:
    """Make sure the partitions of today and the next `days_ahead` UTC days exist; count the default's rows.

    Idempotent, safe to run from several places at once. Logs a warning while the default partition
    holds samples (timestamps outside every day partition: look for a miner with a wrong clock).
    """
    if engine.dialect.name != "postgresql":
        return PartitionReport()
    today = now.astimezone(UTC).date()
    created: list[str] = []
    with translated("maintaining the samples partitions"), engine.begin() as conn:
        if not is_partitioned(conn):
            return PartitionReport()
        conn.execute(text(_LOCK))
        existing = day_partitions(conn)
        for offset in range(days_ahead + 1):
            day = today + timedelta(days=offset)
            if day not in existing:
                _create_day(conn, day)
                created.append(day_partition(day))
        stray = int(conn.execute(text(f"SELECT count(*) FROM {DEFAULT_PARTITION}")).scalar_one())
    if created:
        log.info("created samples partitions %s", ", ".join(created))
    if stray:
        log.warning(
            "%d samples are in %s: their timestamps fall outside the daily partitions (a miner's clock?)",
            stray,
            DEFAULT_PARTITION,
        )
    return PartitionReport(created=created, default_rows=stray)


def drop_days_before(engine: Engine, cutoff: datetime) -> tuple[list[str], int]:
    """Drop every day partition that ends at or before `cutoff`: (names dropped, rows they held).

    The row count is PostgreSQL's statistics estimate (`reltuples`, kept by autovacuum and ANALYZE),
    counted exactly only for a partition never analysed: counting 144 million rows to report them
    would cost a good part of what dropping saves.
    """
    dropped: list[str] = []
    rows = 0
    with translated("dropping expired samples partitions"), engine.begin() as conn:
        if not is_partitioned(conn):
            return [], 0
        conn.execute(text(_LOCK))
        for day, name in sorted(day_partitions(conn).items()):
            if _start(day + timedelta(days=1)) > cutoff:
                continue
            estimate = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = CAST(:name AS regclass)"), {"name": name}
            ).scalar_one()
            if estimate is None or estimate < 0:
                estimate = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
            rows += int(estimate)
    return dropped, rows

"""Retention: raw samples older than N days are removed; the rollups are kept.

Before removing, the hours about to go are rolled up (idempotently), so history survives in
`rollup_device_hourly` and `rollup_group_daily` even when the rollup job missed a run.

How they are removed depends on the table:
- PostgreSQL, partitioned by day (migration 0005): every day partition that ends at or before the
  cutoff is dropped whole (no row is read, no WAL per row, no dead tuples to vacuum). The one day
  partition the cutoff falls in, and the default partition (wrong clocks), have their expired rows
  deleted: at most a day's rows, and with a daily job only the hours between midnight and the cutoff,
  so the cutoff stays exact to the hour as before. Partitions ahead are made first (the same job).
- SQLite, or an unpartitioned table: one DELETE.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, Table, delete, func, select

from fleetmon.storage.errors import translated
from fleetmon.storage.models import SampleRow
from fleetmon.storage.partitions import drop_days_before, maintain_partitions
from fleetmon.storage.rollups import floor_hour, rollup_daily, rollup_hourly

log = logging.getLogger(__name__)

SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]


def enforce_retention(engine: Engine, keep_days: float, now: datetime) -> int:
    """Remove raw samples older than `keep_days` before `now`, after rolling them up; returns rows removed.

    Rows of dropped partitions are counted from PostgreSQL's statistics (see partitions.drop_days_before).
    """
    if keep_days <= 0:
        raise ValueError("keep_days must be positive")
    maintain_partitions(engine, now)
    # Whole hours only, so an hour is never half deleted and later re-rolled from the remaining half.
    cutoff = floor_hour(now - timedelta(days=keep_days))
    with translated("finding expired samples"), engine.connect() as conn:
        oldest = conn.execute(select(func.min(SAMPLES.c.ts)).where(SAMPLES.c.ts < cutoff)).scalar()
    if oldest is None:
        return 0
    rollup_hourly(engine, oldest, cutoff)
    rollup_daily(engine, oldest.date(), cutoff.date())
    dropped, dropped_rows = drop_days_before(engine, cutoff)
    with translated("deleting expired samples"), engine.begin() as conn:
        deleted = int(conn.execute(delete(SAMPLES).where(SAMPLES.c.ts < cutoff)).rowcount)
    if dropped:
        log.info("retention: dropped partitions %s (~%d samples)", ", ".join(dropped), dropped_rows)
    log.info("retention: deleted %d samples older than %s", deleted, cutoff.isoformat())
    return deleted + dropped_rows

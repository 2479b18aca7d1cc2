"""Retention: raw samples older than N days are deleted; the rollups are kept.

Before deleting, the hours about to go are rolled up (idempotently), so history survives in
`rollup_device_hourly` and `rollup_group_daily` even when the rollup job missed a run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, Table, delete, func, select

from fleetmon.storage.models import SampleRow
from fleetmon.storage.rollups import floor_hour, rollup_daily, rollup_hourly

log = logging.getLogger(__name__)

SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]


def enforce_retention(engine: Engine, keep_days: float, now: datetime) -> int:
    """Delete raw samples older than `keep_days` before `now`, after rolling them up; returns rows deleted."""
    if keep_days <= 0:
        raise ValueError("keep_days must be positive")
    # Whole hours only, so an hour is never half deleted and later re-rolled from the remaining half.
    cutoff = floor_hour(now - timedelta(days=keep_days))
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(SAMPLES.c.ts)).where(SAMPLES.c.ts < cutoff)).scalar()
    if oldest is None:
        return 0
    rollup_hourly(engine, oldest, cutoff)
    rollup_daily(engine, oldest.date(), cutoff.date())
    with engine.begin() as conn:
        deleted = conn.execute(delete(SAMPLES).where(SAMPLES.c.ts < cutoff)).rowcount
    log.info("retention: deleted %d samples older than %s", deleted, cutoff.isoformat())
    return int(deleted)

"""PostgreSQL: `samples` partitioned by day on `ts`, with a DEFAULT partition, and narrower rows.

What changes, PostgreSQL only (SQLite keeps its table; its JSON columns were text already):
- `samples` becomes a table partitioned by range on `ts`, one partition per UTC day
  (`samples_pYYYYMMDD`), plus `samples_default` for timestamps outside them (a miner with a wrong
  clock): such a sample is stored, never refused. The existing rows are moved; partitions are made for
  every day they cover and for today and three days ahead. From then on
  `fleetmon.storage.partitions.maintain_partitions` creates the days ahead and retention drops whole
  days instead of deleting rows.
- boards, fans, pools and errors become `json` instead of `jsonb`: json keeps the text the writer sent
  (compact, and parsed back to the same floats), where jsonb's binary form of the same three boards was
  ~500 bytes of the ~920-byte row. json accepts `\u0000` in a string, jsonb does not, and no Sample
  can hold one: a CHECK casts the two columns with strings (pools, errors) to jsonb, so such a value
  is still refused (SQLSTATE 22P05, a data error the writer dead-letters) instead of stored unreadable.
  New rows hold boards and pools as positional arrays
  (fleetmon.storage.compact); moved rows keep their object form, which readers accept too.
- The 8-byte columns come first and `device_id` after them, so no alignment padding is spent between
  `device_id` and `ts`.

The primary key stays (device_id, ts): it contains the partition key, as a partitioned table's unique
constraints must. The BRIN index on ts is kept (one per partition).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 22:10:00
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DAYS_AHEAD = 3

_COLUMNS = """
    ts timestamptz NOT NULL,
    hashrate_ths double precision,
    expected_hashrate_ths double precision,
    temp_max_c double precision,
    temp_avg_c double precision,
    power_w double precision,
    efficiency_jth double precision,
    uptime_s bigint,
    device_id integer NOT NULL REFERENCES devices (id),
    state varchar(16) NOT NULL,
    boards json NOT NULL,
    fans_rpm json NOT NULL,
    pools json NOT NULL,
    errors json NOT NULL,
    make varchar(64),
    model varchar(128),
    firmware_vendor varchar(64),
    firmware_version varchar(128),
    serial varchar(128),
    mac varchar(32),
    hostname varchar(255),
    algorithm varchar(32),
    CONSTRAINT samples_pkey PRIMARY KEY (device_id, ts),
    CONSTRAINT samples_text_storable CHECK (pools::jsonb IS NOT NULL AND errors::jsonb IS NOT NULL)
"""
_NAMES = (
    "ts, hashrate_ths, expected_hashrate_ths, temp_max_c, temp_avg_c, power_w, efficiency_jth, uptime_s, "
    "device_id, state, boards, fans_rpm, pools, errors, make, model, firmware_vendor, firmware_version, "
    "serial, mac, hostname, algorithm"
)
_FROM_OLD = _NAMES.replace(
    "boards, fans_rpm, pools, errors", "boards::json, fans_rpm::json, pools::json, errors::json"
)


def _bound(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("'%Y-%m-%d %H:%M:%S+00'")


def _create_day(day: date) -> None:
    name = f"samples_p{day:%Y%m%d}"
    op.execute(
        f"CREATE TABLE {name} PARTITION OF samples "
        f"FOR VALUES FROM ({_bound(day)}) TO ({_bound(day + timedelta(days=1))})"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    old_first, old_last = bind.execute(
        sa.text("SELECT min(ts) AT TIME ZONE 'UTC', max(ts) AT TIME ZONE 'UTC' FROM samples")
    ).one()
    op.execute("ALTER TABLE samples RENAME TO samples_unpartitioned")
    op.execute(
        "ALTER TABLE samples_unpartitioned RENAME CONSTRAINT samples_pkey TO samples_unpartitioned_pkey"
    )
    op.execute("ALTER INDEX ix_samples_ts RENAME TO ix_samples_unpartitioned_ts")
    op.execute(f"CREATE TABLE samples ({_COLUMNS}) PARTITION BY RANGE (ts)")
    op.execute("CREATE INDEX ix_samples_ts ON samples USING brin (ts)")
    op.execute("CREATE TABLE samples_default PARTITION OF samples DEFAULT")
    today = datetime.now(UTC).date()
    first = min(old_first.date(), today) if old_first is not None else today
    last = max(old_last.date(), today + timedelta(days=DAYS_AHEAD)) if old_last is not None else today
    last = max(last, today + timedelta(days=DAYS_AHEAD))
    day = first
    while day <= last:
        _create_day(day)
        day += timedelta(days=1)
    op.execute(f"INSERT INTO samples ({_NAMES}) SELECT {_FROM_OLD} FROM samples_unpartitioned")
    op.execute("DROP TABLE samples_unpartitioned")


def _objects(column: str, fields: tuple[str, ...]) -> str:
    """SQL turning a json column of positional arrays (or objects) back into jsonb objects."""
    pairs = ", ".join(f"'{name}', e.item -> {i}" for i, name in enumerate(fields))
    return (
        f"(SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(e.item) = 'array' "
        f"THEN jsonb_build_object({pairs}) ELSE e.item END ORDER BY e.n), '[]'::jsonb) "
        f"FROM jsonb_array_elements({column}::jsonb) WITH ORDINALITY AS e(item, n))"
    )


_BOARD_FIELDS = ("index", "hashrate_ths", "temp_c", "chip_temp_c", "chips", "expected_chips")
_POOL_FIELDS = ("url", "user", "status", "accepted", "rejected", "active")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE samples RENAME TO samples_partitioned")
    op.execute("ALTER TABLE samples_partitioned RENAME CONSTRAINT samples_pkey TO samples_partitioned_pkey")
    op.execute("ALTER INDEX ix_samples_ts RENAME TO ix_samples_partitioned_ts")
    op.execute("CREATE TABLE samples (" + _COLUMNS.replace(" json NOT NULL", " jsonb NOT NULL") + ")")
    op.execute("CREATE INDEX ix_samples_ts ON samples USING brin (ts)")
    boards, pools = _objects("boards", _BOARD_FIELDS), _objects("pools", _POOL_FIELDS)
    select = _NAMES.replace(
        "boards, fans_rpm, pools, errors", f"{boards}, fans_rpm::jsonb, {pools}, errors::jsonb"
    )
    op.execute(f"INSERT INTO samples ({_NAMES}) SELECT {select} FROM samples_partitioned")
    op.execute("DROP TABLE samples_partitioned CASCADE")

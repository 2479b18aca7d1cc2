"""Retention at scale on PostgreSQL: dropping day partitions against DELETE, and bytes per stored sample.

Builds `--days` (30) days of `--devices` (100) devices at one sample a minute twice, in two private
schemas of the real PostgreSQL: the schema before issue 16 (migration 0004: one `samples` table, jsonb
objects) and the current one (day partitions, compact json). Rows are made in SQL with
generate_series, shaped like a stock Antminer S19 Pro's samples (3 boards, 4 fans, 1 pool, full
identity; readings with two decimals, as the firmware reports them). Then removes the oldest
`--expire-days` (7) days: the current schema by `partitions.drop_days_before` (the function
`fleetmon db retention` runs), the old one by the DELETE it ran before, followed by VACUUM.

Prints per schema: rows, bytes per sample (heap, TOAST and indexes of every partition over the rows),
and for the retention: seconds, WAL bytes written (`pg_current_wal_lsn` before and after: server-wide,
so other sessions' writes are included on a shared machine) and the table size after.

    .venv/bin/python bench/bench_retention.py [--devices 100] [--days 30] [--expire-days 7] [--keep]

N=10,000 devices is 432 million rows per schema, more than this machine builds in minutes: run a
small N and extrapolate (the drop's cost does not grow with the rows; the DELETE's grows linearly).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.partitions import drop_days_before, maintain_partitions

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_IDENTITY = (
    "'Antminer', 'Antminer S19 Pro', 'bitmain', 'Thu Dec 14 2023', 'JYZZ' || lpad(d::text, 8, '0'), "
    "'02:00:00:00:' || lpad(to_hex(d / 256 % 256), 2, '0') || ':' || lpad(to_hex(d % 256), 2, '0'), "
    "'miner-' || d, 'SHA-256'"
)
# One reading per (device d, minute t): r is a per-row random value in [0, 1).
_SCALARS = (
    "round((100 + 10 * r)::numeric, 2)::float8, 110.0, round((70 + 8 * r)::numeric, 2)::float8, "
    "round((62 + 6 * r)::numeric, 2)::float8, round((3200 + 100 * r)::numeric, 1)::float8, "
    "round((29 + r)::numeric, 2)::float8, (extract(epoch FROM t - day0))::bigint + 86400 + d"
)
_BOARD = (
    "round((33 + 3 * r + {i})::numeric, 2), round((58 + 5 * r)::numeric, 2), round((73 + 5 * r)::numeric, 2)"
)
_NEW_BOARDS = (
    "format('["
    + ",".join(f"[{i},%s,%s,%s,114,114]" for i in range(3))
    + "]', "
    + ", ".join(_BOARD.format(i=i) for i in range(3))
    + ")::json"
)
_OLD_BOARDS = (
    "format('["
    + ",".join(
        f'{{"index":{i},"hashrate_ths":%s,"temp_c":%s,"chip_temp_c":%s,"chips":114,"expected_chips":114}}'
        for i in range(3)
    )
    + "]', "
    + ", ".join(_BOARD.format(i=i) for i in range(3))
    + ")::jsonb"
)
_FANS = (
    "format('[%s,%s,%s,%s]', 5100 + (60 * r)::int, 5000 + (60 * r)::int, 5200 + (60 * r)::int, 5050 + d % 50)"
)
_ACCEPTED = "(extract(epoch FROM t - day0) / 20)::bigint"
_NEW_POOLS = (
    'format(\'[["stratum+tcp://btc.example.net:3333","farm.w%s","Alive",%s,%s,true]]\', '
    f"d, {_ACCEPTED}, {_ACCEPTED} / 300)::json"
)
_OLD_POOLS = (
    'format(\'[{"url":"stratum+tcp://btc.example.net:3333","user":"farm.w%s","status":"Alive",'
    f'"accepted":%s,"rejected":%s,"active":true}}]\', d, {_ACCEPTED}, {_ACCEPTED} / 300)::jsonb'
)
_COLUMNS = (
    "device_id, ts, state, hashrate_ths, expected_hashrate_ths, temp_max_c, temp_avg_c, power_w, "
    "efficiency_jth, uptime_s, boards, fans_rpm, pools, errors, make, model, firmware_vendor, "
    "firmware_version, serial, mac, hostname, algorithm"
)


def _insert_day(old: bool) -> str:
    boards, pools = (_OLD_BOARDS, _OLD_POOLS) if old else (_NEW_BOARDS, _NEW_POOLS)
    # A colon before a word would be a bind parameter to text(): escape the JSON's ("index":0, :3333).
    boards, pools = (re.sub(r"(?<=[^:]):(?=\w)", r"\\:", part) for part in (boards, pools))
    errors = "'[]'::jsonb" if old else "'[]'::json"
    fans = _FANS + ("::jsonb" if old else "::json")
    return (
        f"INSERT INTO samples ({_COLUMNS}) "
        f"SELECT d, t, 'mining', {_SCALARS}, {boards}, {fans}, {pools}, {errors}, {_IDENTITY} "
        "FROM (SELECT d, t, random() AS r, CAST(:day0 AS timestamptz) AS day0 "
        "FROM generate_series(CAST(:start AS timestamptz), "
        "CAST(:start AS timestamptz) + interval '1 day' - interval '1 minute', interval '1 minute') AS t "
        "CROSS JOIN LATERAL generate_series(1, :devices) AS d"
        ") AS g"
    )
    # Rows arrive minute by minute, every device within each minute, as a collector stores its cycles:
    # the LATERAL join makes the minutes the outer loop, so no sort of the day's rows is needed (an
    # ORDER BY t, d spilled a 10,000-device day, ~14 million wide rows, to disk and took most of the time).


def make_schema(revision: str) -> tuple[str, Engine]:
    schema = f"fm_bench_ret_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = make_engine(f"{POSTGRES}?options=-csearch_path%3D{schema}")
    upgrade(engine, revision)
    return schema, engine


def fill(engine: Engine, devices: int, first: datetime, days: int, old: bool) -> float:
    """Devices and `days` days of samples; returns seconds spent inserting."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (name, created_at) VALUES ('bench', now())"))
        conn.execute(
            text(
                "INSERT INTO devices (id, site_id, ip, port, state, first_seen, last_seen) "
                "SELECT d, 1, '10.0.' || d / 256 || '.' || d % 256, 4028, 'mining', now(), now() "
                "FROM generate_series(1, :n) AS d"
            ),
            {"n": devices},
        )
    statement = text(_insert_day(old))
    for day in range(days):
        start = first + timedelta(days=day)
        with engine.begin() as conn:
            conn.execute(statement, {"day0": first, "start": start, "devices": devices})
        print(f"  {'old' if old else 'new'} schema: day {day + 1}/{days} stored", end="\r", flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE samples"))
    print()
    return time.perf_counter() - started


def _sizes(conn: Connection) -> tuple[int, int]:
    """(rows, bytes of samples and every partition, heap + TOAST + indexes)."""
    rows = int(conn.execute(text("SELECT count(*) FROM samples")).scalar_one())
    size = conn.execute(
        text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.oid = 'samples'::regclass OR c.oid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'samples'::regclass)"
        )
    ).scalar_one()
    return rows, int(size)


def sizes(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return _sizes(conn)


def wal_lsn(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())


def wal_since(engine: Engine, lsn: str) -> int:
    with engine.connect() as conn:
        diff = conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :lsn)"), {"lsn": lsn})
        return int(diff.scalar_one())


def timed_removal(engine: Engine, cutoff: datetime, drop: bool) -> tuple[float, int]:
    """(seconds, WAL bytes) of removing the samples older than `cutoff`."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))
    lsn = wal_lsn(engine)
    started = time.perf_counter()
    if drop:
        drop_days_before(engine, cutoff)
    else:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM samples WHERE ts < :cutoff"), {"cutoff": cutoff})
    return time.perf_counter() - started, wal_since(engine, lsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--expire-days", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the two schemas afterwards")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    rows_expected = args.devices * args.days * 1440
    print(
        f"{args.devices} devices x {args.days} days x 1,440 samples/day = {rows_expected:,} rows per schema"
    )
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=args.days - 1)
    cutoff = first + timedelta(days=args.expire_days)

    old_schema, old = make_schema("0004")
    new_schema, new = make_schema("head")
    try:
        maintain_partitions(new, first, days_ahead=args.days + 3)
        figures: dict[str, dict[str, float]] = {}
        for name, engine, is_old in (("old", old, True), ("new", new, False)):
            seconds = fill(engine, args.devices, first, args.days, is_old)
            rows, size = sizes(engine)
            figures[name] = {"rows": rows, "size": size, "fill_s": seconds}
            print(
                f"{name} schema ({'0004, one table, jsonb' if is_old else 'head, day partitions, json'}): "
                f"{rows:,} rows, {size / 2**20:,.0f} MiB, {size / rows:.0f} B/sample (indexes included); "
                f"built in {seconds:.0f} s"
            )
        expired = args.devices * args.expire_days * 1440
        print(f"\nretention of the oldest {args.expire_days} days ({expired:,} rows):")
        seconds, wal = timed_removal(new, cutoff, drop=True)
        rows, size = sizes(new)
        print(
            f"  drop {args.expire_days} day partitions (new schema): {seconds:.2f} s, "
            f"WAL {wal / 2**20:,.2f} MiB, "
            f"table after {size / 2**20:,.0f} MiB ({rows:,} rows)"
        )
        seconds, wal = timed_removal(old, cutoff, drop=False)
        rows, size = sizes(old)
        print(
            f"  DELETE (old schema): {seconds:.2f} s, WAL {wal / 2**20:,.2f} MiB, "
            f"table after {size / 2**20:,.0f} MiB ({rows:,} rows)"
        )
        lsn = wal_lsn(old)
        started = time.perf_counter()
        with old.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM samples"))
        vacuum_s = time.perf_counter() - started
        _, size = sizes(old)
        print(
            f"  then VACUUM (old schema): {vacuum_s:.2f} s, WAL {wal_since(old, lsn) / 2**20:,.2f} MiB, "
            f"table after {size / 2**20:,.0f} MiB (the freed space is reused, not returned)"
        )
        per_device_day = figures["new"]["size"] / (args.devices * args.days)
        print(
            f"\nextrapolated (linear in devices): 10,000 devices store "
            f"{per_device_day * 10_000 / 2**30:.2f} GiB/day new, "
            f"{figures['old']['size'] / (args.devices * args.days) * 10_000 / 2**30:.2f} GiB/day old"
        )
    finally:
        if not args.keep:
            admin = make_engine(POSTGRES)
            with admin.begin() as conn:
                for schema in (old_schema, new_schema):
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())

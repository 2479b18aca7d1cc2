"""`fleetmon db ...`: schema upgrades, export of stored samples, dead letters, rollups and retention."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from collectors.sample import utcnow
from fleetmon.storage.engine import make_engine, resolve_url, upgrade
from fleetmon.storage.errors import StorageError
from fleetmon.storage.export import iter_samples
from fleetmon.storage.partitions import DEFAULT_PARTITION, maintain_partitions
from fleetmon.storage.rejected import StoredRejection, iter_rejections
from fleetmon.storage.retention import enforce_retention
from fleetmon.storage.rollups import run_rollups


def _add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL (default: SQLite file in FLEETMON_DATA_DIR or ~/.local/share/fleetmon); "
        "PostgreSQL as postgresql+psycopg://user@host/db",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `db` command group."""
    db = subparsers.add_parser("db", help="database schema, export, rollups and retention")
    sub = db.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)

    p = sub.add_parser("upgrade", help="create or migrate the schema to the current version")
    _add_db_option(p)
    p.set_defaults(handler=run_upgrade)

    p = sub.add_parser("export-samples", help="print every stored sample as JSON lines")
    _add_db_option(p)
    p.add_argument("--site", help="only this site's samples")
    p.set_defaults(handler=run_export)

    p = sub.add_parser(
        "rejected", help="list the samples and payloads the database refused (dead letters), newest first"
    )
    _add_db_option(p)
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100; 0: all)")
    p.set_defaults(handler=run_rejected)

    p = sub.add_parser("rollup", help="recompute the hourly and daily rollups of the recent past")
    _add_db_option(p)
    p.add_argument("--hours", type=float, default=2.0, help="how far back to recompute (default 2)")
    p.set_defaults(handler=run_rollup)

    p = sub.add_parser(
        "retention",
        help="remove raw samples older than N days (rollups are kept); on PostgreSQL also make the "
        "day partitions ahead",
    )
    _add_db_option(p)
    p.add_argument("--days", type=float, required=True, help="days of raw samples to keep")
    p.set_defaults(handler=run_retention)


def _fail(message: str) -> int:
    print(f"fleetmon db: {message}", file=sys.stderr)
    return 1


def run_upgrade(args: argparse.Namespace) -> int:
    """Bring the schema to the newest migration."""
    engine = make_engine(args.db)
    try:
        upgrade(engine)
    except StorageError as exc:
        return _fail(str(exc))
    print(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Print stored samples as JSON lines, exactly as the collector produced them."""
    engine = make_engine(resolve_url(args.db))
    out = sys.stdout
    for sample in iter_samples(engine, site=args.site):
        out.write(sample.to_json())
        out.write("\n")
    out.flush()
    return 0


def _rejection_json(item: StoredRejection) -> str:
    # The payload as text when it is UTF-8 (a NUL shows as \u0000 in the JSON); else its bytes escaped.
    payload = item.payload.decode("utf-8", "backslashreplace")
    record = {
        "id": item.id,
        "received_at": item.received_at.isoformat(),
        "source": item.source,
        "site": item.site,
        "error": item.error,
        "payload": payload,
    }
    return json.dumps(record, ensure_ascii=False)


def run_rejected(args: argparse.Namespace) -> int:
    """Print the dead letters as JSON lines: when, from where, why, and the payload as it arrived."""
    engine = make_engine(args.db)
    out = sys.stdout
    try:
        for item in iter_rejections(engine, limit=args.limit or None):
            out.write(_rejection_json(item))
            out.write("\n")
    except StorageError as exc:
        return _fail(str(exc))
    out.flush()
    return 0


def run_rollup(args: argparse.Namespace) -> int:
    """Recompute rollups over the last --hours."""
    hourly, daily = run_rollups(make_engine(args.db), utcnow(), lookback=timedelta(hours=args.hours))
    print(f"{hourly} hourly device rows, {daily} daily group rows")
    return 0


def run_retention(args: argparse.Namespace) -> int:
    """Remove raw samples older than --days (PostgreSQL: drop whole day partitions, make the next ones)."""
    engine = make_engine(args.db)
    try:
        deleted = enforce_retention(engine, keep_days=args.days, now=utcnow())
        report = maintain_partitions(engine, utcnow())
    except StorageError as exc:
        return _fail(str(exc))
    print(f"{deleted} samples deleted")
    if report.default_rows:
        print(f"{report.default_rows} samples in {DEFAULT_PARTITION} (timestamps outside the day partitions)")
    return 0

"""`fleetmon tariffs rate|fetch-hts`, `fleetmon inventory import` and `fleetmon report supply-chain`
(`report security` lives in fleetmon.cli.security).

`tariffs fetch-hts` asks the USITC HTS REST API for a code's MFN rate, compares it with the loaded
schedule and, with `--out`, writes a candidate layer file for procurement to review (usitc.py).

`inventory import` stores the good lines of an inventory CSV in the database (upsert by serial, the
service's own function) and prints every rejected line. `report supply-chain` computes from the
database: the latest sample of every device joined with the stored inventory, through the same
fleet state the service uses, so its figures are the API's. With `--units FILE` it works
offline on a units JSON file (a simulator manifest, an export) joined with `--inventory CSV`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from fleetmon.cli.security import add_report as add_security_report
from fleetmon.supplychain.errors import SupplyChainError
from fleetmon.supplychain.origin import InventoryParse, InventoryRecord, parse_inventory_csv
from fleetmon.supplychain.tariffs import (
    DEFAULT_HTS,
    Schedule,
    apply_schedule_text,
    load_schedules,
    rate,
    sources_end_text,
)

if TYPE_CHECKING:
    from fleetmon.storage.engine import Engine
    from fleetmon.storage.inventory import StoredInventory

# The database, the service and HTTP are imported by the handlers that use them: `tariffs rate` answers
# without loading SQLAlchemy, FastAPI or httpx (tests/test_cli_startup.py, bench/bench_startup.py).

# Where imported inventory records go: takes the valid records and the source name, returns what was
# stored. None = validate only (--dry-run).
InventorySink = Callable[[Sequence[InventoryRecord], str], "StoredInventory"]
DB_HELP = "database URL (default: the SQLite file in FLEETMON_DATA_DIR); postgresql://user@host/db"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the tariffs, inventory and report command groups."""
    tariffs = subparsers.add_parser("tariffs", help="US import duty on mining hardware")
    tsub = tariffs.add_subparsers(dest="tariffs_command", metavar="ACTION", required=True)
    rate_cmd = tsub.add_parser("rate", help="duty rate for an origin, HTS code and entry date")
    rate_cmd.add_argument("--origin", required=True, help="country of origin, ISO alpha-2 (CN, MY, US, ...)")
    rate_cmd.add_argument("--hts", default=DEFAULT_HTS, help=f"HTS code (default {DEFAULT_HTS})")
    rate_cmd.add_argument("--date", required=True, type=_iso_date, help="entry date YYYY-MM-DD")
    rate_cmd.add_argument("--json", action="store_true", help="print JSON (total_rate is a fraction)")
    rate_cmd.add_argument(
        "--scenario",
        metavar="NAME|FILE",
        default=None,
        help="apply a what-if scenario (not in force): a shipped one by name "
        "(section-301-excess-capacity) or a scenario file",
    )
    _schedule_option(rate_cmd)
    rate_cmd.set_defaults(handler=handle_tariffs_rate)
    fetch = tsub.add_parser(
        "fetch-hts", help="MFN rate of an HTS code from the USITC HTS REST API (optional candidate layer)"
    )
    fetch.add_argument("code", help="HTS code, 8 or 10 digits (8543.70.9960)")
    fetch.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a candidate MFN layer (TOML, mode add) for review",
    )
    fetch.add_argument(
        "--effective-from",
        type=_iso_date,
        default=None,
        metavar="DATE",
        help="first entry date of the candidate layer (default: the fetch date)",
    )
    fetch.add_argument(
        "--timeout", type=float, default=15.0, metavar="S", help="seconds per connect/read (default 15)"
    )
    _schedule_option(fetch)
    fetch.set_defaults(handler=handle_tariffs_fetch_hts)

    inventory = subparsers.add_parser(
        "inventory", help="unit inventory records (origin evidence, customs values)"
    )
    isub = inventory.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)
    imp = isub.add_parser("import", help="store an inventory CSV's good lines, print each rejected line")
    imp.add_argument("file", type=Path, help="CSV: serial,model,assembly_country,origin_evidence,...")
    imp.add_argument("--db", metavar="URL", help=DB_HELP)
    imp.add_argument("--dry-run", action="store_true", help="validate only, store nothing")
    imp.set_defaults(handler=handle_inventory_import)

    report = subparsers.add_parser("report", help="fleet reports")
    rsub = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    sc = rsub.add_parser("supply-chain", help="hash-share, China dependency and tariff exposure")
    sc.add_argument("--as-of", type=_iso_date, default=None, help="date for tariff exposure (default today)")
    sc.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sc.add_argument("--db", metavar="URL", help=DB_HELP + " (the default source of the fleet)")
    sc.add_argument(
        "--units", type=Path, default=None, help="offline: a units JSON file (list of unit records) instead"
    )
    sc.add_argument(
        "--inventory", type=Path, default=None, help="with --units: inventory CSV joined by serial"
    )
    _schedule_option(sc)
    sc.set_defaults(handler=handle_report_supply_chain)
    add_security_report(rsub, DB_HELP + " (the fleet's latest stored samples)")


def _schedule_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        type=Path,
        action="append",
        default=[],
        help="tariff schedule TOML applied over the shipped one (mode add) or instead of it (mode replace); "
        "repeatable",
    )


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _schedule(args: argparse.Namespace) -> Schedule:
    paths: list[Path] = args.schedule
    return load_schedules(paths)


def handle_tariffs_rate(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the duty at (origin, HTS, date) with its layers and sources."""
    try:
        schedule = _schedule(args)
        if args.scenario:
            from fleetmon.supplychain.scenarios import apply_to_schedule, load_scenario

            scenario = load_scenario(args.scenario)
            schedule = apply_to_schedule(schedule, scenario)
        result = rate(schedule, args.origin, args.hts, args.date)
    except (SupplyChainError, ValueError) as exc:
        print(f"fleetmon tariffs rate: {exc}", file=sys.stderr)
        return 2
    if args.scenario:
        what_if = f"what-if scenario {scenario.name!r}, NOT in force: {scenario.description}"
        result = replace(result, notes=(*result.notes, what_if))
    if args.json:
        json.dump(result.to_json(), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    out.write(
        f"{result.origin} {result.hts} entered {result.on}: {float(result.total_rate) * 100:.1f}% "
        f"({sources_end_text(result.sources_end)})\n"
    )
    if result.warning:
        out.write(f"  WARNING: {result.warning}\n")
    for lay in result.layers:
        flags = f" [{','.join(sorted(lay.flags))}]" if lay.flags else ""
        out.write(f"  {float(lay.rate) * 100:>6.1f}%  {lay.name}{flags}\n           source: {lay.source}\n")
    for note in result.notes:
        out.write(f"  note: {note}\n")
    return 0


def handle_tariffs_fetch_hts(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the MFN rate USITC publishes for a code; with --out, write a candidate layer for review."""
    import asyncio

    import httpx

    from fleetmon.supplychain.usitc import candidate_layer_toml, fetch_mfn, superseded_mfn_layer

    try:
        if args.timeout <= 0:
            raise ValueError(f"--timeout must be positive, not {args.timeout}")
        schedule = _schedule(args)
        found = asyncio.run(fetch_mfn(args.code, timeout=httpx.Timeout(args.timeout)))
    except (SupplyChainError, ValueError) as exc:
        print(f"fleetmon tariffs fetch-hts: {exc}", file=sys.stderr)
        return 2
    start = args.effective_from or found.fetched_on
    current = superseded_mfn_layer(schedule, found.htsno, start)
    out.write(
        f"{found.hts_code}: MFN (column 1 general) {found.general_text} = {found.rate} "
        f"from line {found.htsno} {found.description!r}\n"
        f"  special: {found.special_text or '-'}\n  column 2: {found.other_text or '-'}\n"
        f"  source: {found.source_url} (fetched {found.fetched_on})\n"
    )
    if current is None:
        out.write(f"  schedule {schedule.name!r} has no MFN layer for {found.htsno} on {start}\n")
    else:
        verdict = "same" if current.rate == found.rate else "DIFFERENT: review"
        out.write(f"  schedule layer {current.id!r} on {start}: {current.rate} ({verdict})\n")
    if args.out is None:
        return 0
    try:
        _write_candidate(args.out, candidate_layer_toml(found, start, supersedes=current), schedule)
    except (SupplyChainError, ValueError, OSError) as exc:
        print(f"fleetmon tariffs fetch-hts: candidate not written: {exc}", file=sys.stderr)
        return 2
    out.write(
        f"wrote candidate layer (from {start}, flagged U) to {args.out}; "
        f"after review: fleetmon tariffs rate --schedule {args.out} ...\n"
    )
    return 0


def _write_candidate(path: Path, text: str, schedule: Schedule) -> None:
    """Write the candidate only if it loads over `schedule`, and never into the shipped schedule's folder."""
    shipped_dir = Path(str(resources.files("fleetmon.supplychain") / "data" / "tariffs")).resolve()
    if path.resolve().parent == shipped_dir:
        raise ValueError(f"{path} is in the shipped schedule's folder; write the candidate elsewhere")
    apply_schedule_text(schedule, text, str(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_inventory(path: Path) -> InventoryParse:
    """Read and validate an inventory CSV file (row errors are returned, not raised)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SupplyChainError(f"{path}: cannot read: {exc}") from exc
    return parse_inventory_csv(text, str(path))


def import_inventory(parsed: InventoryParse, sink: InventorySink | None) -> StoredInventory | None:
    """Hand the valid records to storage; returns what was stored, None when validating only."""
    if sink is None:
        return None
    return sink(parsed.records, parsed.source)


def database_sink(engine: Engine) -> InventorySink:
    """A sink that upserts records into the database in one transaction."""
    from fleetmon.storage.errors import StorageError
    from fleetmon.storage.inventory import upsert_inventory

    def store(records: Sequence[InventoryRecord], source: str) -> StoredInventory:
        try:
            return upsert_inventory(engine, records, source)
        except StorageError as exc:
            raise StorageError(f"{exc}; is the schema there (fleetmon db upgrade)?") from exc

    return store


def handle_inventory_import(
    args: argparse.Namespace, out: TextIO = sys.stdout, sink: InventorySink | None = None
) -> int:
    """Store an inventory CSV's good lines, print counts and every rejected line; 1 if any was rejected."""
    from fleetmon.storage.engine import make_engine
    from fleetmon.storage.errors import StorageError

    try:
        parsed = read_inventory(args.file)
    except SupplyChainError as exc:
        print(f"fleetmon inventory import: {exc}", file=sys.stderr)
        return 2
    if sink is None and not args.dry_run:
        sink = database_sink(make_engine(args.db))
    try:
        stored = import_inventory(parsed, sink)
    except StorageError as exc:
        print(f"fleetmon inventory import: nothing stored: {exc}", file=sys.stderr)
        return 2
    by_evidence: dict[str, int] = {}
    for rec in parsed.records:
        key = rec.origin.evidence or "none" if rec.origin else "no origin"
        by_evidence[key] = by_evidence.get(key, 0) + 1
    out.write(f"{parsed.source}: {len(parsed.records)} valid records, {len(parsed.errors)} rejected lines\n")
    for key, count in sorted(by_evidence.items()):
        out.write(f"  origin evidence {key}: {count}\n")
    with_value = sum(1 for r in parsed.records if r.customs_value_usd is not None)
    with_entry = sum(1 for r in parsed.records if r.entry_date)
    out.write(f"  with customs value: {with_value}; with entry date: {with_entry}\n")
    for err in parsed.errors:
        out.write(f"  rejected {err}\n")
    if stored is None:
        out.write("  not stored: validation only (--dry-run)\n")
    else:
        out.write(f"  stored: {stored.new} new, {stored.updated} updated; rejected: {len(parsed.errors)}\n")
    return 1 if parsed.errors else 0


def handle_report_supply_chain(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Compute the supply-chain report from the database (or a units file) and print it."""
    from fleetmon.service.supplychain import units_from_database
    from fleetmon.storage.engine import make_engine
    from fleetmon.storage.errors import StorageError
    from fleetmon.supplychain.fleet import load_units_file
    from fleetmon.supplychain.report import build_report, report_csv, report_json, report_table

    inventory: InventoryParse | None = None
    try:
        if args.units is not None:
            inventory = read_inventory(args.inventory) if args.inventory else None
            units = load_units_file(args.units, inventory.by_serial() if inventory else None)
        elif args.inventory is not None:
            raise SupplyChainError(
                "--inventory goes with --units; the database path uses the stored inventory"
            )
        else:
            units = units_from_database(make_engine(args.db))
        report = build_report(units, _schedule(args), args.as_of or date.today())
    except (SupplyChainError, StorageError) as exc:
        print(f"fleetmon report supply-chain: {exc}", file=sys.stderr)
        return 2
    if inventory is not None and inventory.errors:
        for err in inventory.errors:
            print(f"inventory {inventory.source}: rejected {err}", file=sys.stderr)
    if args.format == "json":
        json.dump(report_json(report), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif args.format == "csv":
        out.write(report_csv(report))
    else:
        out.write(report_table(report))
    return 0

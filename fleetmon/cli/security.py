"""`fleetmon report security`: the security findings of the fleet's latest stored samples.

The same report as `GET /api/v1/security/findings` (fleetmon.service.security), read from the database
through the service's fleet state. The database and the service are imported by the handler, so
registering the command costs nothing at startup.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

SEVERITIES = ("low", "medium", "high", "critical")


def add_report(reports: argparse._SubParsersAction[argparse.ArgumentParser], db_help: str) -> None:
    """Add `security` to the `report` command group."""
    sec = reports.add_parser("security", help="security findings per device, counted by code, maker, site")
    sec.add_argument("--format", choices=("table", "json", "csv"), default="table")
    sec.add_argument("--db", metavar="URL", help=db_help)
    sec.add_argument("--code", default=None, help="only this finding code (api_write_open, ...)")
    sec.add_argument("--severity", choices=SEVERITIES, default=None, help="only this severity")
    sec.add_argument("--site", default=None, help="only this site")
    sec.set_defaults(handler=handle_report_security)


def handle_report_security(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the findings report; 2 when the database cannot be read."""
    from fleetmon.service.security import FindingFilter, findings_csv, findings_table, report_from_database
    from fleetmon.storage.engine import make_engine
    from fleetmon.storage.errors import StorageError

    try:
        report = report_from_database(
            make_engine(args.db), FindingFilter(args.code, args.severity, args.site)
        )
    except StorageError as exc:
        print(f"fleetmon report security: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        json.dump(report.model_dump(mode="json"), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif args.format == "csv":
        out.write(findings_csv(report))
    else:
        out.write(findings_table(report))
    return 0

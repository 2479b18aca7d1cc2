"""Entry point of the `fleetmon` command: builds the parser from the command modules and dispatches."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from fleetmon import __version__

Handler = Callable[[argparse.Namespace], int]


def _command_modules() -> list[ModuleType]:
    # Imported here, not at module load, so `fleetmon --help` stays quick and one broken
    # command group cannot hide the others' import errors behind a confusing traceback.
    from fleetmon.cli import collect as collect_cli
    from fleetmon.cli import collectors as collectors_cli
    from fleetmon.cli import db as db_cli
    from fleetmon.cli import demo as demo_cli
    from fleetmon.cli import ingest as ingest_cli
    from fleetmon.cli import keys as keys_cli
    from fleetmon.cli import serve as serve_cli
    from fleetmon.cli import simulate as simulate_cli
    from fleetmon.cli import snmp as snmp_cli
    from fleetmon.cli import supplychain as supplychain_cli

    return [
        simulate_cli,
        snmp_cli,
        supplychain_cli,
        db_cli,
        ingest_cli,
        collect_cli,
        collectors_cli,
        serve_cli,
        demo_cli,
        keys_cli,
    ]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command group registered."""
    parser = argparse.ArgumentParser(prog="fleetmon", description="Monitor a bitcoin-mining fleet.")
    parser.add_argument("--version", action="version", version=f"fleetmon {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `fleetmon` command and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the `fleetmon` command: builds the parser and dispatches, importing one command group.

Each command group is a module with a `register(subparsers)` (argument definitions next to the code
that runs them). Importing every group to build the parser cost ~2 s per run (FastAPI, SQLAlchemy,
pysnmp and the whole service, whatever the command), so `COMMANDS` below names each group's module
and the one-line help of its commands, and `main` imports only the group of the command on the command
line; the others appear in `fleetmon --help` from the table alone. `bench/bench_startup.py` measures
what this buys; tests/test_cli_startup.py checks that the table matches what the modules register
and that a light command does not load the heavy stacks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from fleetmon import __version__

Handler = Callable[[argparse.Namespace], int]


COMMANDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("fleetmon.cli.simulate", (("simulate", "serve a simulated fleet of miners on loopback"),)),
    ("fleetmon.cli.snmp", (("snmp", "read rack PDUs over SNMP"),)),
    (
        "fleetmon.cli.supplychain",
        (
            ("tariffs", "US import duty on mining hardware"),
            ("inventory", "unit inventory records (origin evidence, customs values)"),
            ("report", "fleet reports"),
        ),
    ),
    ("fleetmon.cli.db", (("db", "database schema, export, rollups and retention"),)),
    ("fleetmon.cli.ingest", (("ingest", "store the samples collectors publish to an MQTT broker"),)),
    ("fleetmon.cli.collect", (("collect", "poll devices continuously into the database or an MQTT broker"),)),
    (
        "fleetmon.cli.collectors",
        (
            ("probe", "identify and read one device"),
            ("scan", "find miners in CIDR ranges (TCP probe, then identify)"),
            ("poll", "read a fleet: one cycle with --once, else every --interval"),
        ),
    ),
    ("fleetmon.cli.serve", (("serve", "serve the API and /metrics (and poll the configured targets)"),)),
    (
        "fleetmon.cli.demo",
        (("demo", "serve a simulated fleet through the API (one command, nothing to configure)"),),
    ),
    ("fleetmon.cli.keys", (("keys", "API keys of the service (create, list, revoke)"),)),
    (
        "fleetmon.cli.action",
        (("action", "act on miners through the API (reboot, locate, sleep, wake, power)"),),
    ),
)
"""(module, ((command, one-line help), ...)) per command group, in the order `--help` lists them."""


def module_of(command: str) -> str | None:
    """The module that registers and runs `command` (None for an unknown name)."""
    for module, commands in COMMANDS:
        if any(name == command for name, _help in commands):
            return module
    return None


def _command_modules() -> list[ModuleType]:
    """Every command group's module, imported (all the stacks: for tests and docs, not for a run)."""
    return [importlib.import_module(module) for module, _commands in COMMANDS]


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="fleetmon", description="Monitor a bitcoin-mining fleet.")
    parser.add_argument("--version", action="version", version=f"fleetmon {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return parser, sub


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every group registered in full (`command` None), or only the group of
    `command` in full and the others as their names and one-line help, without importing them."""
    parser, sub = _top_parser()
    for module, commands in COMMANDS:
        if command is None or any(name == command for name, _help in commands):
            importlib.import_module(module).register(sub)
        else:
            for name, help_text in commands:
                sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    # The top-level options take no value, so the first word that is not an option names the command.
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `fleetmon` command and return its exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(words)
    parser = build_parser(command if command is not None and module_of(command) else "")
    args = parser.parse_args(words)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

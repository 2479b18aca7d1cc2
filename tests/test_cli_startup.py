"""`fleetmon` imports only what the command it runs uses: the real CLI in a subprocess, `-X importtime`.

Importing every command group made each run, `--help` included, load FastAPI, SQLAlchemy, pysnmp and
the service (about 2 s). The speed itself is measured by bench/bench_startup.py; these tests keep the
import structure that gives it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from fleetmon.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("fastapi", "sqlalchemy", "pysnmp", "uvicorn", "alembic", "sqlmodel", "aiomqtt", "prometheus_client")
UNREACHABLE = "127.68.0.1:9"  # this module's subnet; nothing listens there, so the probe fails fast


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `fleetmon ARGS` with `-X importtime`; the result and every module the run imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fleetmon.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                modules.add(name)
    assert modules, result.stderr  # importtime output is there: the checks below can see an import
    return result, modules


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_help_imports_no_command_group_and_no_heavy_stack() -> None:
    result, modules = imported_modules("--help")
    assert result.returncode == 0, result.stderr
    for _module, commands in cli_main.COMMANDS:
        for name, _help in commands:
            assert name in result.stdout
    loaded = top_level(modules)
    assert not loaded & {*HEAVY, "pydantic", "httpx", "asyncio", "collectors"}
    assert not {module for module, _commands in cli_main.COMMANDS} & modules


def test_tariffs_rate_imports_neither_the_database_nor_the_service_nor_snmp() -> None:
    result, modules = imported_modules(
        "tariffs", "rate", "--origin", "CN", "--hts", "8543.70.9960", "--date", "2025-06-01", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert '"total_rate"' in result.stdout
    assert not top_level(modules) & {*HEAVY, "httpx"}
    assert not {m for m in modules if m.startswith("fleetmon.service")}


def test_probe_imports_the_device_library_but_not_the_service() -> None:
    result, modules = imported_modules("probe", UNREACHABLE, "--timeout", "2")
    assert result.returncode == 1  # read, and found unreachable: the command really ran
    assert "unreachable" in result.stdout
    assert "collectors.reader" in modules
    assert not top_level(modules) & set(HEAVY)
    assert not {m for m in modules if m.startswith(("fleetmon.service", "fleetmon.storage"))}


def test_command_table_matches_what_each_group_registers() -> None:
    # main.py lists each group's commands and help without importing it; the group's own register()
    # must say the same, or `fleetmon --help` would describe commands that are not there.
    for module in cli_main._command_modules():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        module.register(sub)
        registered = tuple((action.dest, action.help) for action in sub._choices_actions)
        listed = dict(cli_main.COMMANDS)[module.__name__]
        assert registered == listed, module.__name__


def test_every_command_parses_through_its_lazily_built_parser() -> None:
    full = cli_main.build_parser()
    for _module, commands in cli_main.COMMANDS:
        for name, _help in commands:
            lazy = cli_main.build_parser(name)
            sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
            full_sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
            assert sub.choices[name].format_help() == full_sub.choices[name].format_help()


@pytest.mark.parametrize("argv", [["no-such-command"], []])
def test_unknown_or_missing_command_is_a_usage_error(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fleetmon.cli.main", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "usage: fleetmon" in result.stderr

"""The house rules of docs/architecture.md, checked on the source tree itself.

Imports are read with `ast` (every `import` and `from ... import`, also those inside functions), so a
lazy import cannot slip past. Each rule is also run against a snippet that breaks it, so a rule that
could never fire fails here instead of passing forever.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.sample import Availability, State, availability, is_down, states_with

ROOT = Path(__file__).resolve().parent.parent

DATABASE_LIBRARIES = ("sqlalchemy", "sqlmodel", "alembic")
NOT_IN_COLLECTORS = ("fleetmon", "fastapi", "sqlmodel", "sqlalchemy", "alembic", "aiomqtt", "paho")
NOT_IN_COLLECTORS += ("prometheus_client", "starlette", "uvicorn")


def imported_modules(source: str, module: str) -> Iterator[str]:
    """Every absolute module name `source` (the text of `module`) imports, relative imports resolved."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            elif node.module is not None:
                yield node.module


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def violations(module: str, source: str) -> list[str]:
    """The import rules `module` (a dotted name) breaks, one line each."""
    found = []
    for name in imported_modules(source, module):
        if not _under(module, ("fleetmon.storage",)) and _under(name, DATABASE_LIBRARIES):
            found.append(f"{module} imports {name}: SQL lives in fleetmon.storage")
        if _under(module, ("collectors",)) and _under(name, NOT_IN_COLLECTORS):
            found.append(f"{module} imports {name}: collectors/ speaks to devices only")
        if (
            _under(module, ("collectors.simulator",))
            and _under(name, ("collectors",))
            and not _under(name, ("collectors.simulator",))
        ):
            found.append(f"{module} imports {name}: the simulator stays apart from the code it tests")
    return found


def source_modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every Python module of collectors/ and fleetmon/."""
    for top in ("collectors", "fleetmon"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def test_source_tree_keeps_the_import_rules() -> None:
    broken = [v for module, path in source_modules() for v in violations(module, path.read_text())]
    assert broken == []


def test_source_tree_walk_sees_both_rooms() -> None:
    modules = {module for module, _ in source_modules()}
    assert {"collectors.sample", "collectors.simulator.server", "fleetmon.storage.engine"} <= modules


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("fleetmon.service.runtime", "from sqlalchemy import Engine"),
        ("fleetmon.web.racks", "def f():\n    import sqlalchemy.orm\n"),
        ("fleetmon.cli.db", "from alembic import command"),
        ("fleetmon.service.fleet", "import sqlmodel"),
        ("collectors.poller", "from fleetmon.config import Settings"),
        ("collectors.workers", "import paho.mqtt.client"),
        ("collectors.reader", "from prometheus_client import Gauge"),
        ("collectors.web", "from fastapi import FastAPI"),
        ("collectors.simulator.server", "from collectors.poller import Poller"),
        ("collectors.simulator.personalities.antminer", "from ...framing import repair"),
    ],
)
def test_each_import_rule_fires_on_a_breaking_import(module: str, source: str) -> None:
    assert violations(module, source)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("fleetmon.storage.engine", "from sqlalchemy import Engine"),
        ("fleetmon.storage.migrations.env", "from alembic import context"),
        ("collectors.simulator.server", "from collectors.simulator.device import SimDevice"),
        ("collectors.simulator.personalities.antminer", "from . import cgminer_reply"),
        ("fleetmon.cli.simulate", "from collectors.poller import tune_gc_for_polling"),
        ("fleetmon.service.runtime", "from fleetmon.storage.engine import Engine"),
    ],
)
def test_allowed_imports_pass(module: str, source: str) -> None:
    assert violations(module, source) == []


# ---- availability: one definition, beside the sample contract -----------------------------------


def test_every_state_has_an_availability() -> None:
    assert {state: availability(state) for state in State} == {
        State.MINING: Availability.UP,
        State.IDLE: Availability.UP,
        State.SLEEPING: Availability.UP,
        State.DEGRADED: Availability.FAILING,
        State.ERROR: Availability.DOWN,
        State.UNREACHABLE: Availability.DOWN,
    }
    assert states_with(Availability.DOWN) == (State.ERROR, State.UNREACHABLE)
    assert is_down("error") and is_down(State.UNREACHABLE) and not is_down("degraded")
    assert not is_down("offline")  # not one of our states: the caller decides what a foreign word means


# A list of down states is two of them side by side, in either order: `State.ERROR, State.UNREACHABLE`,
# quoted values separated by a comma (Python, SQL, JavaScript), or a regex alternation (PromQL).
_STATE = r"""(State\.(ERROR|UNREACHABLE)|["']?(error|unreachable)["']?)"""
_DOWN_LIST = re.compile(_STATE + r"\s*[,|]\s*" + _STATE)
_SCANNED = ("*.py", "*.js", "*.html", "*.yml", "*.yaml")


def down_lists(text: str) -> list[str]:
    """Lines of `text` that spell out a list of down states."""
    return [line.strip() for line in text.splitlines() if _DOWN_LIST.search(line)]


def test_no_list_of_down_states_outside_the_sample_contract() -> None:
    definition = ROOT / "collectors" / "sample.py"
    found = []
    for top in ("collectors", "fleetmon"):
        for pattern in _SCANNED:
            for path in (ROOT / top).rglob(pattern):
                if path == definition or "simulator" in path.parts:
                    continue  # the simulator plays devices; it never judges them
                found += [f"{path.relative_to(ROOT)}: {line}" for line in down_lists(path.read_text())]
    assert found == []


@pytest.mark.parametrize(
    "line",
    [
        "DOWN = frozenset({State.UNREACHABLE, State.ERROR})",
        'DOWN_STATES = ("unreachable", "error")',
        "const down = ['error', 'unreachable'];",
        "if s.state in (State.ERROR, State.UNREACHABLE):",
        'fleetmon_miner_info{state=~"error|unreachable"}',
    ],
)
def test_a_down_list_is_recognised(line: str) -> None:
    assert down_lists(line) == [line]


@pytest.mark.parametrize(
    "line",
    [
        "state = State.UNREACHABLE if unreachable else State.ERROR",  # a driver naming what it saw
        'error: "#d64541", unreachable: "#7a2e8e",',  # a palette
        "raise MinerError('unreachable')",
    ],
)
def test_naming_one_state_is_not_a_list(line: str) -> None:
    assert down_lists(line) == []

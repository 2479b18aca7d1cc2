"""What-if scenarios on fleet tariff exposure: override or add duty layers, and re-source hashrate
from one origin to another; each returns the exposure before and after.

Re-sourcing models buying the same hashrate again from another origin: units of the `from` origin
are moved in serial order (the last one split pro rata when the amount falls inside it), take the
new origin with evidence "scenario", and are treated as entered on the as-of date (their old entry
records describe a purchase that, in the scenario, did not happen).

Named scenarios live in files (TOML, data/scenarios/*.toml shipped): a `[scenario]` table (name,
description, source, `in_force = false`: a scenario file is a what-if by definition) and the same
`[[layer]]` tables as a schedule file, added on top of the schedule; optional `[rate_overrides]` and
`[[resourcing]]` (from, to, ths).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from fleetmon.supplychain.catalog import Catalog
from fleetmon.supplychain.errors import ScenarioError, ScheduleError
from fleetmon.supplychain.exposure import FleetExposure, exposure_ths, fleet_exposure
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.origin import Origin, OriginBasis
from fleetmon.supplychain.tariffs import Layer, Schedule, headed_toml, normalise_origin, parse_layer


@dataclass(frozen=True)
class Resourcing:
    """Move `ths` TH/s of hashrate from one assembly origin to another."""

    from_origin: str
    to_origin: str
    ths: float


@dataclass(frozen=True)
class Scenario:
    """A named set of changes to the schedule and the fleet."""

    name: str
    rate_overrides: dict[str, Decimal] = field(default_factory=dict)  # layer id -> new rate
    add_layers: tuple[Layer, ...] = ()  # added; a layer may replace others by id
    resourcing: tuple[Resourcing, ...] = ()
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class ScenarioResult:
    """Exposure before and after a scenario, and the headline differences."""

    scenario: Scenario
    before: FleetExposure
    after: FleetExposure
    moved_ths: float
    delta: dict[str, float]


def apply_to_schedule(schedule: Schedule, scenario: Scenario) -> Schedule:
    """The schedule with the scenario's rate overrides and added layers."""
    layers = list(schedule.layers)
    for layer_id, new_rate in scenario.rate_overrides.items():
        index = next((i for i, lay in enumerate(layers) if lay.id == layer_id), None)
        if index is None:
            raise ScenarioError(f"scenario {scenario.name!r}: no layer {layer_id!r} to override")
        if new_rate < 0:
            raise ScenarioError(f"scenario {scenario.name!r}: rate for {layer_id!r} must not be negative")
        layers[index] = layers[index].with_rate(new_rate)
    # replace() keeps everything else the schedule says, sources_end included: a what-if does not
    # move where the sources end.
    base = replace(schedule, name=f"{schedule.name}+scenario:{scenario.name}", layers=tuple(layers))
    return base.with_layers(scenario.add_layers) if scenario.add_layers else base


def resource_units(
    units: Sequence[FleetUnit], moves: Sequence[Resourcing], as_of: date
) -> tuple[list[FleetUnit], float]:
    """The fleet with hashrate moved between origins, and the TH/s actually moved."""
    fleet = list(units)
    moved_total = 0.0
    for move in moves:
        if move.ths < 0:
            raise ScenarioError("re-sourced TH/s must not be negative")
        remaining = move.ths
        order = sorted(
            (
                i
                for i, u in enumerate(fleet)
                if u.origin.country == move.from_origin and (exposure_ths(u) or 0) > 0
            ),
            key=lambda i: fleet[i].key,
        )
        additions: list[FleetUnit] = []
        for i in order:
            if remaining <= 0:
                break
            unit = fleet[i]
            ths = exposure_ths(unit) or 0.0
            fraction = min(1.0, remaining / ths)
            origin = Origin(
                country=move.to_origin,
                basis=OriginBasis.DECLARED,
                confidence=1.0,
                evidence="scenario",
                reasoning=f"re-sourced from {move.from_origin} to {move.to_origin}",
            )
            moved = _scaled(replace(unit, origin=origin, entry_date=as_of), fraction)
            if fraction < 1.0:
                fleet[i] = _scaled(unit, 1.0 - fraction)
                additions.append(moved)
            else:
                fleet[i] = moved
            remaining -= ths * fraction
            moved_total += ths * fraction
        fleet.extend(additions)
    return fleet, moved_total


def _scaled(unit: FleetUnit, factor: float) -> FleetUnit:
    def scale(value: float | None) -> float | None:
        return None if value is None else value * factor

    return replace(
        unit,
        hashrate_ths=scale(unit.hashrate_ths),
        nominal_hashrate_ths=scale(unit.nominal_hashrate_ths),
        customs_value_usd=scale(unit.customs_value_usd),
    )


def run_scenario(
    units: Sequence[FleetUnit],
    schedule: Schedule,
    as_of: date,
    scenario: Scenario,
    catalog: Catalog | None = None,
) -> ScenarioResult:
    """Exposure before and after the scenario."""
    before = fleet_exposure(units, schedule, as_of, catalog)
    after_units, moved = resource_units(units, scenario.resourcing, as_of)
    after = fleet_exposure(after_units, apply_to_schedule(schedule, scenario), as_of, catalog)
    delta = {
        "replacement_duty_usd": after.replacement_duty_usd - before.replacement_duty_usd,
        "hashrate_weighted_rate": (after.hashrate_weighted_rate or 0.0)
        - (before.hashrate_weighted_rate or 0.0),
        "reclassification_liability_usd": after.reclassification_liability_usd
        - before.reclassification_liability_usd,
        "ieepa_refundable_usd": after.ieepa_refundable_usd - before.ieepa_refundable_usd,
        "score": after.score.score - before.score.score,
    }
    return ScenarioResult(scenario=scenario, before=before, after=after, moved_ths=moved, delta=delta)


def parse_scenario(data: Mapping[str, object], where: str = "<scenario>") -> Scenario:
    """A Scenario from JSON-shaped data; raises ScenarioError naming the offending field.

    Shape: {"name", "rate_overrides": {layer_id: rate}, "add_layers": [layer, ...],
    "resourcing": [{"from": "CN", "to": "US", "ths": 1000}]}.
    """
    name = data.get("name", "scenario")
    if not isinstance(name, str):
        raise ScenarioError(f"{where}: name must be a string")
    overrides_raw = data.get("rate_overrides", {})
    if not isinstance(overrides_raw, dict):
        raise ScenarioError(f"{where}: rate_overrides must map layer ids to rates")
    overrides: dict[str, Decimal] = {}
    for key, value in overrides_raw.items():
        try:
            overrides[str(key)] = Decimal(str(value))
        except InvalidOperation as exc:
            raise ScenarioError(f"{where}: rate_overrides[{key!r}] is not a number") from exc
    layers_raw = data.get("add_layers", [])
    if not isinstance(layers_raw, list):
        raise ScenarioError(f"{where}: add_layers must be a list")
    try:
        layers = tuple(parse_layer(raw, where, None, i) for i, raw in enumerate(layers_raw))
    except ScheduleError as exc:
        raise ScenarioError(str(exc)) from exc
    moves_raw = data.get("resourcing", [])
    if not isinstance(moves_raw, list):
        raise ScenarioError(f"{where}: resourcing must be a list")
    moves: list[Resourcing] = []
    for i, raw in enumerate(moves_raw):
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: resourcing[{i}] must be an object")
        try:
            ths = float(raw["ths"])
            moves.append(
                Resourcing(normalise_origin(str(raw["from"])), normalise_origin(str(raw["to"])), ths)
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ScenarioError(
                f"{where}: resourcing[{i}] needs from, to (country codes) and ths: {exc}"
            ) from exc
    return Scenario(name=name, rate_overrides=overrides, add_layers=layers, resourcing=tuple(moves))


# ------------------------------------------------------------------------------------- scenario files

_SCENARIO_KEYS = frozenset({"name", "description", "source", "in_force"})


def shipped_scenario_names() -> tuple[str, ...]:
    """Names of the scenario files shipped in data/scenarios (without .toml)."""
    folder = resources.files("fleetmon.supplychain") / "data" / "scenarios"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def shipped_scenario(name: str) -> Scenario:
    """A shipped what-if scenario by name; raises ScenarioError naming the known ones."""
    if name not in shipped_scenario_names():
        raise ScenarioError(f"no shipped scenario {name!r}; known: {list(shipped_scenario_names())}")
    path = resources.files("fleetmon.supplychain") / "data" / "scenarios" / f"{name}.toml"
    return parse_scenario_text(path.read_text("utf-8"), f"{name}.toml")


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, else a scenario file by path."""
    if name_or_path in shipped_scenario_names():
        return shipped_scenario(name_or_path)
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            f"{name_or_path}: neither a shipped scenario {list(shipped_scenario_names())} "
            f"nor a readable file: {exc}"
        ) from exc
    return parse_scenario_text(text, str(path))


def parse_scenario_text(text: str, filename: str) -> Scenario:
    """One scenario file; raises ScenarioError naming the file and what is wrong."""
    doc, header = headed_toml(
        text,
        filename,
        header="scenario",
        header_keys=_SCENARIO_KEYS,
        tables=("layer", "rate_overrides", "resourcing"),
        error=ScenarioError,
    )
    if header.get("in_force") is not False:
        raise ScenarioError(f"{filename}: a scenario is a what-if: say `in_force = false` in [scenario]")
    data = {
        "name": header.get("name", Path(filename).stem),
        "rate_overrides": doc.get("rate_overrides", {}),
        "add_layers": doc.get("layer", []),
        "resourcing": doc.get("resourcing", []),
    }
    scenario = parse_scenario(data, filename)
    description, source = header.get("description", ""), header.get("source", "")
    if not isinstance(description, str) or not isinstance(source, str):
        raise ScenarioError(f"{filename}: description and source must be strings")
    return replace(scenario, description=description, source=source)

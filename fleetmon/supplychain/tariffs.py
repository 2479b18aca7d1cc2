"""Dated US tariff schedules: load and validate schedule files, and the duty rate at an entry date.

A schedule is a list of layers (MFN, Section 301, IEEPA fentanyl, IEEPA reciprocal, Section 122, ...),
each with a rate, an origin set, HTS prefixes and a half-open date range
[effective_from, effective_to): `effective_from` is the first entry date the layer applies to and
`effective_to` the first date it no longer does. The rate for (origin, HTS, date) is the sum of the
layers in force. Rates are `Decimal` fractions (0.576 means 57.6%) so that sums print exactly.

A schedule says where its sources end (`sources_end`, the last date its sources speak for). A rate
asked for a later entry date still answers with the layers known, and carries a warning saying the
date is past the sources' end: a duty may have lapsed, changed or been added since, unseen.

Schedule files are TOML (format documented at the top of data/tariffs/us-8543.70.9960.toml). A file
with `mode = "replace"` is a complete schedule; `mode = "add"` layers it on top of those loaded
before it, and its layers may replace earlier ones by id (`replaces = [...]`). Procurement can thus
swap in a new schedule or a correction without touching code.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from fleetmon.supplychain.errors import ScheduleError, UnknownHtsError

SHIPPED_SCHEDULE = "us-8543.70.9960.toml"
ALTERNATIVE_S122_15 = "us-8543.70.9960-s122-15pct.toml"
DEFAULT_HTS = "8543.70.9960"
ANY_ORIGIN = "*"

LAYER_KINDS = frozenset(
    {"mfn", "section_301", "section_232", "ieepa_fentanyl", "ieepa_reciprocal", "section_122", "other"}
)
IEEPA_KINDS = frozenset({"ieepa_fentanyl", "ieepa_reciprocal"})
FLAGS = frozenset({"U", "E"})
_LAYER_KEYS = frozenset(
    {
        "id",
        "name",
        "kind",
        "rate",
        "effective_from",
        "effective_to",
        "origins",
        "exclude_origins",
        "hts",
        "source",
        "notes",
        "flags",
        "replaces",
        "stacks_with",
    }
)
_SCHEDULE_KEYS = frozenset(
    {"name", "mode", "description", "modelled_origins", "origin_notes", "sources_end", "sources_end_note"}
)
_ISO2 = re.compile(r"^[A-Z]{2}$")
_HTS_DIGITS = re.compile(r"^\d{4,10}$")


def normalise_hts(code: str) -> str:
    """HTS code as bare digits ("8543.70.9960" -> "8543709960"); raises ValueError if not 4-10 digits."""
    digits = code.replace(".", "").replace(" ", "").strip()
    if not _HTS_DIGITS.match(digits):
        raise ValueError(f"not an HTS code: {code!r} (want 4 to 10 digits, dots allowed)")
    return digits


def normalise_origin(origin: str) -> str:
    """Country code upper-cased; raises ValueError unless ISO 3166-1 alpha-2 shaped."""
    code = origin.strip().upper()
    if not _ISO2.match(code):
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {origin!r}")
    return code


@dataclass(frozen=True)
class Layer:
    """One duty layer: a rate that applies to some origins and HTS prefixes over a date range."""

    id: str
    name: str
    kind: str
    rate: Decimal
    origins: frozenset[str]
    exclude_origins: frozenset[str]
    hts_prefixes: tuple[str, ...]  # bare digits
    source: str
    effective_from: date | None = None  # inclusive; None = before any date of interest
    effective_to: date | None = None  # exclusive; None = until replaced
    notes: str = ""
    flags: frozenset[str] = frozenset()
    replaces: tuple[str, ...] = ()
    # Ids of layers of the same kind this one deliberately adds to (a second Section 301 action on
    # goods already under one); any other same-kind overlap is taken for a forgotten end date.
    stacks_with: tuple[str, ...] = ()
    origin_file: str = ""  # where it was loaded from, for error messages and provenance

    def in_force(self, on: date) -> bool:
        """True when an entry on `on` falls inside [effective_from, effective_to)."""
        if self.effective_from is not None and on < self.effective_from:
            return False
        return self.effective_to is None or on < self.effective_to

    def applies_to_origin(self, origin: str) -> bool:
        """True when goods of `origin` (alpha-2) carry this layer."""
        if origin in self.exclude_origins:
            return False
        return ANY_ORIGIN in self.origins or origin in self.origins

    def covers_hts(self, hts_digits: str) -> bool:
        """True when the HTS code (bare digits) starts with one of this layer's prefixes."""
        return any(hts_digits.startswith(prefix) for prefix in self.hts_prefixes)

    def with_rate(self, rate: Decimal) -> Layer:
        """The same layer at another rate (for what-if scenarios)."""
        return replace(self, rate=rate)


@dataclass(frozen=True)
class Schedule:
    """A set of non-contradictory layers plus the provenance of the files they came from."""

    name: str
    layers: tuple[Layer, ...]
    modelled_origins: frozenset[str] = frozenset()
    origin_notes: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    sources_end: date | None = None  # the last date the schedule's sources speak for; None: not said
    sources_end_note: str = ""  # what is known to be open after sources_end
    # Measures checked and found not to apply to these HTS lines: never summed, named in rate notes.
    not_applied: tuple[Layer, ...] = ()

    def past_sources_end(self, on: date) -> bool:
        """True when an entry on `on` falls after the last date the schedule's sources speak for."""
        return self.sources_end is not None and on > self.sources_end

    def sources_end_warning(self, on: date) -> str | None:
        """The warning a figure priced at `on` carries when `on` is past the sources' end, else None."""
        if not self.past_sources_end(on):
            return None
        text = (
            f"{on} is after {self.sources_end}, where the sources of schedule {self.name!r} end: "
            "the layers shown are those known then; a duty may have lapsed, changed or been added since"
        )
        return f"{text}. {self.sources_end_note}" if self.sources_end_note else text

    def layer(self, layer_id: str) -> Layer | None:
        """The layer with this id, or None."""
        return next((lay for lay in self.layers if lay.id == layer_id), None)

    def covers_hts(self, hts: str) -> bool:
        """True when at least one layer (for any origin or date) covers this HTS code."""
        digits = normalise_hts(hts)
        return any(lay.covers_hts(digits) for lay in self.layers)

    def with_layers(self, added: Iterable[Layer], name: str | None = None) -> Schedule:
        """A new schedule with `added` layered on top: each replaces layers named in its `replaces`
        or carrying the same id."""
        added = tuple(added)
        dropped = {rid for lay in added for rid in lay.replaces} | {lay.id for lay in added}
        kept = tuple(lay for lay in self.layers if lay.id not in dropped)
        return replace(
            self, name=name or self.name, layers=kept + added, origin_notes=dict(self.origin_notes)
        )


@dataclass(frozen=True)
class RateResult:
    """The duty at one (origin, HTS, date): total as a fraction and the layers that make it up."""

    origin: str
    hts: str
    on: date
    total_rate: Decimal
    layers: tuple[Layer, ...]
    schedule: str
    notes: tuple[str, ...] = ()
    sources_end: date | None = None
    warning: str | None = None  # set when `on` is past sources_end

    def to_json(self) -> dict[str, object]:
        """Plain JSON-ready dict; `total_rate` and layer rates are fractions."""
        return {
            "origin": self.origin,
            "hts": self.hts,
            "date": self.on.isoformat(),
            "total_rate": float(self.total_rate),
            "total_percent": float(self.total_rate * 100),
            "schedule": self.schedule,
            "layers": [layer_json(lay) for lay in self.layers],
            "notes": list(self.notes),
            "sources_end": self.sources_end.isoformat() if self.sources_end else None,
            "past_sources_end": self.warning is not None,
            "warning": self.warning,
        }


def layer_json(layer: Layer) -> dict[str, object]:
    """One layer as a JSON-ready dict, with its source and [U]/[E] flags."""
    return {
        "id": layer.id,
        "name": layer.name,
        "kind": layer.kind,
        "rate": float(layer.rate),
        "effective_from": layer.effective_from.isoformat() if layer.effective_from else None,
        "effective_to_exclusive": layer.effective_to.isoformat() if layer.effective_to else None,
        "origins": sorted(layer.origins),
        "exclude_origins": sorted(layer.exclude_origins),
        "source": layer.source,
        "notes": layer.notes,
        "flags": sorted(layer.flags),
    }


def rate(schedule: Schedule, origin: str, hts: str, on: date) -> RateResult:
    """Sum of the layers in force for goods of `origin` under `hts` entered on `on`.

    Raises ValueError for a malformed origin or HTS code and UnknownHtsError when no layer of the
    schedule covers the HTS code (an uncovered code is unknown, not duty-free).
    """
    country = normalise_origin(origin)
    digits = normalise_hts(hts)
    if not any(lay.covers_hts(digits) for lay in schedule.layers):
        raise UnknownHtsError(
            f"schedule {schedule.name!r} has no layer for HTS {hts}; load a schedule that does"
        )
    in_force = tuple(
        lay
        for lay in schedule.layers
        if lay.covers_hts(digits) and lay.applies_to_origin(country) and lay.in_force(on)
    )
    notes: list[str] = []
    if country in schedule.origin_notes:
        notes.append(schedule.origin_notes[country])
    if schedule.modelled_origins and country not in schedule.modelled_origins:
        notes.append(
            f"{country} is not modelled country by country in schedule {schedule.name!r}: only layers "
            "for all origins apply, so a country-specific rate may be missing"
        )
    for lay in schedule.not_applied:
        if lay.covers_hts(digits) and lay.applies_to_origin(country) and lay.in_force(on):
            flags = f" [{','.join(sorted(lay.flags))}]" if lay.flags else ""
            notes.append(f"not applied: {lay.name}{flags}: {lay.notes} (source {lay.source})")
    total = sum((lay.rate for lay in in_force), Decimal(0))
    return RateResult(
        origin=country,
        hts=hts,
        on=on,
        total_rate=total,
        layers=in_force,
        schedule=schedule.name,
        notes=tuple(notes),
        sources_end=schedule.sources_end,
        warning=schedule.sources_end_warning(on),
    )


# ---------------------------------------------------------------------------------------------- loading


def load_schedules(paths: Sequence[Path], *, start_from_shipped: bool = True) -> Schedule:
    """The shipped schedule (unless told otherwise) with each file applied in order.

    A file with mode "replace" discards everything before it; mode "add" layers on top.
    Raises ScheduleError naming the file and, where possible, the line and layer id.
    """
    schedule = shipped_schedule() if start_from_shipped else None
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScheduleError(f"{path}: cannot read schedule file: {exc}") from exc
        schedule = apply_schedule_text(schedule, text, str(path))
    if schedule is None:
        raise ScheduleError("no schedule loaded: give at least one file with mode = 'replace'")
    return schedule


def shipped_schedule(*, s122_rate_15: bool = False) -> Schedule:
    """The schedule shipped in fleetmon/supplychain/data/tariffs (optionally with Section 122 at 15%)."""
    base = resources.files("fleetmon.supplychain") / "data" / "tariffs"
    schedule = apply_schedule_text(None, (base / SHIPPED_SCHEDULE).read_text("utf-8"), SHIPPED_SCHEDULE)
    if s122_rate_15:
        schedule = apply_schedule_text(
            schedule, (base / ALTERNATIVE_S122_15).read_text("utf-8"), ALTERNATIVE_S122_15
        )
    return schedule


def headed_toml(
    text: str,
    filename: str,
    *,
    header: str,
    header_keys: frozenset[str] | set[str],
    tables: Iterable[str],
    error: type[Exception],
    hint: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(document, its [header] table) of a data file whose first table describes it (a schedule or a
    scenario): valid TOML, the header present with known keys only, no top-level table but `header`
    and `tables`. Anything else raises `error` naming the file."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{filename}: not valid TOML: {exc}") from exc
    head = doc.get(header)
    if not isinstance(head, dict):
        raise error(f"{filename}: missing [{header}] table{hint}")
    unknown = set(head) - set(header_keys)
    if unknown:
        raise error(f"{filename}: [{header}] has unknown keys {sorted(unknown)}")
    unknown_top = set(doc) - {header, *tables}
    if unknown_top:
        raise error(f"{filename}: unknown top-level tables {sorted(unknown_top)}")
    return doc, head


def apply_schedule_text(current: Schedule | None, text: str, filename: str) -> Schedule:
    """Parse one schedule file's text and apply it to `current` according to its mode."""
    doc, header = headed_toml(
        text,
        filename,
        header="schedule",
        header_keys=_SCHEDULE_KEYS,
        tables=("layer", "not_applied"),
        error=ScheduleError,
        hint=" (name, mode)",
    )
    name = header.get("name")
    mode = header.get("mode", "replace")
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"{filename}: [schedule] name must be a non-empty string")
    if mode not in ("replace", "add"):
        raise ScheduleError(f"{filename}: [schedule] mode must be 'replace' or 'add', not {mode!r}")
    raw_layers = doc.get("layer", [])
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ScheduleError(f"{filename}: no [[layer]] entries")
    lines = _layer_lines(text)
    layers = tuple(
        parse_layer(raw, filename, lines[i] if i < len(lines) else None, i)
        for i, raw in enumerate(raw_layers)
    )
    raw_not_applied = doc.get("not_applied", [])
    if not isinstance(raw_not_applied, list):
        raise ScheduleError(f"{filename}: not_applied must be [[not_applied]] tables")
    na_lines = _layer_lines(text, "[[not_applied]]")
    not_applied = tuple(
        parse_layer(raw, filename, na_lines[i] if i < len(na_lines) else None, i)
        for i, raw in enumerate(raw_not_applied)
    )
    seen: set[str] = set()
    for lay in layers + not_applied:
        if lay.id in seen:
            raise ScheduleError(f"{filename}: layer id {lay.id!r} appears twice")
        seen.add(lay.id)
    modelled = _origin_list(header.get("modelled_origins", []), filename, "[schedule] modelled_origins")
    notes_raw = header.get("origin_notes", {})
    if not isinstance(notes_raw, dict) or not all(isinstance(v, str) for v in notes_raw.values()):
        raise ScheduleError(f"{filename}: [schedule.origin_notes] must map country codes to strings")
    notes = {str(k).upper(): str(v) for k, v in notes_raw.items()}
    sources_end = _date_or_none(header.get("sources_end"), filename, "[schedule] sources_end")
    end_note = header.get("sources_end_note", "")
    if not isinstance(end_note, str):
        raise ScheduleError(f"{filename}: [schedule] sources_end_note must be a string")

    if mode == "replace" or current is None:
        if mode == "add":
            raise ScheduleError(f"{filename}: mode 'add' needs a schedule loaded before it")
        result = Schedule(
            name=name,
            layers=(),
            modelled_origins=frozenset(modelled),
            origin_notes=notes,
            sources_end=sources_end,
            sources_end_note=end_note,
            not_applied=not_applied,
        )
    else:
        known = {lay.id for lay in current.layers}
        for lay in layers:
            missing = [rid for rid in lay.replaces if rid not in known]
            if missing:
                raise ScheduleError(f"{filename}: layer {lay.id!r} replaces unknown layer ids {missing}")
        result = Schedule(
            name=f"{current.name}+{name}",
            layers=current.layers,
            modelled_origins=current.modelled_origins | frozenset(modelled),
            origin_notes={**current.origin_notes, **notes},
            files=current.files,
            # An added file that names where its own sources end (a reviewed update) moves the end;
            # one that does not (an alternative, a what-if) leaves it where it was.
            sources_end=sources_end or current.sources_end,
            sources_end_note=end_note if sources_end else current.sources_end_note,
            not_applied=current.not_applied + not_applied,
        )
    merged = result.with_layers(layers)
    _check_overlaps(merged)
    return replace(merged, files=(*result.files, filename))


def _layer_lines(text: str, header: str = "[[layer]]") -> list[int]:
    """1-based line numbers of each `[[layer]]` (or other) header, in order (for error messages)."""
    return [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().startswith(header)]


def parse_layer(raw: object, filename: str, line: int | None, index: int) -> Layer:
    """One layer from its TOML/JSON table; raises ScheduleError naming the file, line and layer id."""
    where = f"{filename}:{line}" if line else f"{filename}: layer #{index + 1}"
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where}: a layer must be a table")
    layer_id = raw.get("id")
    if not isinstance(layer_id, str) or not layer_id:
        raise ScheduleError(f"{where}: layer #{index + 1} has no string 'id'")
    where = f"{where} (layer {layer_id!r})"
    unknown = set(raw) - _LAYER_KEYS
    if unknown:
        raise ScheduleError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("name", "kind", "source"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ScheduleError(f"{where}: '{key}' must be a non-empty string")
    kind = raw["kind"]
    if kind not in LAYER_KINDS:
        raise ScheduleError(f"{where}: kind {kind!r} is not one of {sorted(LAYER_KINDS)}")
    rate_raw = raw.get("rate")
    if isinstance(rate_raw, bool) or not isinstance(rate_raw, int | float | str):
        raise ScheduleError(f"{where}: 'rate' must be a number (a fraction: 0.25 for 25%)")
    try:
        rate_value = Decimal(str(rate_raw))
    except InvalidOperation as exc:
        raise ScheduleError(f"{where}: 'rate' {rate_raw!r} is not a number") from exc
    if not rate_value.is_finite() or rate_value < 0 or rate_value > 10:
        raise ScheduleError(f"{where}: 'rate' {rate_raw!r} must be a fraction between 0 and 10 (0.25 = 25%)")
    start = _date_or_none(raw.get("effective_from"), where, "effective_from")
    end = _date_or_none(raw.get("effective_to"), where, "effective_to")
    if start is not None and end is not None and end <= start:
        raise ScheduleError(
            f"{where}: effective_to {end} must be after effective_from {start} (it is exclusive)"
        )
    origins = _origin_list(raw.get("origins"), where, "origins", allow_any=True)
    if not origins:
        raise ScheduleError(f"{where}: 'origins' must list at least one country code or '*'")
    excluded = _origin_list(raw.get("exclude_origins", []), where, "exclude_origins")
    hts_raw = raw.get("hts")
    if not isinstance(hts_raw, list) or not hts_raw or not all(isinstance(h, str) for h in hts_raw):
        raise ScheduleError(f"{where}: 'hts' must be a non-empty list of HTS prefixes like \"8543.70.99\"")
    try:
        prefixes = tuple(normalise_hts(h) for h in hts_raw)
    except ValueError as exc:
        raise ScheduleError(f"{where}: {exc}") from exc
    flags_raw = raw.get("flags", [])
    if not isinstance(flags_raw, list) or not set(flags_raw) <= FLAGS:
        raise ScheduleError(f"{where}: 'flags' must be a list of {sorted(FLAGS)}")
    replaces = raw.get("replaces", [])
    if not isinstance(replaces, list) or not all(isinstance(r, str) for r in replaces):
        raise ScheduleError(f"{where}: 'replaces' must be a list of layer ids")
    stacks_with = raw.get("stacks_with", [])
    if not isinstance(stacks_with, list) or not all(isinstance(r, str) for r in stacks_with):
        raise ScheduleError(f"{where}: 'stacks_with' must be a list of layer ids")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise ScheduleError(f"{where}: 'notes' must be a string")
    return Layer(
        id=layer_id,
        name=raw["name"],
        kind=kind,
        rate=rate_value,
        origins=frozenset(origins),
        exclude_origins=frozenset(excluded),
        hts_prefixes=prefixes,
        source=raw["source"],
        effective_from=start,
        effective_to=end,
        notes=notes,
        flags=frozenset(str(f) for f in flags_raw),
        replaces=tuple(replaces),
        stacks_with=tuple(stacks_with),
        origin_file=where,
    )


def _date_or_none(value: object, where: str, key: str) -> date | None:
    if value is None:
        return None
    # TOML date literals arrive as date; a quoted ISO string is accepted too.
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ScheduleError(f"{where}: '{key}' {value!r} is not a date (YYYY-MM-DD)") from exc
    raise ScheduleError(f"{where}: '{key}' must be a date (YYYY-MM-DD), not {value!r}")


def _origin_list(value: object, where: str, key: str, *, allow_any: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScheduleError(f"{where}: '{key}' must be a list of country codes")
    out: list[str] = []
    for item in value:
        if allow_any and item == ANY_ORIGIN:
            out.append(ANY_ORIGIN)
            continue
        try:
            out.append(normalise_origin(item))
        except ValueError as exc:
            raise ScheduleError(f"{where}: {key}: {exc}") from exc
    return out


def _check_overlaps(schedule: Schedule) -> None:
    """Two layers of the same kind must not both apply to one origin and HTS on one date: that is
    almost always a forgotten end date, and it would double-count a duty."""
    layers = schedule.layers
    for i, a in enumerate(layers):
        for b in layers[i + 1 :]:
            if a.kind != b.kind or not _prefixes_overlap(a.hts_prefixes, b.hts_prefixes):
                continue
            if a.id in b.stacks_with or b.id in a.stacks_with:
                continue
            if not _dates_overlap(a, b) or not _origins_overlap(a, b):
                continue
            raise ScheduleError(
                f"layers {a.id!r} ({a.origin_file}) and {b.id!r} ({b.origin_file}) are both {a.kind} "
                "for the same origin, HTS and dates; end one (effective_to is exclusive) or use 'replaces'"
            )


def _prefixes_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return any(x.startswith(y) or y.startswith(x) for x in a for y in b)


def _dates_overlap(a: Layer, b: Layer) -> bool:
    a_start, b_start = a.effective_from or date.min, b.effective_from or date.min
    a_end, b_end = a.effective_to or date.max, b.effective_to or date.max
    return a_start < b_end and b_start < a_end


def _origins_overlap(a: Layer, b: Layer) -> bool:
    if ANY_ORIGIN in a.origins and ANY_ORIGIN in b.origins:
        return True
    if ANY_ORIGIN in a.origins:
        return any(a.applies_to_origin(o) for o in b.origins)
    if ANY_ORIGIN in b.origins:
        return any(b.applies_to_origin(o) for o in a.origins)
    return bool((a.origins - a.exclude_origins) & (b.origins - b.exclude_origins))


def sources_end_text(day: date | None) -> str:
    """How every priced figure names where the schedule's sources end: "sources end DATE"."""
    return f"sources end {day}" if day else "sources end not stated"

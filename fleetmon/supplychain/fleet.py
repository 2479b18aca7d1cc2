"""The typed fleet the analytics work on: `FleetUnit` values, built from plain records (a units JSON
file, a simulator manifest, later database rows) joined with inventory records and the catalog.

This is the one place where loose input is turned into typed units; the analytics never see raw dicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from collectors import firmware as firmware_catalog
from collectors import models as device_catalog
from collectors.sample import is_down
from fleetmon.supplychain.catalog import Catalog, ModelSpec, shipped_catalog
from fleetmon.supplychain.errors import UnitsFileError
from fleetmon.supplychain.origin import (
    InventoryRecord,
    Origin,
    OriginBasis,
    OriginDefault,
    declared_origin,
    default_origin,
)
from fleetmon.supplychain.tariffs import DEFAULT_HTS, normalise_hts

# Whether our own states are outages is collectors.sample.is_down's call; these are the words other
# tools' units files use for one. Either way the measured hashrate is not a measurement (not 0 TH/s).
FOREIGN_OUTAGE_WORDS = frozenset({"offline", "down", "unknown"})


@dataclass(frozen=True)
class FleetUnit:
    """One miner as the supply-chain analytics see it. Hashrates in tera-units of the unit's own
    `algorithm` per second (TH/s of bitcoin only when it is SHA-256); None means not known."""

    serial: str | None
    model: str | None  # as reported by the device
    manufacturer: str | None  # catalog maker, None when unresolved
    catalog_model: str | None  # catalog model name, None when unresolved
    firmware_vendor: str | None
    hashrate_ths: float | None  # measured
    nominal_hashrate_ths: float | None
    origin: Origin
    customs_value_usd: float | None
    entry_date: date | None
    hts_code: str = DEFAULT_HTS
    ip: str | None = None
    make: str | None = None  # raw make string (e.g. "antminer"), kept for display
    algorithm: str = device_catalog.SHA256  # from the record, else the device catalog; SHA-256 if unknown
    liquidation_date: date | None = None  # when CBP liquidated the entry; None: not known
    firmware_publisher: str | None = None  # who publishes the firmware (collectors.firmware), None: unknown
    firmware_publisher_country: str | None = None  # that publisher's HQ country (ISO alpha-2)

    @property
    def key(self) -> str:
        """A stable identity for ordering and display: serial, else IP, else model."""
        return self.serial or self.ip or self.model or "?"


def build_unit(
    record: Mapping[str, object],
    *,
    inventory: Mapping[str, InventoryRecord] | None = None,
    catalog: Catalog | None = None,
    defaults: tuple[OriginDefault, ...] | None = None,
    record_origin: bool = True,
    model_names_maker: bool = True,
) -> FleetUnit:
    """A FleetUnit from one plain record (units file or manifest entry) and its inventory line.

    Precedence for origin: inventory evidence, then an origin in the record itself (when
    `record_origin`: an inventory, once joined, is the authority, so a manifest's country without
    evidence is not taken as the operator's knowledge), then the maker/model/year default, then
    unknown. Raises ValueError for invalid field values.
    """
    cat = catalog or shipped_catalog()
    serial = _text(record, "serial")
    inv = inventory.get(serial) if inventory is not None and serial else None
    reported_model = _text(record, "model") or (inv.model if inv else None)
    make = _text(record, "make") or _text(record, "manufacturer")
    spec: ModelSpec | None = None
    if reported_model and (make or model_names_maker):
        spec = cat.resolve(reported_model, make)
    maker = spec.maker if spec else None
    if maker is None and make:
        found = cat.manufacturer(make)
        maker = found.name if found else None

    state = (_text(record, "state") or "").lower()
    measured = _number(record, "hashrate_ths")
    if is_down(state) or state in FOREIGN_OUTAGE_WORDS:
        measured = None
    nominal = _number(record, "nominal_hashrate_ths")
    if nominal is None and spec is not None:
        nominal = spec.hashrate_ths
    algorithm = _text(record, "algorithm")
    if algorithm is None and reported_model:
        row = device_catalog.catalog().lookup(reported_model, make, loose=True)
        algorithm = row.algorithm if row is not None else None

    entry = inv.entry_date if inv and inv.entry_date else _date(record, "entry_date")
    value = (
        inv.customs_value_usd
        if inv and inv.customs_value_usd is not None
        else _number(record, "customs_value_usd")
    )
    hts = (inv.hts_code if inv else None) or _text(record, "hts_code") or DEFAULT_HTS
    normalise_hts(hts)

    origin: Origin
    record_country = _text(record, "assembly_country")
    if inv is not None and inv.origin is not None:
        origin = inv.origin
    elif record_country and (record_origin or _text(record, "origin_evidence")):
        origin = declared_origin(record_country, _text(record, "origin_evidence"))
    else:
        year = entry.year if entry else (spec.release_year if spec else None)
        origin = default_origin(maker, spec.model if spec else None, year, defaults)

    publisher, publisher_country = firmware_publisher(record, make)
    return FleetUnit(
        serial=serial,
        model=reported_model,
        manufacturer=maker,
        catalog_model=spec.model if spec else None,
        firmware_vendor=_text(record, "firmware_vendor"),
        hashrate_ths=measured,
        nominal_hashrate_ths=nominal,
        origin=origin,
        customs_value_usd=value,
        entry_date=entry,
        hts_code=hts,
        ip=_text(record, "ip"),
        make=make,
        algorithm=algorithm or device_catalog.SHA256,
        liquidation_date=(
            inv.liquidation_date if inv and inv.liquidation_date else _date(record, "liquidation_date")
        ),
        firmware_publisher=publisher,
        firmware_publisher_country=publisher_country,
    )


def firmware_publisher(record: Mapping[str, object], make: str | None) -> tuple[str | None, str | None]:
    """(publisher, HQ country) of the record's firmware: as the record states them, else the firmware
    catalog's family for its make and firmware vendor; None where neither says (never guessed).

    The record's make may be lower case ("antminer", as units files write it): families match by make
    case-insensitively. The country is only taken with a publisher: a country alone names nobody.
    """
    publisher = _text(record, "firmware_publisher")
    if publisher is not None:
        return publisher, _text(record, "firmware_publisher_country")
    vendor = _text(record, "firmware_vendor")
    if vendor is None:
        return None, None
    family = firmware_catalog.family_of(_catalog_make(make), vendor)
    if family is None or family.publisher is None:
        return None, None
    return family.publisher, family.hq_country


def _catalog_make(make: str | None) -> str | None:
    if make is None:
        return None
    for family in firmware_catalog.families():
        if family.make is not None and family.make.lower() == make.lower():
            return family.make
    return make


def build_units(
    records: Iterable[Mapping[str, object]],
    *,
    inventory: Mapping[str, InventoryRecord] | None = None,
    catalog: Catalog | None = None,
) -> list[FleetUnit]:
    """FleetUnits for many records; raises UnitsFileError naming the record index on a bad value."""
    units: list[FleetUnit] = []
    for index, record in enumerate(records):
        try:
            units.append(
                build_unit(record, inventory=inventory, catalog=catalog, record_origin=inventory is None)
            )
        except ValueError as exc:
            raise UnitsFileError(f"record #{index}: {exc}") from exc
    return units


def load_units_file(path: Path, inventory: Mapping[str, InventoryRecord] | None = None) -> list[FleetUnit]:
    """Read a JSON list of unit records (or {"devices": [...]}, as a simulator manifest may be)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnitsFileError(f"{path}: cannot read units JSON: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("devices", data.get("units"))
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise UnitsFileError(f"{path}: expected a JSON list of objects (or {{'devices': [...]}})")
    try:
        return build_units(data, inventory=inventory)
    except UnitsFileError as exc:
        raise UnitsFileError(f"{path}: {exc}") from exc


def with_origin(unit: FleetUnit, country: str, basis: OriginBasis, reasoning: str) -> FleetUnit:
    """The unit with another origin (used by scenarios)."""
    origin = Origin(country=country, basis=basis, confidence=1.0, evidence="scenario", reasoning=reasoning)
    return replace(unit, origin=origin)


def _text(record: Mapping[str, object], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise ValueError(f"{key} must be a string, not {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _number(record: Mapping[str, object], key: str) -> float | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number")
    try:
        number = float(value)
    except ValueError as exc:
        raise ValueError(f"{key} {value!r} is not a number") from exc
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{key} must be a non-negative finite number, not {value!r}")
    return number


def _date(record: Mapping[str, object], key: str) -> date | None:
    value = _text(record, key)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{key} {value!r} is not YYYY-MM-DD") from exc

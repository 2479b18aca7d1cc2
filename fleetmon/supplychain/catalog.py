"""The hardware catalog of the supply chain: manufacturers (with HQ country), models (nominal specs,
price) and the model strings devices report, mapped to catalog rows.

Models are not kept here: they are the rows of the one device catalog, `collectors/data/models.csv`,
read through `collectors.models` (plain frozen dataclasses), that carry a `figures_source`; a row
without one holds hardware facts only and is not a supply-chain model. Manufacturers (HQ country,
brands) are supply-chain facts and live in data/manufacturers.csv, each row with its source. Model
strings are resolved by collectors' one normaliser in its loose form (case, spaces, underscores,
maker prefixes, Whatsminer revision tags such as `_VE40`, firmware names, parenthesised notes and
hashrate bins); a string it cannot map resolves to None, never to a guess.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from collectors import models as device_catalog
from fleetmon.supplychain.errors import CatalogDataError


@dataclass(frozen=True)
class Manufacturer:
    """A maker of mining hardware and where it is headquartered."""

    name: str
    hq_country: str | None  # ISO alpha-2, current HQ; None where no source says (never guessed)
    former_hq_country: str | None  # set where the HQ moved (Canaan: CN -> SG)
    brands: tuple[str, ...]
    makes: tuple[str, ...]  # lower-case makes devices report, from the device catalog's rows
    sources: str
    notes: str


@dataclass(frozen=True)
class ModelSpec:
    """One catalog model: nominal figures as published (None where no source gives them)."""

    maker: str
    model: str
    hashrate_ths: float | None
    power_w: float | None
    efficiency_jth: float | None
    release_year: int | None
    typical_price_usd: float | None  # public deal or street price, not a list price
    source: str

    @property
    def price_per_ths(self) -> float | None:
        """Typical price in USD per nominal TH/s, where both are known."""
        if self.typical_price_usd is None or not self.hashrate_ths:
            return None
        return self.typical_price_usd / self.hashrate_ths


@dataclass(frozen=True)
class Catalog:
    """Manufacturers, models and aliases, with lookups."""

    manufacturers: tuple[Manufacturer, ...]
    models: tuple[ModelSpec, ...]
    aliases: dict[str, tuple[str, str]]  # normalised alias -> (maker, model)

    def manufacturer(self, name: str | None) -> Manufacturer | None:
        """The manufacturer by name, brand or make string (case-insensitive), or None."""
        if not name:
            return None
        key = name.strip().lower()
        for maker in self.manufacturers:
            names = {maker.name.lower(), *(b.lower() for b in maker.brands), *maker.makes}
            if key in names:
                return maker
        return None

    def model(self, maker: str, model: str) -> ModelSpec | None:
        """The catalog row for an exact (maker, model) pair, or None."""
        return next((m for m in self.models if m.maker == maker and m.model == model), None)

    def resolve(self, reported: str | None, make_hint: str | None = None) -> ModelSpec | None:
        """The catalog model a device's reported model string denotes, or None when unknown.

        `make_hint` (e.g. "antminer" from identification) narrows ambiguous strings and rejects
        a match from another maker.
        """
        if not reported:
            return None
        hint = self.manufacturer(make_hint) if make_hint else None
        for candidate in normalise_model(reported):
            hit = self.aliases.get(candidate)
            if hit is None:
                continue
            if hint is not None and hit[0] != hint.name:
                continue
            return self.model(*hit)
        return None


def normalise_model(text: str) -> list[str]:
    """The lookup keys of a reported model string, most specific first (collectors' loose normaliser)."""
    return device_catalog.model_keys(text, loose=True)


# ---------------------------------------------------------------------------------------------- loading


@cache
def shipped_catalog() -> Catalog:
    """The catalog: data/manufacturers.csv plus the sourced rows of collectors' device catalog."""
    return load_catalog(_read("manufacturers.csv"), device_catalog.catalog().models)


def _read(name: str) -> tuple[str, str]:
    return name, (resources.files("fleetmon.supplychain") / "data" / name).read_text("utf-8")


def load_catalog(manufacturers_csv: tuple[str, str], rows: tuple[device_catalog.ModelSpec, ...]) -> Catalog:
    """Build a catalog from the manufacturers (filename, text) and the device catalog's rows; raises
    CatalogDataError naming the file and line, or the model."""
    makes_of: dict[str, set[str]] = {}
    for spec in rows:
        makes_of.setdefault(spec.manufacturer, set()).add(spec.make.lower())
    makers = tuple(
        _parse_manufacturer(name, line, row, tuple(sorted(makes_of.get(row.get("maker", ""), ()))))
        for name, line, row in _rows(manufacturers_csv)
    )
    maker_names = {m.name for m in makers}
    models: list[ModelSpec] = []
    aliases: dict[str, tuple[str, str]] = {}
    for row in rows:
        if not row.figures_source:
            continue  # hardware facts only: known to the collectors, not a supply-chain model
        if row.manufacturer not in maker_names:
            raise CatalogDataError(f"model {row.name!r}: manufacturer {row.manufacturer!r} is unknown")
        models.append(
            ModelSpec(
                maker=row.manufacturer,
                model=row.name,
                hashrate_ths=row.nominal_ths,
                power_w=row.nominal_w,
                efficiency_jth=row.efficiency_jth,
                release_year=row.release_year,
                typical_price_usd=row.typical_price_usd,
                source=row.figures_source,
            )
        )
        target = (row.manufacturer, row.name)
        for spelling in (row.name, *row.aliases):
            for key in normalise_model(spelling)[:1]:
                if aliases.setdefault(key, target) != target:
                    raise CatalogDataError(f"model {row.name!r}: {spelling!r} also names {aliases[key]}")
    return Catalog(manufacturers=makers, models=tuple(models), aliases=aliases)


def _rows(named: tuple[str, str]) -> list[tuple[str, int, dict[str, str]]]:
    name, text = named
    reader = csv.DictReader(io.StringIO(text))
    out = []
    for row in reader:
        if None in row:
            raise CatalogDataError(f"{name}:{reader.line_num}: more fields than the header")
        out.append((name, reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return out


def _parse_manufacturer(name: str, line: int, row: dict[str, str], makes: tuple[str, ...]) -> Manufacturer:
    for key in ("maker", "sources"):
        if not row.get(key):
            raise CatalogDataError(f"{name}:{line}: '{key}' is empty")
    return Manufacturer(
        name=row["maker"],
        hq_country=row.get("hq_country", "").upper() or None,
        former_hq_country=row.get("former_hq_country", "").upper() or None,
        brands=tuple(b for b in row.get("brands", "").split(";") if b),
        makes=makes,
        sources=row["sources"],
        notes=row.get("notes", ""),
    )

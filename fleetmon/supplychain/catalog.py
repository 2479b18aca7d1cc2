"""The hardware catalog: manufacturers (with HQ country), models (nominal specs, price) and the model
strings devices report, mapped to catalog rows.

Data lives in reviewed CSV files under data/ (each row carries its source). Alias resolution
normalises case, spaces, underscores and known suffixes (Whatsminer revision tags such as `_VE40`,
firmware names, parenthesised notes, hashrate bins); a string it cannot map resolves to None, never to
a guess.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fleetmon.supplychain.errors import CatalogDataError


@dataclass(frozen=True)
class Manufacturer:
    """A maker of mining hardware and where it is headquartered."""

    name: str
    hq_country: str  # ISO alpha-2, current HQ
    former_hq_country: str | None  # set where the HQ moved (Canaan: CN -> SG)
    brands: tuple[str, ...]
    makes: tuple[str, ...]  # lower-case "make" strings devices or the simulator use for this maker
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
        for candidate in _candidates(reported):
            hit = self.aliases.get(candidate)
            if hit is None:
                continue
            if hint is not None and hit[0] != hint.name:
                continue
            return self.model(*hit)
        return None


_REVISION = re.compile(r"[_ ]?v[a-z]?\d{2}$")  # Whatsminer hardware revision: _VE40, VG30, V20
_PARENS = re.compile(r"\([^)]*\)")
_FIRMWARE_WORDS = re.compile(r"\b(hiveon|vnish|braiins|bos\+?|luxos|blissz)\b.*$")
_HASHRATE_BIN = re.compile(r"\s*\d+(\.\d+)?\s*t(h)?(/s)?$")
_MAKER_PREFIX = re.compile(r"^(antminer|whatsminer|avalonminer|avalon|microbt|bitmain|canaan)\s+")


def normalise_model(text: str) -> str:
    """Lower-case, single-spaced, without revision tags, firmware names, notes or hashrate bins."""
    value = text.split("\n", 1)[0].lower().replace("_", " ")
    value = _PARENS.sub(" ", value)
    value = _FIRMWARE_WORDS.sub("", value)
    value = " ".join(value.split())
    value = _HASHRATE_BIN.sub("", value).strip()
    value = _REVISION.sub("", value).strip()
    # "M30S+VE40" has no separator before the revision tag; "_VE40" became " ve40" above.
    return " ".join(value.split())


def _candidates(reported: str) -> list[str]:
    """Normalised forms to look up, most specific first: as reported, then without a maker prefix."""
    first = normalise_model(reported)
    out = [first]
    stripped = _MAKER_PREFIX.sub("", first)
    if stripped != first:
        out.append(stripped)
    return out


# ---------------------------------------------------------------------------------------------- loading


@cache
def shipped_catalog() -> Catalog:
    """The catalog shipped in fleetmon/supplychain/data (loaded once, immutable)."""
    return load_catalog(
        _read("manufacturers.csv"),
        _read("models.csv"),
        _read("model_aliases.csv"),
    )


def _read(name: str) -> tuple[str, str]:
    return name, (resources.files("fleetmon.supplychain") / "data" / name).read_text("utf-8")


def load_catalog(
    manufacturers_csv: tuple[str, str], models_csv: tuple[str, str], aliases_csv: tuple[str, str]
) -> Catalog:
    """Build a catalog from (filename, text) pairs; raises CatalogDataError naming file and line."""
    makers = tuple(_parse_manufacturer(name, line, row) for name, line, row in _rows(manufacturers_csv))
    maker_names = {m.name for m in makers}
    models = tuple(_parse_model(name, line, row, maker_names) for name, line, row in _rows(models_csv))
    model_keys = {(m.maker, m.model) for m in models}
    aliases: dict[str, tuple[str, str]] = {}
    for name, line, row in _rows(aliases_csv):
        target = (row["maker"], row["model"])
        if target not in model_keys:
            raise CatalogDataError(f"{name}:{line}: alias {row['alias']!r} points at unknown model {target}")
        if not row.get("source"):
            raise CatalogDataError(f"{name}:{line}: alias {row['alias']!r} has no source")
        key = normalise_model(row["alias"])
        if key in aliases and aliases[key] != target:
            raise CatalogDataError(f"{name}:{line}: alias {row['alias']!r} maps to two models")
        aliases[key] = target
    # Every catalog name resolves to itself.
    for spec in models:
        aliases.setdefault(normalise_model(spec.model), (spec.maker, spec.model))
    return Catalog(manufacturers=makers, models=models, aliases=aliases)


def _rows(named: tuple[str, str]) -> list[tuple[str, int, dict[str, str]]]:
    name, text = named
    reader = csv.DictReader(io.StringIO(text))
    out = []
    for row in reader:
        if None in row:
            raise CatalogDataError(f"{name}:{reader.line_num}: more fields than the header")
        out.append((name, reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return out


def _parse_manufacturer(name: str, line: int, row: dict[str, str]) -> Manufacturer:
    for key in ("maker", "hq_country", "sources"):
        if not row.get(key):
            raise CatalogDataError(f"{name}:{line}: '{key}' is empty")
    return Manufacturer(
        name=row["maker"],
        hq_country=row["hq_country"].upper(),
        former_hq_country=row.get("former_hq_country", "").upper() or None,
        brands=tuple(b for b in row.get("brands", "").split(";") if b),
        makes=tuple(m.lower() for m in row.get("makes", "").split(";") if m),
        sources=row["sources"],
        notes=row.get("notes", ""),
    )


def _parse_model(name: str, line: int, row: dict[str, str], makers: set[str]) -> ModelSpec:
    if row.get("maker") not in makers:
        raise CatalogDataError(f"{name}:{line}: unknown maker {row.get('maker')!r}")
    if not row.get("model") or not row.get("source"):
        raise CatalogDataError(f"{name}:{line}: 'model' and 'source' must not be empty")

    def number(key: str) -> float | None:
        raw = row.get(key, "")
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError as exc:
            raise CatalogDataError(f"{name}:{line}: {key} {raw!r} is not a number") from exc
        if value <= 0:
            raise CatalogDataError(f"{name}:{line}: {key} must be positive")
        return value

    year = number("release_year")
    return ModelSpec(
        maker=row["maker"],
        model=row["model"],
        hashrate_ths=number("hashrate_ths"),
        power_w=number("power_w"),
        efficiency_jth=number("efficiency_jth"),
        release_year=int(year) if year is not None else None,
        typical_price_usd=number("typical_price_usd"),
        source=row["source"],
    )

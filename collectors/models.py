"""The device catalog: one row per miner model, read from `collectors/data/models.csv`, and the one
normaliser that maps the model strings devices send to those rows.

A new model is a new row in the CSV, never a class. Each row holds the canonical name, make (the brand a
device reports: Antminer, Whatsminer, Avalon, ...), manufacturer (the company: Bitmain, MicroBT, Canaan,
...), hashing algorithm, hashboards, chips per board, fans, nominal hashrate (tera-units of its own
algorithm per second) and power (W), nameplate efficiency, release year and typical price, with the
source of the hardware facts (`hardware_source`) and of the figures (`figures_source`), and the wire
spellings that mean the model (`;`-separated, their sources in `spellings_source`). Nothing is invented:
an unknown figure is an empty cell (None). A row with an empty `figures_source` is known to the
collectors only (hardware facts, no sourced commercial figures); the supply chain
(`fleetmon.supplychain.catalog`) reads the same rows through `catalog()` and keeps those with a source.

An unknown model still works: `lookup` returns None and the sample simply has no expectations.

`ghs_unit_ths` is what one unit of an Antminer "GHS" field is worth in tera-units for the model's
algorithm: cgminer forks kept the SHA-256 key names on other coins (an L3+ "GHS 5s" of 504 is 504 MH/s).
The other firmware families in collectors (Whatsminer, Avalon, Braiins OS, LuxOS) run SHA-256 only and
name their unit in the key (`MHS 1m`) or report TH/s (Whatsminer API v3).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

SHA256 = "SHA-256"
ALGORITHMS = frozenset(
    {SHA256, "Scrypt", "X11", "Ethash", "Equihash", "Blake2S", "Eaglesong", "kHeavyHash", "Blake2B+SHA3"}
)
"""The algorithm names the catalog may use (a row naming another is a data error)."""


def is_sha256(algorithm: str | None) -> bool:
    """True for bitcoin hashrate: SHA-256, or not stated (samples from before samples carried the
    algorithm, and unknown models, whose units are read as SHA-256's anyway)."""
    return algorithm is None or algorithm == SHA256


GHS_UNIT_THS = {SHA256: 1e-3, "Scrypt": 1e-6, "X11": 1e-6, "Ethash": 1e-6, "Equihash": 1e-9}
"""Tera-units per unit of a stock Antminer `GHS` field, by algorithm: GH/s on SHA-256, MH/s on Scrypt
(L3+), X11 (D3) and Ethash (E3), kSol/s on Equihash (Z11). Where the reply carries `rate_unit` or unit
text, that wins (collectors.drivers.antminer)."""


class CatalogError(ValueError):
    """The catalog data file is malformed (message names file, line and column)."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One catalog row: what a model is and what it should do when healthy (None where unsourced)."""

    name: str
    make: str
    manufacturer: str
    algorithm: str = SHA256
    boards: int | None = None
    chips_per_board: int | None = None
    fans: int | None = None
    nominal_ths: float | None = None
    nominal_w: float | None = None
    efficiency_jth: float | None = None
    release_year: int | None = None
    typical_price_usd: float | None = None
    hardware_source: str = ""
    figures_source: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def ghs_unit_ths(self) -> float:
        """Tera-units per unit of the Antminer `GHS` fields on this model's algorithm."""
        return GHS_UNIT_THS.get(self.algorithm, 1e-3)


# ------------------------------------------------------------------------------------------ normaliser
_PARENS = re.compile(r"\([^)]*\)")
_MAKER_PREFIX = re.compile(
    r"^(bitmain|microbt|canaan|bitdeer|auradine)?\s*(antminer|whatsminer|avalonminer|avalon|sealminer|teraflux)?\s*"
)
_FIRMWARE_WORDS = re.compile(r"\b(hiveon|vnish|braiins|bos\+?|luxos|blissz)\b.*$")
_HASHRATE_BIN = re.compile(r"\s*\d+(\.\d+)?\s*t(h)?(/s)?$")
_REVISION = re.compile(r"v[a-z]?\d{2}[a-z]?$")  # Whatsminer hardware revision: _VE40, VG30, V20


def _key(text: str) -> str:
    key = _MAKER_PREFIX.sub("", " ".join(text.split()))
    # Bitmain's Type strings abbreviate with a period ("Antminer S21 XP Hyd."); inventories do not.
    key = key.replace("hydro", "hyd").replace("hyd.", "hyd")
    return re.sub(r"[\s_\-]", "", key)


def model_keys(model: str, *, loose: bool = False) -> list[str]:
    """Lookup keys for a model string, most specific first.

    Lower-case, first line only, parenthesised notes and the maker/brand prefix dropped, spaces, `_`
    and `-` removed, `Hydro` and `Hyd.` read as `Hyd` (`Antminer S19 XP Hydro` -> `s19xphyd`); then
    the same without a Whatsminer revision tag (`M30S+_VE40` -> `m30s+`). `loose` also drops a
    trailing firmware name (`T21 vnish 1.2`) and hashrate bin (`S19j Pro 104T`): right for an inventory
    string, wrong for identification, where `Antminer D3 Blissz v2.06` must stay unknown so the
    firmware is asked who it is.
    """
    text = _PARENS.sub(" ", model.split("\n", 1)[0].lower())
    if loose:
        text = _HASHRATE_BIN.sub("", _FIRMWARE_WORDS.sub("", text).strip())
    key = _key(text)
    keys = [key] if key else []
    base = _REVISION.sub("", key)
    if base and base != key:
        keys.append(base)
    return keys


# ------------------------------------------------------------------------------------------ loading
def _rows(name: str, text: str) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        if None in row:
            raise CatalogError(f"{name}:{reader.line_num}: more fields than the header")
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


def parse_catalog(text: str, name: str = "models.csv") -> tuple[ModelSpec, ...]:
    """Catalog rows from CSV text; raises CatalogError naming the line and column of a bad cell."""
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for line, row in _rows(name, text):

        def number(column: str, line: int = line, row: dict[str, str] = row) -> float | None:
            raw = row.get(column, "")
            if not raw:
                return None
            try:
                value = float(raw)
            except ValueError as exc:
                raise CatalogError(f"{name}:{line}: {column} {raw!r} is not a number") from exc
            if not value > 0 or value == float("inf"):
                raise CatalogError(f"{name}:{line}: {column} must be a positive number")
            return value

        def whole(column: str) -> int | None:
            value = number(column)
            return int(value) if value is not None else None

        for column in ("name", "make", "manufacturer", "algorithm"):
            if not row.get(column):
                raise CatalogError(f"{name}:{line}: '{column}' is empty")
        if row["algorithm"] not in ALGORITHMS:
            raise CatalogError(f"{name}:{line}: unknown algorithm {row['algorithm']!r}")
        if row["name"] in seen:
            raise CatalogError(f"{name}:{line}: {row['name']!r} appears twice")
        seen.add(row["name"])
        specs.append(
            ModelSpec(
                name=row["name"],
                make=row["make"],
                manufacturer=row["manufacturer"],
                algorithm=row["algorithm"],
                boards=whole("boards"),
                chips_per_board=whole("chips_per_board"),
                fans=int(row["fans"]) if row.get("fans") == "0" else whole("fans"),
                nominal_ths=number("nominal_ths"),
                nominal_w=number("nominal_w"),
                efficiency_jth=number("efficiency_jth"),
                release_year=whole("release_year"),
                typical_price_usd=number("typical_price_usd"),
                hardware_source=row.get("hardware_source", ""),
                figures_source=row.get("figures_source", ""),
                aliases=tuple(a.strip() for a in row.get("wire_spellings", "").split(";") if a.strip()),
            )
        )
    return tuple(specs)


LOOKUP_MEMO = 4096
"""Distinct (model, make) questions `Catalog.lookup` remembers (a fleet has a few dozen models)."""


@dataclass(frozen=True)
class Catalog:
    """The rows and their index by normalised spelling."""

    models: tuple[ModelSpec, ...]
    _index: dict[str, list[ModelSpec]] = field(init=False, repr=False, compare=False)
    _makers: dict[str, str] = field(init=False, repr=False, compare=False)
    _looked_up: dict[tuple[str | None, str | None, bool], ModelSpec | None] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_looked_up", {})
        makers: dict[str, str] = {}
        for spec in self.models:  # the first row naming a make or manufacturer answers for it
            for name in (spec.make, spec.manufacturer):
                makers.setdefault(_maker_key(name), spec.manufacturer)
        object.__setattr__(self, "_makers", makers)
        index: dict[str, list[ModelSpec]] = {}
        for spec in self.models:
            for spelling in (spec.name, *spec.aliases):
                for key in model_keys(spelling)[:1]:
                    rows = index.setdefault(key, [])
                    if spec not in rows:
                        rows.append(spec)
        object.__setattr__(self, "_index", index)

    def lookup(self, model: str | None, make: str | None = None, *, loose: bool = False) -> ModelSpec | None:
        """The row for a wire model string (a Whatsminer revision falls back to the base model), or None.

        `make` (a make or manufacturer, any case) rejects rows of another maker.
        Answers are remembered (the rows never change): every poll of every device asks, with the few
        model strings a fleet has; a cache of LOOKUP_MEMO entries at most, emptied when full.
        """
        key = (model, make, loose)
        try:
            return self._looked_up[key]
        except KeyError:
            pass
        found = next(iter(self.matches(model, make, loose=loose)), None)
        if len(self._looked_up) >= LOOKUP_MEMO:
            self._looked_up.clear()
        self._looked_up[key] = found
        return found

    def matches(self, model: str | None, make: str | None = None, *, loose: bool = False) -> list[ModelSpec]:
        """Every row the string may denote, most specific first (for callers that filter further)."""
        if not model:
            return []
        wanted = _maker_key(make) if make else None
        found: list[ModelSpec] = []
        for key in model_keys(model, loose=loose):
            for spec in self._index.get(key, ()):
                maker_ok = wanted is None or wanted in (_maker_key(spec.make), _maker_key(spec.manufacturer))
                if maker_ok and spec not in found:
                    found.append(spec)
        return found

    def manufacturer_of(self, make: str | None) -> str | None:
        """The company behind a make (`Antminer` -> `Bitmain`, `AvalonMiner` -> `Canaan`), or None."""
        return self._makers.get(_maker_key(make)) if make else None


def _maker_key(text: str) -> str:
    key = text.strip().lower()
    return "avalon" if key == "avalonminer" else key


@cache
def catalog() -> Catalog:
    """The shipped catalog (collectors/data/models.csv), loaded once."""
    text = (resources.files("collectors") / "data" / "models.csv").read_text("utf-8")
    return Catalog(parse_catalog(text))


def lookup(model: str | None, make: str | None = None) -> ModelSpec | None:
    """The shipped catalog's row for a wire model string, or None (see `Catalog.lookup`)."""
    return catalog().lookup(model, make)


def branded_lookup(model: str | None, make: str | None) -> ModelSpec | None:
    """The catalog row for a device whose brand is named, or None: with no make (a clone, an unknown
    brand) a model string that looks like a known one proves nothing (docs/samples.md)."""
    return lookup(model, make) if make else None


def manufacturer_of(make: str | None) -> str | None:
    """The company behind a make, from the shipped catalog (None when unknown)."""
    return catalog().manufacturer_of(make)

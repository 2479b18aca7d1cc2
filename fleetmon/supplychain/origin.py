"""Assembly origin per unit: from inventory evidence, else a maker/model/year default marked inferred,
else unknown; and the inventory CSV those records come from.

Confidence is a number in [0, 1] that says how much weight the origin can bear, not a probability
computed from data. The evidence levels and their confidences are [E] choices documented in
docs/supply-chain.md: a customs entry (CBP Form 7501) is what was declared and accepted at entry,
a commercial invoice carries the supplier's certificate of origin (CBP contested such certificates in
the CleanSpark and IREN cases), and a "Made in" nameplate names where the box was closed up, which
need not be where the hashboards were built (the substantial-transformation test, supply-chain.md §2).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources

from fleetmon.supplychain.errors import CatalogDataError, InventoryError
from fleetmon.supplychain.tariffs import DEFAULT_HTS, normalise_hts, normalise_origin


class OriginBasis(StrEnum):
    """How a unit's assembly country is known."""

    DECLARED = "declared"  # from a record the operator holds (inventory evidence)
    INFERRED = "inferred"  # from the maker/model/year default table
    UNKNOWN = "unknown"


class Evidence(StrEnum):
    """The document an origin record rests on."""

    CUSTOMS_ENTRY = "customs_entry"
    COMMERCIAL_INVOICE = "commercial_invoice"
    NAMEPLATE = "nameplate"
    OPERATOR_RECORD = "operator_record"  # a country given without saying on what evidence


EVIDENCE_CONFIDENCE: dict[Evidence, float] = {
    Evidence.CUSTOMS_ENTRY: 0.9,
    Evidence.COMMERCIAL_INVOICE: 0.75,
    Evidence.NAMEPLATE: 0.6,
    Evidence.OPERATOR_RECORD: 0.5,
}


@dataclass(frozen=True)
class Origin:
    """Where a unit was assembled, how that is known, and how much to trust it."""

    country: str | None  # ISO alpha-2; None when unknown
    basis: OriginBasis
    confidence: float
    evidence: str | None = None  # an Evidence value, or "default" for inferred
    reasoning: str = ""
    sources: str = ""
    # From a default: assumed shares of the maker's units assembled in named countries ([E] figures),
    # e.g. (("US", 0.1),) for a line that builds some of them; they never set `country` on their own.
    shares: tuple[tuple[str, float], ...] = ()


UNKNOWN_ORIGIN = Origin(
    country=None, basis=OriginBasis.UNKNOWN, confidence=0.0, reasoning="no record, no default"
)


@dataclass(frozen=True)
class OriginDefault:
    """One row of origin_defaults.csv: a maker-level (optionally model-level) default by year."""

    maker: str
    model: str | None
    year_from: int | None
    year_to: int | None
    country: str | None  # None: deliberately unknown
    alternatives: tuple[str, ...]
    confidence: float
    reasoning: str
    sources: str
    shares: tuple[tuple[str, float], ...] = ()  # country -> assumed share of units [E]

    def matches(self, maker: str, model: str | None, year: int | None) -> bool:
        """True when this default covers the maker, model and year (an open year matches any)."""
        if maker != self.maker or (self.model is not None and model != self.model):
            return False
        if year is None:  # year unknown: the newest default (the one open towards today)
            return self.year_to is None
        if self.year_from is not None and year < self.year_from:
            return False
        return self.year_to is None or year <= self.year_to


@cache
def shipped_defaults() -> tuple[OriginDefault, ...]:
    """The origin defaults shipped in data/origin_defaults.csv."""
    text = (resources.files("fleetmon.supplychain") / "data" / "origin_defaults.csv").read_text("utf-8")
    return parse_defaults(text, "origin_defaults.csv")


def parse_defaults(text: str, filename: str) -> tuple[OriginDefault, ...]:
    """Parse an origin-defaults CSV; raises CatalogDataError naming the file and line."""
    reader = csv.DictReader(io.StringIO(text))
    out: list[OriginDefault] = []
    for row in reader:
        where = f"{filename}:{reader.line_num}"
        clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not clean.get("maker") or not clean.get("reasoning") or not clean.get("sources"):
            raise CatalogDataError(f"{where}: maker, reasoning and sources are required")
        try:
            country = normalise_origin(clean["assembly_country"]) if clean.get("assembly_country") else None
            confidence = float(clean.get("confidence") or "0")
            year_from = int(clean["year_from"]) if clean.get("year_from") else None
            year_to = int(clean["year_to"]) if clean.get("year_to") else None
        except ValueError as exc:
            raise CatalogDataError(f"{where}: {exc}") from exc
        if not 0.0 <= confidence <= 1.0:
            raise CatalogDataError(f"{where}: confidence must be within [0, 1]")
        shares = _shares(clean.get("shares", ""), where)
        out.append(
            OriginDefault(
                maker=clean["maker"],
                model=clean.get("model") or None,
                year_from=year_from,
                year_to=year_to,
                country=country,
                alternatives=tuple(a for a in clean.get("alternatives", "").split(";") if a),
                confidence=confidence if country else 0.0,
                reasoning=clean["reasoning"],
                sources=clean["sources"],
                shares=shares,
            )
        )
    return tuple(out)


def _shares(text: str, where: str) -> tuple[tuple[str, float], ...]:
    """`US:0.1;MY:0.2` as ((country, share), ...); CatalogDataError unless each share is in [0, 1]
    and they sum to at most 1."""
    out: list[tuple[str, float]] = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        country, _, share_text = item.partition(":")
        try:
            share = float(share_text)
            out.append((normalise_origin(country), share))
        except ValueError as exc:
            raise CatalogDataError(f"{where}: shares item {item!r} is not COUNTRY:FRACTION ({exc})") from exc
        if not 0.0 <= share <= 1.0:
            raise CatalogDataError(f"{where}: share {item!r} must be within [0, 1]")
    if sum(share for _, share in out) > 1.0:
        raise CatalogDataError(f"{where}: shares sum to more than 1")
    return tuple(out)


def declared_origin(country: str, evidence: str | None) -> Origin:
    """An origin from an operator's record; unknown evidence strings raise ValueError."""
    kind = Evidence(evidence) if evidence else Evidence.OPERATOR_RECORD
    return Origin(
        country=normalise_origin(country),
        basis=OriginBasis.DECLARED,
        confidence=EVIDENCE_CONFIDENCE[kind],
        evidence=kind.value,
        reasoning=f"declared on {kind.value.replace('_', ' ')}",
    )


def default_origin(
    maker: str | None,
    model: str | None,
    year: int | None,
    defaults: tuple[OriginDefault, ...] | None = None,
) -> Origin:
    """The inferred origin for a maker/model/year, or unknown (with the reason) when none applies.

    A model-specific row beats a maker-wide one.
    """
    if maker is None:
        return UNKNOWN_ORIGIN
    rows = shipped_defaults() if defaults is None else defaults
    matching = [d for d in rows if d.matches(maker, model, year)]
    if not matching:
        return Origin(None, OriginBasis.UNKNOWN, 0.0, reasoning=f"no origin default for {maker}")
    best = sorted(matching, key=lambda d: d.model is None)[0]
    if best.country is None:
        return Origin(
            None,
            OriginBasis.UNKNOWN,
            0.0,
            evidence="default",
            reasoning=best.reasoning,
            sources=best.sources,
            shares=best.shares,
        )
    alternatives = f" (alternatives: {', '.join(best.alternatives)})" if best.alternatives else ""
    return Origin(
        country=best.country,
        basis=OriginBasis.INFERRED,
        confidence=best.confidence,
        evidence="default",
        reasoning=best.reasoning + alternatives,
        sources=best.sources,
        shares=best.shares,
    )


# ------------------------------------------------------------------------------------------- inventory

INVENTORY_COLUMNS = (
    "serial",
    "model",
    "assembly_country",
    "origin_evidence",
    "customs_value_usd",
    "entry_date",
)
# liquidation_date: when CBP liquidated the entry (its duty became final), which decides how an IEEPA
# refund can be claimed (exposure.py); absent, it is estimated from the entry date.
OPTIONAL_COLUMNS = ("hts_code", "liquidation_date")


@dataclass(frozen=True)
class InventoryRecord:
    """One valid inventory line: what the operator knows about one unit by serial."""

    line: int
    serial: str
    model: str | None
    origin: Origin | None
    customs_value_usd: float | None
    entry_date: date | None
    hts_code: str
    liquidation_date: date | None = None


@dataclass(frozen=True)
class InventoryRowError:
    """One rejected inventory line and why; the other lines are kept."""

    line: int
    serial: str | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" + (f" (serial {self.serial})" if self.serial else "")


@dataclass(frozen=True)
class InventoryParse:
    """The outcome of reading an inventory CSV: good records and line-level errors."""

    source: str
    records: tuple[InventoryRecord, ...]
    errors: tuple[InventoryRowError, ...]

    def by_serial(self) -> dict[str, InventoryRecord]:
        """Records keyed by serial (duplicates were rejected during parsing)."""
        return {r.serial: r for r in self.records}


def parse_inventory_csv(text: str, source: str = "<inventory>") -> InventoryParse:
    """Parse inventory CSV text. Row problems come back as errors naming the line; the good rows are kept.

    Raises InventoryError only when the file as a whole is unusable (no header, missing columns).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))  # a stray CR is a line end
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in INVENTORY_COLUMNS if c not in header]
    if missing:
        raise InventoryError(f"{source}: missing column(s) {missing}; need {list(INVENTORY_COLUMNS)}")
    reader.fieldnames = header
    records: list[InventoryRecord] = []
    errors: list[InventoryRowError] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                errors.append(InventoryRowError(line, row.get("serial"), "more fields than the header"))
                continue
            clean = {k: (v or "").strip() for k, v in row.items()}
            if not any(clean.values()):
                continue
            try:
                record = _parse_inventory_row(line, clean)
            except ValueError as exc:
                errors.append(InventoryRowError(line, clean.get("serial") or None, str(exc)))
                continue
            if record.serial in seen:
                errors.append(
                    InventoryRowError(
                        line, record.serial, f"duplicate serial (first on line {seen[record.serial]})"
                    )
                )
                continue
            seen[record.serial] = line
            records.append(record)
    except csv.Error as exc:
        raise InventoryError(f"{source}: line {reader.line_num}: unreadable CSV: {exc}") from exc
    return InventoryParse(source=source, records=tuple(records), errors=tuple(errors))


def _parse_inventory_row(line: int, row: dict[str, str]) -> InventoryRecord:
    serial = row["serial"]
    if not serial:
        raise ValueError("serial is empty")
    country = row["assembly_country"]
    evidence = row["origin_evidence"] or None
    if evidence and evidence not in {e.value for e in Evidence}:
        raise ValueError(f"origin_evidence {evidence!r} is not one of {[e.value for e in Evidence]}")
    if evidence and not country:
        raise ValueError("origin_evidence given without assembly_country")
    origin = declared_origin(country, evidence) if country else None
    value: float | None = None
    if row["customs_value_usd"]:
        try:
            value = float(row["customs_value_usd"].replace(",", "").lstrip("$"))
        except ValueError as exc:
            raise ValueError(f"customs_value_usd {row['customs_value_usd']!r} is not a number") from exc
        if not math.isfinite(value) or value < 0:
            raise ValueError("customs_value_usd must be a non-negative finite number")
    entry: date | None = None
    if row["entry_date"]:
        try:
            entry = date.fromisoformat(row["entry_date"])
        except ValueError as exc:
            raise ValueError(f"entry_date {row['entry_date']!r} is not YYYY-MM-DD") from exc
    hts = row.get("hts_code") or DEFAULT_HTS
    normalise_hts(hts)  # raises ValueError with a clear message
    liquidation: date | None = None
    if row.get("liquidation_date"):
        try:
            liquidation = date.fromisoformat(row["liquidation_date"])
        except ValueError as exc:
            raise ValueError(f"liquidation_date {row['liquidation_date']!r} is not YYYY-MM-DD") from exc
        if entry is None:
            raise ValueError("liquidation_date given without entry_date")
        if liquidation < entry:
            raise ValueError(f"liquidation_date {liquidation} is before entry_date {entry}")
    return InventoryRecord(
        line=line,
        serial=serial,
        model=row["model"] or None,
        origin=origin,
        customs_value_usd=value,
        entry_date=entry,
        hts_code=hts,
        liquidation_date=liquidation,
    )

"""Tariff exposure of a fleet at a date, and the composite exposure score (0-100).

Per unit (formulas in docs/supply-chain.md):
- replacement duty (USD)   = customs value x rate(origin, HTS, as_of): the duty to import the same unit today
- USD per TH/s             = replacement duty / hashrate
- reclassification liab.   = max(0, rate(CN, HTS, entry) - rate(origin, HTS, entry)) x customs value,
                             for units already entered (the CleanSpark/IREN precedent)
- IEEPA paid (refundable?) = sum of IEEPA layers in force at entry x customs value (Feb 2025 - Feb 2026
                             entries, by the layer dates), split by how the entry stands under CBP's CAPE
                             process on the as-of date: unliquidated or liquidated within 80 days
                             (phase 1, refundable through CAPE) against finally liquidated (under appeal)
Where the customs value is missing it is estimated from catalog price per TH/s (the model's own,
else the median of priced models released within a year of it) and flagged as estimated.
Hashrate here is nominal (the asset), falling back to measured when no nominal figure is known.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from collectors.models import SHA256
from fleetmon.supplychain.analytics import (
    Basis,
    Dimension,
    OriginQuality,
    china_dependency,
    hash_share,
    origin_quality,
)
from fleetmon.supplychain.catalog import Catalog, ModelSpec, shipped_catalog
from fleetmon.supplychain.errors import UnknownHtsError
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.tariffs import IEEPA_KINDS, Schedule, rate

CHINA = "CN"

# IEEPA refunds through CBP's CAPE portal (opened 2026-04-20), phase 1: entries not yet liquidated
# and entries within 80 days of liquidation [40]. Entries liquidated longer ago are "finally
# liquidated"; the government signalled an appeal on refunding them, so they are uncertain.
CAPE_WINDOW_DAYS = 80
# Without a liquidation date the entry is taken as liquidated this many days after entry: CBP
# liquidates about 314 days after entry [E] (docs/supply-chain.md, "IEEPA refunds").
ESTIMATED_LIQUIDATION_DAYS = 314


class RefundStatus(StrEnum):
    """How an entry that paid IEEPA duties stands for a refund on the as-of date."""

    CAPE_PHASE1 = "cape_phase1"  # unliquidated, or liquidated within 80 days: refundable through CAPE
    FINALLY_LIQUIDATED = "finally_liquidated"  # liquidated longer ago: under appeal, uncertain


# Composite score: weights sum to 1; each component lies in [0, 1]. See docs/supply-chain.md.
SCORE_WEIGHTS: dict[str, float] = {
    "effective_rate": 0.35,
    "risk_adjusted_rate": 0.25,
    "china_dependency": 0.15,
    "assembly_concentration": 0.10,
    "origin_uncertainty": 0.15,
}
RATE_HALF_POINT = 0.25  # a rate component is r / (r + 0.25): 0.5 at a 25% duty, never reaching 1


@dataclass(frozen=True)
class UnitExposure:
    """Tariff exposure of one unit at a date. Money in USD; None where it cannot be computed."""

    unit: str
    manufacturer: str | None
    model: str | None
    origin_country: str | None
    origin_basis: str
    origin_confidence: float
    hashrate_ths: float | None
    customs_value_usd: float | None
    value_estimated: bool
    value_basis: str  # "declared", "model_price", "peer_median" or "none"
    rate: float | None  # duty fraction at as_of; None when origin unknown or HTS not covered
    china_rate: float | None  # the China stack at as_of for the unit's HTS
    layers: tuple[str, ...]
    replacement_duty_usd: float | None
    usd_per_ths: float | None
    reclassification_liability_usd: float | None
    ieepa_paid_usd: float | None
    notes: tuple[str, ...] = ()
    liquidation_date: date | None = None  # given, or estimated (see liquidation_estimated)
    liquidation_estimated: bool = False
    refund_status: RefundStatus | None = None  # set when IEEPA duties were paid


@dataclass(frozen=True)
class ExposureScore:
    """The composite score and what it is made of."""

    score: float  # 0-100
    components: dict[str, float]  # each 0..1
    weights: dict[str, float]


@dataclass(frozen=True)
class FleetExposure:
    """Fleet-level tariff exposure at a date, with per-unit detail."""

    as_of: date
    schedule: str
    sources_end: date | None  # where the schedule's sources end
    warning: str | None  # set when as_of is past sources_end
    units: tuple[UnitExposure, ...]
    total_ths: float
    priced_ths: float  # hashrate with a known rate
    replacement_duty_usd: float
    estimated_value_duty_usd: float  # part of the duty resting on estimated customs values
    hashrate_weighted_rate: float | None
    usd_per_ths: float | None
    reclassification_liability_usd: float
    ieepa_refundable_usd: float  # = cape_phase1 + finally_liquidated
    ieepa_refund_cape_phase1_usd: float
    ieepa_refund_finally_liquidated_usd: float
    ieepa_units_liquidation_estimated: int  # units with IEEPA paid whose liquidation date is estimated
    units_without_rate: int
    units_without_value: int
    units_without_entry: int
    origin: OriginQuality
    score: ExposureScore


def exposure_ths(unit: FleetUnit) -> float | None:
    """Bitcoin hashrate used to weight exposure: nominal, else measured; None for a machine of another
    algorithm (its duty still counts in USD, but not per TH/s of SHA-256)."""
    if unit.algorithm != SHA256:
        return None
    return unit.nominal_hashrate_ths if unit.nominal_hashrate_ths is not None else unit.hashrate_ths


def estimate_value(unit: FleetUnit, catalog: Catalog) -> tuple[float | None, str]:
    """Customs value in USD, declared or estimated from catalog $/TH; with how it was obtained."""
    if unit.customs_value_usd is not None:
        return unit.customs_value_usd, "declared"
    ths = exposure_ths(unit)
    if ths is None:
        return None, "none"
    spec = catalog.model(unit.manufacturer or "", unit.catalog_model or "")
    if spec is not None and spec.price_per_ths is not None:
        return spec.price_per_ths * ths, "model_price"
    year = spec.release_year if spec else None
    if year is None and unit.entry_date is not None:
        year = unit.entry_date.year
    if year is None:
        return None, "none"
    peers = [m.price_per_ths for m in catalog.models if _near(m, year) and m.price_per_ths is not None]
    if not peers:
        return None, "none"
    return statistics.median(peers) * ths, "peer_median"


def refund_status(entry: date, liquidation: date | None, as_of: date) -> tuple[RefundStatus, date, bool]:
    """How an entry stands for an IEEPA refund on `as_of`: (status, liquidation date, estimated?).

    A missing liquidation date is estimated as entry + ESTIMATED_LIQUIDATION_DAYS. The entry is in
    CAPE phase 1 while `as_of` is no more than CAPE_WINDOW_DAYS after liquidation (an unliquidated
    entry, liquidation still ahead, included), and finally liquidated after that.
    """
    estimated = liquidation is None
    liquidated = entry + timedelta(days=ESTIMATED_LIQUIDATION_DAYS) if liquidation is None else liquidation
    if as_of <= liquidated + timedelta(days=CAPE_WINDOW_DAYS):
        return RefundStatus.CAPE_PHASE1, liquidated, estimated
    return RefundStatus.FINALLY_LIQUIDATED, liquidated, estimated


def _near(spec: ModelSpec, year: int) -> bool:
    return spec.release_year is not None and abs(spec.release_year - year) <= 1


def _rate(schedule: Schedule, origin: str, hts: str, on: date) -> tuple[Decimal, tuple[str, ...], Decimal]:
    """(total, layer ids, IEEPA part) at a date."""
    result = rate(schedule, origin, hts, on)
    ieepa = sum((lay.rate for lay in result.layers if lay.kind in IEEPA_KINDS), Decimal(0))
    return result.total_rate, tuple(lay.id for lay in result.layers), ieepa


def unit_exposure(
    unit: FleetUnit, schedule: Schedule, as_of: date, catalog: Catalog | None = None
) -> UnitExposure:
    """Exposure of one unit; an uncovered HTS code or unknown origin leaves the money fields None."""
    cat = catalog or shipped_catalog()
    ths = exposure_ths(unit)
    value, value_basis = estimate_value(unit, cat)
    notes: list[str] = []
    country = unit.origin.country
    unit_rate = china_rate = duty = per_ths = liability = ieepa_paid = None
    layers: tuple[str, ...] = ()
    status: RefundStatus | None = None
    liquidation: date | None = None
    liquidation_estimated = False
    try:
        china_total, _, _ = _rate(schedule, CHINA, unit.hts_code, as_of)
        china_rate = float(china_total)
        if country is not None:
            total, layers, _ = _rate(schedule, country, unit.hts_code, as_of)
            unit_rate = float(total)
            if value is not None:
                duty = value * unit_rate
                per_ths = duty / ths if ths else None
            if unit.entry_date is not None and unit.entry_date <= as_of and value is not None:
                entered, _, ieepa = _rate(schedule, country, unit.hts_code, unit.entry_date)
                china_then, _, _ = _rate(schedule, CHINA, unit.hts_code, unit.entry_date)
                liability = max(0.0, float(china_then - entered)) * value
                ieepa_paid = float(ieepa) * value
                if ieepa > 0:
                    status, liquidation, liquidation_estimated = refund_status(
                        unit.entry_date, unit.liquidation_date, as_of
                    )
        else:
            shares = ", ".join(f"{c} {share:.0%}" for c, share in unit.origin.shares)
            notes.append(
                "origin unknown: no rate"
                + (f" (the maker default assumes some units from: {shares} [E])" if shares else "")
            )
    except UnknownHtsError as exc:
        notes.append(str(exc))
    if value is None:
        notes.append("no customs value and no catalog price to estimate one")
    elif value_basis != "declared":
        notes.append(f"customs value estimated ({value_basis})")
    return UnitExposure(
        unit=unit.key,
        manufacturer=unit.manufacturer,
        model=unit.catalog_model or unit.model,
        origin_country=country,
        origin_basis=unit.origin.basis.value,
        origin_confidence=unit.origin.confidence,
        hashrate_ths=ths,
        customs_value_usd=value,
        value_estimated=value_basis not in ("declared", "none"),
        value_basis=value_basis,
        rate=unit_rate,
        china_rate=china_rate,
        layers=layers,
        replacement_duty_usd=duty,
        usd_per_ths=per_ths,
        reclassification_liability_usd=liability,
        ieepa_paid_usd=ieepa_paid,
        notes=tuple(notes),
        liquidation_date=liquidation if status else unit.liquidation_date,
        liquidation_estimated=liquidation_estimated,
        refund_status=status,
    )


def fleet_exposure(
    units: Sequence[FleetUnit], schedule: Schedule, as_of: date, catalog: Catalog | None = None
) -> FleetExposure:
    """Fleet tariff exposure at `as_of`, with the composite score."""
    cat = catalog or shipped_catalog()
    rows = tuple(unit_exposure(u, schedule, as_of, cat) for u in units)
    total_ths = sum(r.hashrate_ths or 0.0 for r in rows)
    rated = [r for r in rows if r.rate is not None and r.hashrate_ths]
    priced_ths = sum(r.hashrate_ths or 0.0 for r in rated)
    weighted = (
        sum((r.hashrate_ths or 0.0) * (r.rate or 0.0) for r in rated) / priced_ths if priced_ths else None
    )
    with_duty = [r for r in rows if r.replacement_duty_usd is not None]
    duty = sum(r.replacement_duty_usd or 0.0 for r in with_duty)
    duty_ths = sum(r.hashrate_ths or 0.0 for r in with_duty)
    return FleetExposure(
        as_of=as_of,
        schedule=schedule.name,
        sources_end=schedule.sources_end,
        warning=schedule.sources_end_warning(as_of),
        units=rows,
        total_ths=total_ths,
        priced_ths=priced_ths,
        replacement_duty_usd=duty,
        estimated_value_duty_usd=sum(r.replacement_duty_usd or 0.0 for r in with_duty if r.value_estimated),
        hashrate_weighted_rate=weighted,
        usd_per_ths=duty / duty_ths if duty_ths else None,
        reclassification_liability_usd=sum(r.reclassification_liability_usd or 0.0 for r in rows),
        ieepa_refundable_usd=sum(r.ieepa_paid_usd or 0.0 for r in rows),
        ieepa_refund_cape_phase1_usd=_refund(rows, RefundStatus.CAPE_PHASE1),
        ieepa_refund_finally_liquidated_usd=_refund(rows, RefundStatus.FINALLY_LIQUIDATED),
        ieepa_units_liquidation_estimated=sum(
            1 for r in rows if r.refund_status is not None and r.liquidation_estimated
        ),
        units_without_rate=sum(1 for r in rows if r.rate is None),
        units_without_value=sum(1 for r in rows if r.customs_value_usd is None),
        units_without_entry=sum(1 for u in units if u.entry_date is None),
        origin=origin_quality(units, Basis.NOMINAL),
        score=exposure_score(units, rows, cat),
    )


def _refund(rows: Sequence[UnitExposure], status: RefundStatus) -> float:
    return sum(r.ieepa_paid_usd or 0.0 for r in rows if r.refund_status is status)


def _saturate(rate_value: float) -> float:
    return rate_value / (rate_value + RATE_HALF_POINT) if rate_value > 0 else 0.0


def exposure_score(
    units: Sequence[FleetUnit], rows: Sequence[UnitExposure], catalog: Catalog
) -> ExposureScore:
    """Composite 0-100 score from five components in [0, 1] with fixed weights.

    Monotone in every duty rate: the two rate components are hashrate-weighted averages with weights
    that do not depend on rates, of per-unit values that never fall when a layer rate rises:
    the unit's own rate (China stack where origin is unknown: conservative), and the risk-adjusted
    rate c*own + (1-c)*max(china, own) with c the origin confidence. The other three components
    (China dependency, assembly-country HHI, share of inferred/unknown origin) do not depend on rates.
    """
    weight_sum = own_sum = risk_sum = 0.0
    for row in rows:
        if not row.hashrate_ths or row.china_rate is None:
            continue
        own = row.rate if row.rate is not None else row.china_rate
        conf = row.origin_confidence if row.rate is not None else 0.0
        risk = conf * own + (1.0 - conf) * max(row.china_rate, own)
        weight_sum += row.hashrate_ths
        own_sum += row.hashrate_ths * own
        risk_sum += row.hashrate_ths * risk
    own_avg = own_sum / weight_sum if weight_sum else 0.0
    risk_avg = risk_sum / weight_sum if weight_sum else 0.0
    china = china_dependency(units, Basis.NOMINAL, catalog)
    assembly = hash_share(units, [Dimension.ASSEMBLY_COUNTRY], Basis.NOMINAL, catalog)
    quality = origin_quality(units, Basis.NOMINAL)
    components = {
        "effective_rate": _saturate(own_avg),
        "risk_adjusted_rate": _saturate(risk_avg),
        "china_dependency": china.share,
        "assembly_concentration": (assembly.hhi or 0.0) / 10_000.0,
        "origin_uncertainty": quality.inferred_or_unknown_share,
    }
    # Clamp away float noise (an HHI of 10,000.000000002) so each component stays inside [0, 1].
    components = {k: min(1.0, max(0.0, v)) for k, v in components.items()}
    score = 100.0 * sum(SCORE_WEIGHTS[k] * v for k, v in components.items())
    return ExposureScore(
        score=min(100.0, max(0.0, score)), components=components, weights=dict(SCORE_WEIGHTS)
    )

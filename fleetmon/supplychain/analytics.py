"""Fleet concentration analytics: hash-share by dimension, HHI, China dependency, origin quality.

All functions are pure over `FleetUnit` values. Basis "measured" uses each device's measured hashrate
(devices without a measurement are left out and counted); "nominal" uses its nominal (nameplate)
hashrate. Unknown values form their own group, keyed "unknown": they are shown, never dropped.

HHI is on the 0-10,000 scale (sum of squared percentage shares), as in the DOJ guidelines.

Every figure is bitcoin (SHA-256) hashrate by default: a Scrypt, X11 or Equihash machine's rate is in
tera-units of another algorithm's hashes and adding it to TH/s of SHA-256 would be meaningless.
`hashrate` leaves such units out unless asked for their algorithm; `hash_share` reports them apart,
per algorithm, in `other_algorithms`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from collectors.models import SHA256
from fleetmon.supplychain.catalog import Catalog, shipped_catalog
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.origin import OriginBasis

UNKNOWN = "unknown"
CHINA = "CN"


class Basis(StrEnum):
    """Which hashrate a share is computed on."""

    MEASURED = "measured"
    NOMINAL = "nominal"


class Dimension(StrEnum):
    """What a fleet can be grouped by."""

    MANUFACTURER = "manufacturer"
    MANUFACTURER_COUNTRY = "manufacturer_country"
    ASSEMBLY_COUNTRY = "assembly_country"
    FIRMWARE_VENDOR = "firmware_vendor"
    FIRMWARE_PUBLISHER = "firmware_publisher"
    FIRMWARE_PUBLISHER_COUNTRY = "firmware_publisher_country"
    MODEL = "model"
    ORIGIN_BASIS = "origin_basis"


def parse_dimensions(text: str) -> tuple[Dimension, ...]:
    """ "manufacturer,assembly_country" -> dimensions; raises ValueError naming the bad one."""
    out: list[Dimension] = []
    for part in text.split(","):
        name = part.strip()
        try:
            out.append(Dimension(name))
        except ValueError as exc:
            raise ValueError(f"unknown dimension {name!r}; use {[d.value for d in Dimension]}") from exc
    if not out or len(set(out)) != len(out):
        raise ValueError("give one or more distinct dimensions")
    return tuple(out)


def hashrate(unit: FleetUnit, basis: Basis, algorithm: str = SHA256) -> float | None:
    """The unit's hashrate in tera-units/s on the given basis, or None when not known or when the unit
    hashes another algorithm than `algorithm` (bitcoin's SHA-256 by default)."""
    if unit.algorithm != algorithm:
        return None
    return unit.hashrate_ths if basis is Basis.MEASURED else unit.nominal_hashrate_ths


def dimension_value(unit: FleetUnit, dim: Dimension, catalog: Catalog) -> str:
    """The unit's group key in one dimension; "unknown" when not known."""
    value: str | None
    match dim:
        case Dimension.MANUFACTURER:
            value = unit.manufacturer
        case Dimension.MANUFACTURER_COUNTRY:
            maker = catalog.manufacturer(unit.manufacturer)
            value = maker.hq_country if maker else None
        case Dimension.ASSEMBLY_COUNTRY:
            value = unit.origin.country
        case Dimension.FIRMWARE_VENDOR:
            value = unit.firmware_vendor
        case Dimension.FIRMWARE_PUBLISHER:
            value = unit.firmware_publisher
        case Dimension.FIRMWARE_PUBLISHER_COUNTRY:
            value = unit.firmware_publisher_country
        case Dimension.MODEL:
            value = unit.catalog_model
        case Dimension.ORIGIN_BASIS:
            value = unit.origin.basis.value
    return value or UNKNOWN


@dataclass(frozen=True)
class ShareGroup:
    """One group of a hash-share breakdown."""

    key: str  # values joined by "|" in the order of `by`
    keys: dict[str, str]
    hashrate_ths: float
    share: float  # fraction of the total, 0..1
    devices: int


@dataclass(frozen=True)
class HashShare:
    """Hash-share of a fleet by one or more dimensions."""

    by: tuple[Dimension, ...]
    basis: Basis
    total_ths: float
    groups: tuple[ShareGroup, ...]  # largest first
    hhi: float | None  # 0-10,000 over the groups shown (unknown counts as one group); None if empty
    hhi_known: float | None  # the same over known groups only, shares renormalised
    devices_counted: int
    devices_without_hashrate: int  # left out: no measurement (measured) or no nominal figure
    other_algorithms: dict[str, float] = field(default_factory=dict)
    """Tera-units/s per non-SHA-256 algorithm (Scrypt, X11, ...), never added into the TH/s above."""
    devices_other_algorithm: int = 0


def hhi(shares: Sequence[float]) -> float:
    """Herfindahl-Hirschman index on the 0-10,000 scale from fractional shares summing to 1."""
    return sum((100.0 * s) ** 2 for s in shares)


def hash_share(
    units: Sequence[FleetUnit],
    by: Sequence[Dimension],
    basis: Basis = Basis.NOMINAL,
    catalog: Catalog | None = None,
) -> HashShare:
    """Group the fleet's hashrate by the given dimensions (a combination when more than one)."""
    cat = catalog or shipped_catalog()
    dims = tuple(by)
    totals: dict[tuple[str, ...], float] = {}
    counts: dict[tuple[str, ...], int] = {}
    missing = 0
    other: dict[str, float] = {}
    other_devices = 0
    for unit in units:
        if unit.algorithm != SHA256:
            other_devices += 1
            own = hashrate(unit, basis, unit.algorithm)
            if own is not None:
                other[unit.algorithm] = other.get(unit.algorithm, 0.0) + own
            continue
        ths = hashrate(unit, basis)
        if ths is None:
            missing += 1
            continue
        key = tuple(dimension_value(unit, d, cat) for d in dims)
        totals[key] = totals.get(key, 0.0) + ths
        counts[key] = counts.get(key, 0) + 1
    total = sum(totals.values())
    groups = tuple(
        ShareGroup(
            key="|".join(key),
            keys=dict(zip((d.value for d in dims), key, strict=True)),
            hashrate_ths=ths,
            share=ths / total if total > 0 else 0.0,
            devices=counts[key],
        )
        for key, ths in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    known = [g for g in groups if UNKNOWN not in g.keys.values()]
    known_total = sum(g.hashrate_ths for g in known)
    return HashShare(
        by=dims,
        basis=basis,
        total_ths=total,
        groups=groups,
        hhi=hhi([g.share for g in groups]) if total > 0 else None,
        hhi_known=hhi([g.hashrate_ths / known_total for g in known]) if known_total > 0 else None,
        devices_counted=sum(counts.values()),
        devices_without_hashrate=missing,
        other_algorithms=other,
        devices_other_algorithm=other_devices,
    )


@dataclass(frozen=True)
class OriginQuality:
    """How much hashrate rests on declared, inferred or unknown origin."""

    basis: Basis
    total_ths: float
    declared_ths: float
    inferred_ths: float
    unknown_ths: float

    @property
    def inferred_or_unknown_share(self) -> float:
        """Fraction of hashrate whose origin is not backed by a record."""
        return (self.inferred_ths + self.unknown_ths) / self.total_ths if self.total_ths > 0 else 0.0


def origin_quality(units: Sequence[FleetUnit], basis: Basis = Basis.NOMINAL) -> OriginQuality:
    """Hashrate split by how its assembly origin is known."""
    parts = {b: 0.0 for b in OriginBasis}
    for unit in units:
        ths = hashrate(unit, basis)
        if ths is not None:
            parts[unit.origin.basis] += ths
    return OriginQuality(
        basis=basis,
        total_ths=sum(parts.values()),
        declared_ths=parts[OriginBasis.DECLARED],
        inferred_ths=parts[OriginBasis.INFERRED],
        unknown_ths=parts[OriginBasis.UNKNOWN],
    )


@dataclass(frozen=True)
class ChinaDependency:
    """Hashrate made by a China-linked maker OR assembled in China, with each part and the overlap.

    "China-linked maker": HQ in China now, or formerly (Canaan moved its HQ to Singapore but is still
    commonly treated as a Chinese maker); the formerly-China part is shown on its own line.

    The software line (`firmware_china_hq_ths`: hashrate whose firmware publisher is China-HQ, per
    collectors/data/firmware.csv) is shown beside the hardware figure, not added into the union: the
    union answers "what depends on Chinese hardware", and firmware can be replaced without a customs
    entry. Firmware whose publisher or its country is unknown is `firmware_unknown_ths`, never guessed.
    """

    basis: Basis
    total_ths: float
    maker_china_hq_ths: float  # current HQ in CN
    maker_former_china_hq_ths: float  # HQ moved away from CN (Canaan)
    assembled_in_china_ths: float
    overlap_ths: float  # China-linked maker AND assembled in China
    dependent_ths: float  # union = maker + assembled - overlap
    origin_unknown_ths: float  # could add to the assembled part; not counted in it
    origin_inferred_ths: float  # part of the assembled-in-China figure that is inferred, not declared
    firmware_china_hq_ths: float = 0.0  # firmware published by a China-HQ publisher
    firmware_unknown_ths: float = 0.0  # firmware publisher or its country unknown: not counted in it

    @property
    def share(self) -> float:
        """The union as a fraction of total hashrate."""
        return self.dependent_ths / self.total_ths if self.total_ths > 0 else 0.0

    @property
    def maker_ths(self) -> float:
        """All hashrate from China-linked makers (current plus former HQ)."""
        return self.maker_china_hq_ths + self.maker_former_china_hq_ths


def china_dependency(
    units: Sequence[FleetUnit], basis: Basis = Basis.NOMINAL, catalog: Catalog | None = None
) -> ChinaDependency:
    """The China-dependency figure of the fleet, each part shown."""
    cat = catalog or shipped_catalog()
    total = maker_now = maker_former = assembled = overlap = unknown = inferred = 0.0
    firmware_cn = firmware_unknown = 0.0
    for unit in units:
        ths = hashrate(unit, basis)
        if ths is None:
            continue
        total += ths
        maker = cat.manufacturer(unit.manufacturer)
        now = maker is not None and maker.hq_country == CHINA
        former = maker is not None and not now and maker.former_hq_country == CHINA
        in_china = unit.origin.country == CHINA
        maker_now += ths if now else 0.0
        maker_former += ths if former else 0.0
        assembled += ths if in_china else 0.0
        overlap += ths if in_china and (now or former) else 0.0
        unknown += ths if unit.origin.country is None else 0.0
        inferred += ths if in_china and unit.origin.basis is OriginBasis.INFERRED else 0.0
        firmware_cn += ths if unit.firmware_publisher_country == CHINA else 0.0
        firmware_unknown += ths if unit.firmware_publisher_country is None else 0.0
    return ChinaDependency(
        basis=basis,
        total_ths=total,
        maker_china_hq_ths=maker_now,
        maker_former_china_hq_ths=maker_former,
        assembled_in_china_ths=assembled,
        overlap_ths=overlap,
        dependent_ths=maker_now + maker_former + assembled - overlap,
        origin_unknown_ths=unknown,
        origin_inferred_ths=inferred,
        firmware_china_hq_ths=firmware_cn,
        firmware_unknown_ths=firmware_unknown,
    )


def fleet_total(
    units: Sequence[FleetUnit], basis: Basis, pick: Callable[[FleetUnit], bool] = lambda _: True
) -> float:
    """Sum of hashrate on a basis over the units `pick` selects (units without a figure add 0)."""
    return sum(hashrate(u, basis) or 0.0 for u in units if pick(u))

"""Request and response models of the supply-chain API (supply-chain reports, tariffs, catalog, inventory).

Shapes follow the JSON of fleetmon.supplychain.report, which `fleetmon report supply-chain --format
json` prints too: the API answer of a report is that JSON validated into these models, so the CLI and
the API cannot drift apart silently (extra="forbid" rejects a field one side added). Rates and shares
are fractions (0.576 = 57.6%), hashrate TH/s, money USD; a figure that cannot be computed is null.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ISO2 = r"^[A-Za-z]{2}$"
HTS = r"^\d{4}(\.?\d{2}){0,3}$"
Day = date  # for fields declared after a field named `date`, which shadows the type in a class body
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"[A-Za-z0-9]")]  # not blank


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OriginOut(_Out):
    """How much hashrate rests on declared (inventory), inferred (catalog default) or unknown origin."""

    basis: str = Field(description="measured | nominal")
    total_ths: float
    declared_ths: float
    inferred_ths: float
    unknown_ths: float
    inferred_or_unknown_share: float


class ShareGroupOut(_Out):
    """One group of a hash-share breakdown; `unknown` is a group of its own."""

    key: str = Field(description="the group's values joined by `|`, in the order of `by`")
    keys: dict[str, str] = Field(description="dimension -> value")
    hashrate_ths: float
    share: float = Field(description="fraction of total_ths")
    devices: int


class HashShareOut(_Out):
    """Hash-share of the fleet by one dimension or a combination, largest group first."""

    snapshot_at: datetime | None
    by: list[str]
    basis: str = Field(description="measured | nominal")
    total_ths: float
    groups: list[ShareGroupOut]
    hhi: float | None = Field(description="Herfindahl-Hirschman index, 0-10,000, unknown as one group")
    hhi_known_only: float | None = Field(description="the same over known groups, shares renormalised")
    hhi_scale: str
    devices_counted: int
    devices_without_hashrate: int = Field(description="left out: no measurement / no nominal figure")
    other_algorithms: dict[str, float] = Field(
        default_factory=dict,
        description="tera-units/s per non-SHA-256 algorithm (Scrypt, X11, ...), never added into total_ths",
    )
    devices_other_algorithm: int = Field(
        default=0, description="devices hashing another algorithm than SHA-256"
    )
    origin: OriginOut = Field(description="origin quality of the same hashrate")


class ScoreOut(_Out):
    """The composite exposure score (0-100) and its components (each 0-1) with their weights."""

    score: float
    components: dict[str, float]
    weights: dict[str, float]


class UnitExposureOut(_Out):
    """Tariff exposure of one unit."""

    unit: str = Field(description="serial, else IP")
    manufacturer: str | None
    model: str | None
    origin_country: str | None
    origin_basis: str = Field(description="declared | inferred | unknown")
    origin_confidence: float
    hashrate_ths: float | None
    customs_value_usd: float | None
    value_estimated: bool
    value_basis: str = Field(description="declared | model_price | peer_median | none")
    rate: float | None
    china_rate: float | None
    layers: list[str]
    replacement_duty_usd: float | None
    usd_per_ths: float | None
    reclassification_liability_usd: float | None
    ieepa_paid_usd: float | None
    refund_status: Literal["cape_phase1", "finally_liquidated"] | None = Field(
        description="for units that paid IEEPA duties: how the entry stands under CBP's CAPE process"
    )
    liquidation_date: date | None
    liquidation_estimated: bool = Field(description="liquidation date = entry + 314 days [E]")
    notes: list[str]


class ExposureSummaryOut(_Out):
    """Fleet tariff exposure at a date, without the per-unit rows."""

    as_of: date
    schedule: str
    sources_end: date | None = Field(description="the last date the schedule's sources speak for")
    warning: str | None = Field(description="set when `as_of` is past sources_end")
    total_ths: float
    priced_ths: float
    replacement_duty_usd: float
    estimated_value_duty_usd: float
    hashrate_weighted_rate: float | None
    usd_per_ths: float | None
    reclassification_liability_usd: float
    ieepa_refundable_usd: float = Field(description="cape_phase1 + finally_liquidated")
    ieepa_refund_cape_phase1_usd: float = Field(
        description="entries unliquidated or liquidated within 80 days: refundable through CAPE phase 1"
    )
    ieepa_refund_finally_liquidated_usd: float = Field(
        description="entries liquidated more than 80 days ago: under appeal, uncertain"
    )
    ieepa_units_liquidation_estimated: int
    units_without_rate: int
    units_without_value: int
    units_without_entry: int
    origin: OriginOut
    score: ScoreOut


class ExposureOut(ExposureSummaryOut):
    """Fleet tariff exposure at a date with one page of per-unit rows (largest duty first)."""

    snapshot_at: datetime | None
    units: list[UnitExposureOut]
    units_total: int
    limit: int
    offset: int


class ResourcingIn(BaseModel):
    """Re-source `ths` TH/s of hashrate assembled in `from` to `to`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_origin: str = Field(alias="from", pattern=ISO2, description="ISO alpha-2")
    to_origin: str = Field(alias="to", pattern=ISO2, description="ISO alpha-2")
    ths: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class LayerIn(BaseModel):
    """A duty layer in the schedule-file format (docs/supply-chain.md, "Tariff schedule")."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=100)]
    name: Text
    kind: Literal[
        "mfn", "section_301", "section_232", "ieepa_fentanyl", "ieepa_reciprocal", "section_122", "other"
    ]
    rate: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False, description="fraction: 0.25 = 25%")]
    effective_from: date | None = Field(default=None, description="first entry date in force")
    effective_to: date | None = Field(default=None, description="first entry date no longer in force")
    origins: list[Annotated[str, Field(pattern=r"^([A-Za-z]{2}|\*)$")]] = Field(min_length=1)
    exclude_origins: list[Annotated[str, Field(pattern=ISO2)]] = Field(default_factory=list)
    hts: list[Annotated[str, Field(pattern=HTS)]] = Field(min_length=1, description="HTS prefixes")
    source: Text
    notes: str = ""
    flags: list[Literal["U", "E"]] = Field(default_factory=list)
    replaces: list[str] = Field(default_factory=list, description="ids of layers this one replaces")
    stacks_with: list[str] = Field(
        default_factory=list, description="ids of same-kind layers this one deliberately adds to"
    )


class ScenarioIn(BaseModel):
    """A what-if scenario: override layer rates, add layers, move hashrate between origins."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="scenario", max_length=200)
    as_of: date | None = Field(default=None, description="default: today")
    rate_overrides: dict[str, Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="layer id -> new rate (fraction)"
    )
    add_layers: list[LayerIn] = Field(default_factory=list)
    resourcing: list[ResourcingIn] = Field(default_factory=list)


class ScenarioOut(_Out):
    """Exposure before and after a scenario and the differences (after - before)."""

    snapshot_at: datetime | None
    scenario: str
    moved_ths: float
    before: ExposureSummaryOut
    after: ExposureSummaryOut
    delta: dict[str, float]


class LayerOut(_Out):
    """One duty layer in force, with its source and flags (U: unverified, E: estimate)."""

    id: str
    name: str
    kind: str
    rate: float
    effective_from: date | None
    effective_to_exclusive: date | None
    origins: list[str]
    exclude_origins: list[str]
    source: str
    notes: str
    flags: list[str]


class RateOut(_Out):
    """The duty for goods of `origin` under `hts` entered on `date`: the sum of the layers in force."""

    origin: str
    hts: str
    date: date
    total_rate: float = Field(description="fraction: 0.576 means 57.6%")
    total_percent: float
    schedule: str
    layers: list[LayerOut]
    notes: list[str]
    sources_end: Day | None = Field(description="the last date the schedule's sources speak for")
    past_sources_end: bool
    warning: str | None = Field(description="set when `date` is past sources_end")


class CatalogModelOut(_Out):
    """One catalog model with its nominal figures (null where no source gives them)."""

    manufacturer: str
    manufacturer_country: str | None
    model: str
    hashrate_ths: float | None
    power_w: float | None
    efficiency_jth: float | None
    release_year: int | None
    typical_price_usd: float | None = Field(description="public deal or street price, not a list price")
    price_per_ths: float | None
    source: str


class InventoryRowErrorOut(_Out):
    """One rejected inventory line."""

    line: int
    serial: str | None
    message: str


class InventoryImportOut(_Out):
    """What an inventory import did. Good rows are stored even when others are rejected."""

    source: str
    stored: int = Field(description="serials stored for the first time")
    updated: int = Field(description="serials already stored, whose record was replaced")
    rejected: int
    errors: list[InventoryRowErrorOut]
    snapshot_refreshed: bool = Field(description="false when the snapshot could not be rebuilt yet")

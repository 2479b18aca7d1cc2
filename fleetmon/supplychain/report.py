"""The supply-chain report: every analytic for one fleet at one date, rendered as JSON, a text table or CSV.

JSON shapes here are the ones the API returns (hash-share: {"by", "basis", "total_ths", "groups": [...]}).
Every rendering states how much hashrate rests on inferred or unknown origin.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from fleetmon.supplychain.analytics import (
    Basis,
    ChinaDependency,
    Dimension,
    HashShare,
    OriginQuality,
    china_dependency,
    hash_share,
    origin_quality,
)
from fleetmon.supplychain.catalog import Catalog, shipped_catalog
from fleetmon.supplychain.exposure import FleetExposure, UnitExposure, fleet_exposure
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.scenarios import ScenarioResult
from fleetmon.supplychain.tariffs import Schedule, sources_end_text

REPORT_DIMENSIONS: tuple[tuple[Dimension, ...], ...] = (
    (Dimension.MANUFACTURER,),
    (Dimension.MANUFACTURER_COUNTRY,),
    (Dimension.ASSEMBLY_COUNTRY,),
    (Dimension.FIRMWARE_VENDOR,),
    (Dimension.FIRMWARE_PUBLISHER,),
    (Dimension.FIRMWARE_PUBLISHER_COUNTRY,),
    (Dimension.MANUFACTURER, Dimension.ASSEMBLY_COUNTRY),
    (Dimension.ASSEMBLY_COUNTRY, Dimension.ORIGIN_BASIS),
)


@dataclass(frozen=True)
class SupplyChainReport:
    """All supply-chain analytics of one fleet at one date."""

    as_of: date
    devices: int
    shares: tuple[HashShare, ...]  # each dimension set, nominal then measured
    china: dict[Basis, ChinaDependency]
    origin: dict[Basis, OriginQuality]
    exposure: FleetExposure


def build_report(
    units: Sequence[FleetUnit], schedule: Schedule, as_of: date, catalog: Catalog | None = None
) -> SupplyChainReport:
    """Compute the whole report."""
    cat = catalog or shipped_catalog()
    shares = tuple(hash_share(units, dims, basis, cat) for basis in Basis for dims in REPORT_DIMENSIONS)
    return SupplyChainReport(
        as_of=as_of,
        devices=len(units),
        shares=shares,
        china={b: china_dependency(units, b, cat) for b in Basis},
        origin={b: origin_quality(units, b) for b in Basis},
        exposure=fleet_exposure(units, schedule, as_of, cat),
    )


# ------------------------------------------------------------------------------------------------ JSON


def hash_share_json(share: HashShare) -> dict[str, object]:
    """The API shape of a hash-share breakdown."""
    return {
        "by": [d.value for d in share.by],
        "basis": share.basis.value,
        "total_ths": share.total_ths,
        "groups": [
            {
                "key": g.key,
                "keys": g.keys,
                "hashrate_ths": g.hashrate_ths,
                "share": g.share,
                "devices": g.devices,
            }
            for g in share.groups
        ],
        "hhi": share.hhi,
        "hhi_known_only": share.hhi_known,
        "hhi_scale": "0-10000",
        "devices_counted": share.devices_counted,
        "devices_without_hashrate": share.devices_without_hashrate,
        "other_algorithms": share.other_algorithms,
        "devices_other_algorithm": share.devices_other_algorithm,
    }


def origin_json(quality: OriginQuality) -> dict[str, object]:
    """Declared / inferred / unknown hashrate."""
    return {
        "basis": quality.basis.value,
        "total_ths": quality.total_ths,
        "declared_ths": quality.declared_ths,
        "inferred_ths": quality.inferred_ths,
        "unknown_ths": quality.unknown_ths,
        "inferred_or_unknown_share": quality.inferred_or_unknown_share,
    }


def china_json(china: ChinaDependency) -> dict[str, object]:
    """The China-dependency figure with each part."""
    return {
        "basis": china.basis.value,
        "total_ths": china.total_ths,
        "dependent_ths": china.dependent_ths,
        "share": china.share,
        "maker_china_hq_ths": china.maker_china_hq_ths,
        "maker_former_china_hq_ths": china.maker_former_china_hq_ths,
        "assembled_in_china_ths": china.assembled_in_china_ths,
        "overlap_ths": china.overlap_ths,
        "origin_unknown_ths": china.origin_unknown_ths,
        "assembled_in_china_inferred_ths": china.origin_inferred_ths,
        "firmware_china_hq_ths": china.firmware_china_hq_ths,
        "firmware_unknown_ths": china.firmware_unknown_ths,
        "definition": "China-HQ maker (current, or former: Canaan, now SG) OR assembled in CN; union = "
        "maker + assembled - overlap. The software line (firmware published by a China-HQ publisher) "
        "is shown beside it, not added into the union",
    }


def unit_exposure_json(row: UnitExposure) -> dict[str, object]:
    """One unit's exposure."""
    return {
        "unit": row.unit,
        "manufacturer": row.manufacturer,
        "model": row.model,
        "origin_country": row.origin_country,
        "origin_basis": row.origin_basis,
        "origin_confidence": row.origin_confidence,
        "hashrate_ths": row.hashrate_ths,
        "customs_value_usd": row.customs_value_usd,
        "value_estimated": row.value_estimated,
        "value_basis": row.value_basis,
        "rate": row.rate,
        "china_rate": row.china_rate,
        "layers": list(row.layers),
        "replacement_duty_usd": row.replacement_duty_usd,
        "usd_per_ths": row.usd_per_ths,
        "reclassification_liability_usd": row.reclassification_liability_usd,
        "ieepa_paid_usd": row.ieepa_paid_usd,
        "refund_status": row.refund_status.value if row.refund_status else None,
        "liquidation_date": _iso(row.liquidation_date),
        "liquidation_estimated": row.liquidation_estimated,
        "notes": list(row.notes),
    }


def exposure_json(exp: FleetExposure, *, per_unit: bool = True) -> dict[str, object]:
    """Fleet exposure at a date, with the score and its components."""
    out: dict[str, object] = {
        "as_of": exp.as_of.isoformat(),
        "schedule": exp.schedule,
        "sources_end": _iso(exp.sources_end),
        "warning": exp.warning,
        "total_ths": exp.total_ths,
        "priced_ths": exp.priced_ths,
        "replacement_duty_usd": exp.replacement_duty_usd,
        "estimated_value_duty_usd": exp.estimated_value_duty_usd,
        "hashrate_weighted_rate": exp.hashrate_weighted_rate,
        "usd_per_ths": exp.usd_per_ths,
        "reclassification_liability_usd": exp.reclassification_liability_usd,
        "ieepa_refundable_usd": exp.ieepa_refundable_usd,
        "ieepa_refund_cape_phase1_usd": exp.ieepa_refund_cape_phase1_usd,
        "ieepa_refund_finally_liquidated_usd": exp.ieepa_refund_finally_liquidated_usd,
        "ieepa_units_liquidation_estimated": exp.ieepa_units_liquidation_estimated,
        "units_without_rate": exp.units_without_rate,
        "units_without_value": exp.units_without_value,
        "units_without_entry": exp.units_without_entry,
        "origin": origin_json(exp.origin),
        "score": {"score": exp.score.score, "components": exp.score.components, "weights": exp.score.weights},
    }
    if per_unit:
        out["units"] = [unit_exposure_json(r) for r in exp.units]
    return out


def scenario_json(result: ScenarioResult) -> dict[str, object]:
    """Before/after of a what-if scenario."""
    return {
        "scenario": result.scenario.name,
        "moved_ths": result.moved_ths,
        "before": exposure_json(result.before, per_unit=False),
        "after": exposure_json(result.after, per_unit=False),
        "delta": result.delta,
    }


def report_json(report: SupplyChainReport) -> dict[str, object]:
    """The whole report as JSON-ready data."""
    return {
        "as_of": report.as_of.isoformat(),
        "devices": report.devices,
        "origin": {b.value: origin_json(q) for b, q in report.origin.items()},
        "hash_share": [hash_share_json(s) for s in report.shares],
        "china_dependency": {b.value: china_json(c) for b, c in report.china.items()},
        "tariff_exposure": exposure_json(report.exposure),
    }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


# ----------------------------------------------------------------------------------------------- table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.0f}"


def report_table(report: SupplyChainReport) -> str:
    """A plain-text rendering for the terminal."""
    lines: list[str] = [f"Supply-chain report as of {report.as_of} ({report.devices} devices)", ""]
    for basis, q in report.origin.items():
        lines.append(
            f"Origin ({basis.value}): {q.total_ths:,.1f} TH/s; declared {q.declared_ths:,.1f}, "
            f"inferred {q.inferred_ths:,.1f}, unknown {q.unknown_ths:,.1f} "
            f"({_pct(q.inferred_or_unknown_share)} rests on inferred or unknown origin)"
        )
    for share in report.shares:
        lines += [
            "",
            f"Hash-share by {','.join(d.value for d in share.by)} ({share.basis.value}), "
            f"total {share.total_ths:,.1f} TH/s, HHI {share.hhi or 0:,.0f} (0-10,000)",
        ]
        lines += [
            f"  {g.key:<36} {g.hashrate_ths:>12,.1f} TH/s {_pct(g.share):>7} {g.devices:>6} dev"
            for g in share.groups
        ]
        if share.devices_without_hashrate:
            lines.append(
                f"  ({share.devices_without_hashrate} devices without a {share.basis.value} hashrate)"
            )
        lines += [
            f"  (not SHA-256, not in the TH/s above: {algorithm} {ths:,.6g} tera-units/s)"
            for algorithm, ths in sorted(share.other_algorithms.items())
        ]
    for basis, c in report.china.items():
        lines += [
            "",
            f"China dependency ({basis.value}): {c.dependent_ths:,.1f} TH/s = {_pct(c.share)} "
            f"of {c.total_ths:,.1f}",
            f"  made by China-HQ maker        {c.maker_china_hq_ths:>12,.1f} TH/s",
            f"  made by former China-HQ maker {c.maker_former_china_hq_ths:>12,.1f} TH/s (Canaan, HQ now SG)",
            f"  assembled in China            {c.assembled_in_china_ths:>12,.1f} TH/s "
            f"(of which inferred {c.origin_inferred_ths:,.1f})",
            f"  overlap (both)                {c.overlap_ths:>12,.1f} TH/s",
            f"  origin unknown (not counted)  {c.origin_unknown_ths:>12,.1f} TH/s",
            f"  software: China-HQ firmware   {c.firmware_china_hq_ths:>12,.1f} TH/s (not in the union)",
            f"  firmware publisher unknown    {c.firmware_unknown_ths:>12,.1f} TH/s",
        ]
    e = report.exposure
    lines += [
        "",
        f"Tariff exposure at {e.as_of} (schedule {e.schedule}, {sources_end_text(e.sources_end)})",
        *([f"  WARNING: {e.warning}"] if e.warning else []),
        f"  replacement duty              {_usd(e.replacement_duty_usd)} "
        f"(of which on estimated values {_usd(e.estimated_value_duty_usd)})",
        f"  hashrate-weighted rate        {_pct(e.hashrate_weighted_rate)} over {e.priced_ths:,.1f} TH/s",
        f"  USD per TH/s                  {'-' if e.usd_per_ths is None else f'${e.usd_per_ths:,.2f}'}",
        f"  reclassification liability   {_usd(e.reclassification_liability_usd)}",
        f"  IEEPA paid, maybe refundable  {_usd(e.ieepa_refundable_usd)}",
        f"    via CAPE phase 1            {_usd(e.ieepa_refund_cape_phase1_usd)} "
        "(unliquidated or liquidated within 80 days)",
        f"    finally liquidated          {_usd(e.ieepa_refund_finally_liquidated_usd)} "
        f"(under appeal, uncertain; {e.ieepa_units_liquidation_estimated} liquidation dates estimated)",
        f"  units without rate/value/entry {e.units_without_rate}/{e.units_without_value}/"
        f"{e.units_without_entry}",
        f"  exposure score                {e.score.score:.1f} / 100",
    ]
    lines += [f"    {k:<24} {v:.3f} x {e.score.weights[k]:.2f}" for k, v in e.score.components.items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- CSV

CSV_COLUMNS = ("section", "by", "basis", "key", "hashrate_ths", "share", "devices", "rate", "usd", "note")
"""Every supply-chain CSV (the whole report, hash-share, exposure, scenario) is this one long format."""


class CsvWriter(Protocol):
    """What the row functions need of a csv.writer (whose own type is private to typeshed)."""

    def writerow(self, row: Iterable[object], /) -> object:
        """Write one row."""


def _csv(write_rows: Callable[[CsvWriter], None]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    write_rows(writer)
    return buffer.getvalue()


def _origin_rows(writer: CsvWriter, q: OriginQuality) -> None:
    for key, ths in (("declared", q.declared_ths), ("inferred", q.inferred_ths), ("unknown", q.unknown_ths)):
        share = ths / q.total_ths if q.total_ths else 0.0
        writer.writerow(["origin_basis", "origin_basis", q.basis.value, key, ths, share, "", "", "", ""])


def _share_rows(writer: CsvWriter, s: HashShare) -> None:
    by = ",".join(d.value for d in s.by)
    for g in s.groups:
        writer.writerow(
            ["hash_share", by, s.basis.value, g.key, g.hashrate_ths, g.share, g.devices, "", "", ""]
        )
    writer.writerow(["hhi", by, s.basis.value, "", "", "", "", "", "", s.hhi])


def _exposure_rows(
    writer: CsvWriter, e: FleetExposure, section: str = "exposure", *, units: bool = True
) -> None:
    for key, usd in (
        ("replacement_duty", e.replacement_duty_usd),
        ("replacement_duty_on_estimated_values", e.estimated_value_duty_usd),
        ("reclassification_liability", e.reclassification_liability_usd),
        ("ieepa_refundable", e.ieepa_refundable_usd),
        ("ieepa_refund_cape_phase1", e.ieepa_refund_cape_phase1_usd),
        ("ieepa_refund_finally_liquidated", e.ieepa_refund_finally_liquidated_usd),
    ):
        writer.writerow([section, "", "nominal", key, "", "", "", "", usd, ""])
    writer.writerow(
        [
            section,
            "",
            "nominal",
            "hashrate_weighted_rate",
            e.priced_ths,
            "",
            "",
            e.hashrate_weighted_rate,
            "",
            "",
        ]
    )
    writer.writerow([section, "", "nominal", "score", "", "", "", "", "", e.score.score])
    writer.writerow([section, "", "nominal", "sources_end", "", "", "", "", "", _iso(e.sources_end) or ""])
    if not units:
        return
    for row in e.units:
        writer.writerow(
            [
                "unit_exposure",
                row.origin_country or "unknown",
                row.origin_basis,
                row.unit,
                row.hashrate_ths,
                "",
                1,
                row.rate,
                row.replacement_duty_usd,
                "; ".join(row.notes),
            ]
        )


def report_csv(report: SupplyChainReport) -> str:
    """Long-format CSV: one row per hash-share group, China-dependency part, exposure figure and unit."""

    def rows(writer: CsvWriter) -> None:
        for q in report.origin.values():
            _origin_rows(writer, q)
        for s in report.shares:
            _share_rows(writer, s)
        for basis, c in report.china.items():
            for key, ths in (
                ("dependent", c.dependent_ths),
                ("maker_china_hq", c.maker_china_hq_ths),
                ("maker_former_china_hq", c.maker_former_china_hq_ths),
                ("assembled_in_china", c.assembled_in_china_ths),
                ("overlap", c.overlap_ths),
                ("origin_unknown", c.origin_unknown_ths),
                ("firmware_china_hq", c.firmware_china_hq_ths),
                ("firmware_unknown", c.firmware_unknown_ths),
            ):
                share = ths / c.total_ths if c.total_ths else 0.0
                writer.writerow(["china_dependency", "", basis.value, key, ths, share, "", "", "", ""])
        _exposure_rows(writer, report.exposure)

    return _csv(rows)


def hash_share_csv(share: HashShare, quality: OriginQuality) -> str:
    """One hash-share breakdown and, beside it, how much of that hashrate has inferred or unknown origin."""

    def rows(writer: CsvWriter) -> None:
        _share_rows(writer, share)
        _origin_rows(writer, quality)

    return _csv(rows)


def exposure_csv(exposure: FleetExposure) -> str:
    """Fleet exposure figures, origin quality, then one row per unit."""

    def rows(writer: CsvWriter) -> None:
        _origin_rows(writer, exposure.origin)
        _exposure_rows(writer, exposure)

    return _csv(rows)


def scenario_csv(result: ScenarioResult) -> str:
    """Fleet figures before and after a scenario (sections scenario_before/_after) and the deltas."""

    def rows(writer: CsvWriter) -> None:
        _exposure_rows(writer, result.before, "scenario_before", units=False)
        _exposure_rows(writer, result.after, "scenario_after", units=False)
        writer.writerow(["scenario_delta", "", "nominal", "moved_ths", result.moved_ths, "", "", "", "", ""])
        for key, value in result.delta.items():
            writer.writerow(["scenario_delta", "", "nominal", key, "", "", "", "", "", value])

    return _csv(rows)

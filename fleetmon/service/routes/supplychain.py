"""`/api/v1/supply-chain`: hash-share, tariff exposure, what-if scenarios and the whole report.

Reports read the units of the current snapshot and are cached per snapshot version
(fleetmon.service.supplychain). Each answers JSON, or the long-format CSV of
fleetmon.supplychain.report with `?format=csv` (or `Accept: text/csv` without a format).
Routes are sync: FastAPI runs them in its thread pool, so a report computed at the first request
of a new snapshot never blocks the event loop.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import ErrorOut
from fleetmon.service.supplychain import (
    exposure_at,
    exposure_out,
    full_report,
    hash_share_out,
    report_cache,
    scenario_out,
    scenario_result,
    share_of,
)
from fleetmon.service.supplychain_schemas import ExposureOut, HashShareOut, ScenarioIn, ScenarioOut
from fleetmon.supplychain.analytics import Basis, Dimension, parse_dimensions
from fleetmon.supplychain.errors import SupplyChainError
from fleetmon.supplychain.report import (
    exposure_csv,
    hash_share_csv,
    report_csv,
    report_json,
    scenario_csv,
)

router = APIRouter(prefix="/api/v1/supply-chain", tags=["supply chain"], responses=AUTH_ERRORS)
READ = [Depends(require(Permission.READ_SUPPLY_CHAIN))]

_DIMENSION = "|".join(d.value for d in Dimension)
BY_PATTERN = rf"^({_DIMENSION})(,({_DIMENSION}))*$"
CONFLICT: dict[int | str, dict[str, object]] = {
    409: {
        "model": ErrorOut,
        "description": "the scenario does not fit the loaded schedule (a layer id it does not have) or "
        "contradicts itself (a layer that ends before it starts)",
    }
}


class ReportFormat(StrEnum):
    """How a report is answered."""

    JSON = "json"
    CSV = "csv"


def csv_doc(description: str) -> dict[int | str, dict[str, object]]:
    """The OpenAPI entry of a 200 answer that may also be CSV (beside the route's JSON model)."""
    return {200: {"description": description, "content": {"text/csv": {"schema": {"type": "string"}}}}}


def wants_csv(request: Request, fmt: ReportFormat | None) -> bool:
    """`format=csv`, or no format and an Accept header that asks for text/csv."""
    if fmt is not None:
        return fmt is ReportFormat.CSV
    return "text/csv" in request.headers.get("accept", "")


def csv_response(text: str, name: str) -> Response:
    """A CSV download."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


FormatQuery = Annotated[
    ReportFormat | None, Query(alias="format", description="json (default) or csv; or send Accept: text/csv")
]
AsOfQuery = Annotated[date | None, Query(description="entry date for the duty rates (default: today)")]


@router.get(
    "/hash-share",
    response_model=HashShareOut,
    dependencies=READ,
    responses=csv_doc("the breakdown, as JSON or CSV"),
)
def get_hash_share(
    runtime: RuntimeDep,
    request: Request,
    by: Annotated[
        str,
        Query(
            pattern=BY_PATTERN,
            description="a dimension, or several separated by commas for a combination: "
            + ", ".join(d.value for d in Dimension),
        ),
    ] = Dimension.MANUFACTURER.value,
    basis: Annotated[Basis, Query(description="measured (reported) or nominal (catalog) hashrate")] = (
        Basis.MEASURED
    ),
    fmt: FormatQuery = None,
) -> HashShareOut | Response:
    """Share of the fleet's hashrate per group; unknown is its own group, and `origin` says how much of
    the hashrate has an inferred or unknown assembly origin."""
    # The pattern admits only known names; a name given twice counts once.
    dims = parse_dimensions(",".join(dict.fromkeys(by.split(","))))
    cache = report_cache(runtime.live)
    if wants_csv(request, fmt):
        share, quality = share_of(cache, dims, basis)
        return csv_response(hash_share_csv(share, quality), "hash-share")
    return hash_share_out(cache, dims, basis)


@router.get(
    "/tariff-exposure",
    response_model=ExposureOut,
    dependencies=READ,
    responses=csv_doc("fleet figures and units (CSV: every unit)"),
)
def get_tariff_exposure(
    runtime: RuntimeDep,
    request: Request,
    *,
    as_of: AsOfQuery = None,
    limit: Annotated[int, Query(ge=0, le=10_000, description="units per page (JSON)")] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    fmt: FormatQuery = None,
) -> ExposureOut | Response:
    """Replacement duty, hashrate-weighted rate, USD per TH/s, reclassification liability, refundable
    IEEPA duty and the composite score (with its components) at `as_of`; units largest duty first."""
    cache = report_cache(runtime.live)
    day = as_of or date.today()
    if wants_csv(request, fmt):
        return csv_response(exposure_csv(exposure_at(cache, day)), f"tariff-exposure-{day}")
    return exposure_out(cache, day, limit, offset)


@router.post(
    "/scenarios",
    response_model=ScenarioOut,
    dependencies=READ,
    responses={**csv_doc("before, after and deltas"), **CONFLICT},
)
def post_scenario(
    runtime: RuntimeDep, request: Request, scenario: ScenarioIn, fmt: FormatQuery = None
) -> ScenarioOut | Response:
    """Exposure before and after a what-if scenario (computed for this request; nothing is stored)."""
    cache = report_cache(runtime.live)
    data = scenario.model_dump(mode="json", by_alias=True, exclude={"as_of"})
    try:
        result = scenario_result(cache, data, scenario.as_of or date.today())
    except SupplyChainError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    if wants_csv(request, fmt):
        return csv_response(scenario_csv(result), "scenario")
    return scenario_out(cache, result)


@router.get(
    "/report",
    dependencies=READ,
    responses={
        200: {
            "description": "the report of `fleetmon report supply-chain --format json` (or csv)",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def get_report(
    runtime: RuntimeDep, request: Request, as_of: AsOfQuery = None, fmt: FormatQuery = None
) -> Response:
    """Every analytic at once (hash-shares, China dependency, origin, exposure with every unit)."""
    report = full_report(report_cache(runtime.live), as_of or date.today())
    if wants_csv(request, fmt):
        return csv_response(report_csv(report), f"supply-chain-{report.as_of}")
    return JSONResponse(report_json(report))

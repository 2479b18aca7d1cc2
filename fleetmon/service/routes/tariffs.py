"""`/api/v1/tariffs`: the US duty rate for an origin, HTS code and entry date, layer by layer.

Procurement and admin only (Permission.READ_SUPPLY_CHAIN): the schedule is procurement's working
figure for landed cost and duty exposure, quoted in negotiations, and may include layers they load;
viewers and operators have no use for it (docs/api.md, "Roles").
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import ErrorOut
from fleetmon.service.supplychain import report_cache
from fleetmon.service.supplychain_schemas import RateOut
from fleetmon.supplychain.errors import UnknownHtsError
from fleetmon.supplychain.tariffs import DEFAULT_HTS, rate

router = APIRouter(prefix="/api/v1/tariffs", tags=["tariffs"], responses=AUTH_ERRORS)


@router.get(
    "/rate",
    response_model=RateOut,
    dependencies=[Depends(require(Permission.READ_SUPPLY_CHAIN))],
    responses={404: {"model": ErrorOut, "description": "no layer of the schedule covers this HTS code"}},
)
def get_rate(
    runtime: RuntimeDep,
    origin: Annotated[str, Query(pattern=r"^[A-Za-z]{2}$", description="country of origin, ISO alpha-2")],
    on: Annotated[date, Query(alias="date", description="entry date")],
    hts: Annotated[
        str, Query(pattern=r"^\d{4}(\.?\d{2}){0,3}$", description=f"HTS code (default {DEFAULT_HTS})")
    ] = DEFAULT_HTS,
) -> RateOut:
    """`total_rate` is a fraction (0.576 for 57.6%): the sum of the `layers` in force, with sources."""
    schedule = report_cache(runtime.live).schedule
    try:
        result = rate(schedule, origin, hts, on)
    except UnknownHtsError as exc:
        raise HTTPException(404, detail=str(exc)) from None
    return RateOut.model_validate(result.to_json())

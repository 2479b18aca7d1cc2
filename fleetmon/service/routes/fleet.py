"""`/api/v1/fleet`: fleet-wide figures."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.fleet import fleet_summary
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import FleetSummary

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"], responses=AUTH_ERRORS)


@router.get("/summary", response_model=FleetSummary, dependencies=[Depends(require(Permission.READ_FLEET))])
def get_summary(runtime: RuntimeDep) -> FleetSummary:
    """Devices by state, total and expected hashrate, power, J/TH, hottest and worst devices."""
    return runtime.live.derived("fleet_summary", fleet_summary)

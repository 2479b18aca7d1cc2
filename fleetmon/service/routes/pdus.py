"""`/api/v1/pdus`: every configured rack PDU, outlet by outlet, PDU-measured beside miner-reported power."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.pdus import pdu_list
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import PduList

router = APIRouter(prefix="/api/v1/pdus", tags=["pdus"], responses=AUTH_ERRORS)


@router.get("", response_model=PduList, dependencies=[Depends(require(Permission.READ_FLEET))])
def get_pdus(runtime: RuntimeDep) -> PduList:
    """PDUs as of the latest snapshot: outlets, mapped miners, both powers and their difference."""
    return pdu_list(runtime.live.snapshot)

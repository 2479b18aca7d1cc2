"""`/api/v1/catalog`: the hardware catalog (models with nominal figures, maker and HQ country, source).

Readable by every role (Permission.READ_FLEET): it is the shipped, public nameplate data behind the
device list's manufacturer and expected hashrate, and says nothing about the farm.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.supplychain import catalog_models, report_cache
from fleetmon.service.supplychain_schemas import CatalogModelOut

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"], responses=AUTH_ERRORS)


@router.get(
    "/models", response_model=list[CatalogModelOut], dependencies=[Depends(require(Permission.READ_FLEET))]
)
def get_models(
    runtime: RuntimeDep,
    manufacturer: Annotated[
        str | None, Query(max_length=64, description="name, brand or make, e.g. Bitmain, Antminer")
    ] = None,
) -> list[CatalogModelOut]:
    """Every catalog model (or one manufacturer's), as published by its source."""
    return catalog_models(report_cache(runtime.live).catalog, manufacturer)

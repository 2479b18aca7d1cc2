"""`/api/v1/devices`: the filtered, paginated device list and one device's detail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from collectors.sample import State, utcnow
from fleetmon.service.auth import Permission, Principal, Requirement, allows, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.fleet import DeviceFilter, DeviceNotFoundError, device_detail, list_devices
from fleetmon.service.pdus import with_outlet_power
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import DeviceDetail, DevicePage, ErrorOut
from fleetmon.storage.errors import StorageError

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=AUTH_ERRORS)

MAX_DEVICE_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


@router.get("", response_model=DevicePage, dependencies=[Depends(require(Permission.READ_FLEET))])
def get_devices(
    runtime: RuntimeDep,
    *,
    site: str | None = None,
    make: str | None = None,
    model: str | None = None,
    state: State | None = None,
    firmware_vendor: str | None = None,
    assembly_country: Annotated[str | None, Query(description="ISO alpha-2, or `unknown`")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DevicePage:
    """Devices as of the latest snapshot, filtered (exact, case-insensitive) and paginated."""
    where = DeviceFilter(site, make, model, state, firmware_vendor, assembly_country)
    return list_devices(runtime.live.snapshot, where, limit, offset)


@router.get(
    "/{device_id}",
    response_model=DeviceDetail,
    responses={
        404: {"model": ErrorOut, "description": "no device has this id"},
        503: {"model": ErrorOut, "description": "the database cannot be read"},
    },
)
def get_device(
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(Requirement(Permission.READ_FLEET))],
    device_id: Annotated[int, Path(ge=1, le=MAX_DEVICE_ID)],
    samples: Annotated[int, Query(ge=0, le=500, description="newest samples to include")] = 20,
    hours: Annotated[int, Query(ge=1, le=24 * 90, description="hours of hourly history")] = 24,
) -> DeviceDetail:
    """One device: identity, newest samples, hourly history, and the power at its PDU outlet if mapped."""
    snapshot = runtime.live.snapshot
    try:
        detail = device_detail(
            runtime.engine,
            snapshot,
            runtime.fleet,
            device_id,
            samples=samples,
            hours=hours,
            now=utcnow(),
        )
    except DeviceNotFoundError:
        raise HTTPException(404, detail=f"no device with id {device_id}") from None
    except StorageError as exc:
        raise HTTPException(503, detail=f"device history unavailable: {exc}") from None
    if not allows(principal.role, Permission.READ_SECURITY):
        # Findings say which miners are open; a key that may not list them does not see them here.
        unsecured = [s.model_copy(update={"security": []}) for s in detail.recent_samples]
        detail = detail.model_copy(update={"recent_samples": unsecured})
    return with_outlet_power(detail, snapshot)

"""`/api/v1/devices`: the filtered, searched, sorted and paginated device list, the same list as CSV, and
one device's detail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from collectors.sample import State, utcnow
from fleetmon.service.auth import Permission, Principal, Requirement, allows, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.fleet import (
    DeviceFilter,
    DeviceNotFoundError,
    DeviceOrder,
    SortField,
    device_detail,
    devices_csv,
    list_devices,
    matching_devices,
)
from fleetmon.service.pdus import with_outlet_power
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import DeviceDetail, DevicePage, ErrorOut
from fleetmon.storage.errors import StorageError

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=AUTH_ERRORS)

MAX_DEVICE_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


def device_query(
    *,
    site: str | None = None,
    make: str | None = None,
    model: str | None = None,
    state: State | None = None,
    firmware_vendor: str | None = None,
    assembly_country: Annotated[str | None, Query(description="ISO alpha-2, or `unknown`")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="case-insensitive part of the address, serial, MAC (separators optional), "
            "model or hostname",
        ),
    ] = None,
    sort: Annotated[SortField | None, Query(description="column to order by (default: site, IP)")] = None,
    order: Annotated[Literal["asc", "desc"], Query(description="devices lacking the value: last")] = "asc",
) -> tuple[DeviceFilter, DeviceOrder]:
    """The filters, search and order shared by the device list and its CSV."""
    where = DeviceFilter(site, make, model, state, firmware_vendor, assembly_country, q or None)
    return where, DeviceOrder(sort, order == "desc")


DeviceQuery = Annotated[tuple[DeviceFilter, DeviceOrder], Depends(device_query)]


@router.get("", response_model=DevicePage, dependencies=[Depends(require(Permission.READ_FLEET))])
def get_devices(
    runtime: RuntimeDep,
    query: DeviceQuery,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DevicePage:
    """Devices as of the latest snapshot: filtered (exact, case-insensitive), searched, sorted, paginated."""
    where, order = query
    return list_devices(runtime.live.snapshot, where, limit, offset, order)


@router.get(
    "/export.csv",
    response_class=Response,
    dependencies=[Depends(require(Permission.READ_FLEET))],
    responses={200: {"content": {"text/csv": {}}, "description": "every matching device, one row each"}},
)
def get_devices_csv(runtime: RuntimeDep, query: DeviceQuery) -> Response:
    """Every device the list's filters, search and order select (not one page), as CSV."""
    where, order = query
    body = devices_csv(matching_devices(runtime.live.snapshot, where, order))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="fleetmon-devices.csv"'},
    )


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

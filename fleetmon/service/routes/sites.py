"""`/api/v1/sites`: each site's collector health (up or stale, last seen, its last cycle)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.sites import SiteHealth

router = APIRouter(prefix="/api/v1", tags=["fleet"], responses=AUTH_ERRORS)


class SiteOut(BaseModel):
    """One site's collector as this replica sees it."""

    site: str
    up: bool = Field(description="online and heard from within service.site_stale_s")
    state: str = Field(description="ok | stale | offline")
    online: bool = Field(description="false once the collector said goodbye or its last will fired")
    last_seen: datetime | None = Field(description="when the collector last said the site is alive")
    age_s: float | None = Field(description="seconds since last_seen")
    collector_id: str | None = None
    version: str | None = None
    last_cycle_end: datetime | None = None
    cycle_duration_s: float | None = None
    devices_ok: int | None = None
    devices_failed: int | None = None
    spool_samples: int | None = None
    spool_bytes: int | None = None


def site_out(health: SiteHealth) -> SiteOut:
    """The response row of one site."""
    status = health.status
    return SiteOut(
        site=health.site,
        up=health.up,
        state=health.state,
        online=health.online,
        last_seen=datetime.fromtimestamp(health.last_seen, UTC) if health.last_seen is not None else None,
        age_s=round(health.age_s, 3) if health.age_s is not None else None,
        collector_id=status.collector_id if status else None,
        version=status.version if status else None,
        last_cycle_end=status.last_cycle_end if status else None,
        cycle_duration_s=status.cycle_duration_s if status else None,
        devices_ok=status.devices_ok if status else None,
        devices_failed=status.devices_failed if status else None,
        spool_samples=status.spool_samples if status else None,
        spool_bytes=status.spool_bytes if status else None,
    )


@router.get("/sites", response_model=list[SiteOut], dependencies=[Depends(require(Permission.READ_FLEET))])
def get_sites(runtime: RuntimeDep) -> list[SiteOut]:
    """Every site's collector: ok, stale (not heard from lately) or offline (it said goodbye or died)."""
    return [site_out(health) for health in runtime.site_health()]

"""Health, public: `/healthz` (200 when the database answers, 503 when it does not), `/livez` (the
process answers; no database) and `/readyz` (database reachable, schema prepared, snapshot fresh;
503 with the reason otherwise). Kubernetes restarts on /livez and routes traffic on /readyz
(deploy/kubernetes/api.yaml), so a database outage takes replicas out of service without restarting
them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Response

from fleetmon.service.auth import require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.schemas import HealthStatus, LiveStatus, ReadyStatus
from fleetmon.storage.engine import ping
from fleetmon.storage.errors import StorageError

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "the database does not answer"}},
    dependencies=[Depends(require(None))],
)
def get_health(runtime: RuntimeDep, response: Response) -> HealthStatus:
    """Checks the database with `SELECT 1`; reports the snapshot's age and size. No key needed."""
    try:
        ping(runtime.engine)
        database = "ok"
    except StorageError:
        database = "unavailable"
        response.status_code = 503
    snapshot = runtime.live.snapshot
    return HealthStatus(
        status="ok" if database == "ok" else "degraded",
        database=database,
        snapshot_at=datetime.fromtimestamp(snapshot.taken_at, UTC) if runtime.live.version else None,
        snapshot_age_s=runtime.live.age_s(),
        devices=len(snapshot.devices),
        mode=runtime.mode,
    )


@router.get("/livez", response_model=LiveStatus, dependencies=[Depends(require(None))])
async def get_live() -> LiveStatus:
    """The process and its event loop answer. Never touches the database."""
    return LiveStatus(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyStatus,
    responses={503: {"model": ReadyStatus, "description": "not ready; `reason` says why"}},
    dependencies=[Depends(require(None))],
)
def get_ready(runtime: RuntimeDep, response: Response) -> ReadyStatus:
    """Ready for traffic: the database answers, its schema is prepared and the snapshot is fresh."""
    reason = runtime.readiness()
    if reason is not None:
        response.status_code = 503
    return ReadyStatus(
        status="ready" if reason is None else "not ready",
        reason=reason,
        mode=runtime.mode,
        snapshot_age_s=runtime.live.age_s(),
    )

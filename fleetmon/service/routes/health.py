"""`/healthz`: the one public route. 200 when the database answers, 503 when it does not."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Response

from fleetmon.service.auth import require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.schemas import HealthStatus
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

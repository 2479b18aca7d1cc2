"""Operator actions: `/api/v1/devices/{id}/actions`, `/api/v1/actions` (jobs, dry runs, ramps, cancel)
and `/api/v1/audit`. Contract in docs/actions.md.

Acting needs `act_on_devices` (operator, admin). A caller whose role lacks it gets 403 and nothing is
sent, and the refused attempt is written to the audit log with its actor: the permission dependency of
these routes (`AuditedRequirement`) does that before raising. Reading jobs and the audit log needs the
same permission: the audit log names keys and what they did, which a wall-display viewer key need not see.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    Security,
    status,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials

from fleetmon.service.action_schemas import (
    MAX_DEVICE_ID,
    ActionRequest,
    AuditPage,
    DeviceActionRequest,
    FleetActionBody,
    JobList,
    JobOut,
    PlanOut,
)
from fleetmon.service.auth import Permission, Principal, Requirement, _bearer
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.fleet_actions import (
    ActionRequestError,
    ActionsUnavailableError,
    IdempotencyConflictError,
    JobNotFoundError,
    NothingSelectedError,
    audit_refusal,
    cancel_job,
    device_view,
    read_audit,
    read_job,
    read_jobs,
    request_action,
)
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import ErrorOut
from fleetmon.storage.errors import StorageError

router = APIRouter(prefix="/api/v1", tags=["actions"], responses=AUTH_ERRORS)

MAX_KEY_LENGTH = 255


class AuditedRequirement(Requirement):
    """`require(ACT_ON_DEVICES)` that also writes a refused attempt to the audit log before the 403."""

    async def __call__(  # type: ignore[override]
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> Principal:
        """Authenticate; audit and refuse a role without the permission."""
        principal = await run_in_threadpool(self.authenticate, request, credentials)
        if self.permits(principal):
            return principal
        why = self.refusal(principal)
        if request.method == "POST":
            body = await _body(request)
            device_ids = _named_devices(request, body)
            try:
                await run_in_threadpool(
                    audit_refusal, request.app.state.runtime.engine, principal, body, device_ids, why
                )
            except StorageError as exc:
                raise HTTPException(
                    503, detail=f"refused, and the audit log cannot be written: {exc}"
                ) from None
        raise self.forbidden(why)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _named_devices(request: Request, body: dict[str, Any]) -> list[int]:
    device = request.path_params.get("device_id")
    if device is not None:
        try:
            return [int(device)]
        except ValueError:
            return []
    selector = body.get("selector")
    ids = selector.get("ids") if isinstance(selector, dict) else None
    if isinstance(ids, list):
        return [
            i for i in ids[:1000] if isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_DEVICE_ID
        ]
    return []


ActorDep = Annotated[Principal, Depends(AuditedRequirement(Permission.ACT_ON_DEVICES))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="retrying with the same key and body returns the first job instead of acting again;"
        " a key is remembered for `actions.idempotency_ttl_s` (24 h by default), then forgotten",
    ),
]

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "this replica polls no device (reader mode: actions need the collecting process), "
        "or the Idempotency-Key was used with a different request",
    },
    503: {"model": ErrorOut, "description": "the database cannot be read or written"},
}


def _http(exc: ActionRequestError) -> HTTPException:
    match exc:
        case NothingSelectedError() | JobNotFoundError():
            return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc))
        case ActionsUnavailableError() | IdempotencyConflictError():
            return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc))


@router.post(
    "/devices/{device_id}/actions",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"model": ErrorOut, "description": "no device has this id"}, **UNAVAILABLE},
)
async def act_on_device(
    request: Request,
    runtime: RuntimeDep,
    principal: ActorDep,
    *,
    device_id: Annotated[int, Path(ge=1, le=MAX_DEVICE_ID)],
    body: DeviceActionRequest,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Act on one device: a job is started and returned at once (follow it at /api/v1/actions/{id})."""
    try:
        view = device_view(runtime.live.snapshot, device_id)
        result = await request_action(
            engine=runtime.engine,
            runner=runtime.jobs,
            snapshot=runtime.live.snapshot,
            principal=principal,
            request=ActionRequest.of(body, device_id),
            path=request.url.path,
            idempotency_key=idempotency_key,
            idempotency_ttl=timedelta(seconds=runtime.settings.actions.idempotency_ttl_s),
            views=[view],
        )
    except ActionRequestError as exc:
        raise _http(exc) from None
    except StorageError as exc:
        raise HTTPException(503, detail=f"actions unavailable: {exc}") from None
    assert isinstance(result, JobOut)
    return result


@router.post(
    "/actions",
    response_model=JobOut | PlanOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": PlanOut, "description": "dry run: the plan; nothing was sent"},
        404: {
            "model": ErrorOut,
            "description": "no device matches the selector (an empty selector selects none)",
        },
        **UNAVAILABLE,
    },
)
async def act_on_fleet(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    principal: ActorDep,
    *,
    body: FleetActionBody,
    idempotency_key: IdempotencyKey = None,
) -> JobOut | PlanOut:
    """Act on the devices a selector chooses, at once or in a staged ramp; `dry_run` answers 200 with
    the plan and sends nothing."""
    try:
        result = await request_action(
            engine=runtime.engine,
            runner=runtime.jobs,
            snapshot=runtime.live.snapshot,
            principal=principal,
            request=ActionRequest.of_fleet(body),
            path=request.url.path,
            idempotency_key=idempotency_key,
            idempotency_ttl=timedelta(seconds=runtime.settings.actions.idempotency_ttl_s),
        )
    except ActionRequestError as exc:
        raise _http(exc) from None
    except StorageError as exc:
        raise HTTPException(503, detail=f"actions unavailable: {exc}") from None
    if isinstance(result, PlanOut):
        response.status_code = status.HTTP_200_OK
    return result


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "the database cannot be read"}
}


@router.get("/actions", response_model=JobList, responses=READ_ERRORS)
async def list_jobs(
    runtime: RuntimeDep,
    _principal: ActorDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """Recent action jobs, newest first."""
    try:
        return JobList(jobs=await read_jobs(runtime.engine, limit))
    except StorageError as exc:
        raise HTTPException(503, detail=f"jobs unavailable: {exc}") from None


JobId = Annotated[str, Path(min_length=1, max_length=32)]


@router.get(
    "/actions/{job_id}",
    response_model=JobOut,
    responses={404: {"model": ErrorOut, "description": "no job has this id"}, **READ_ERRORS},
)
async def get_job(runtime: RuntimeDep, _principal: ActorDep, job_id: JobId) -> JobOut:
    """One action job and its progress."""
    try:
        return await read_job(runtime.engine, job_id)
    except ActionRequestError as exc:
        raise _http(exc) from None
    except StorageError as exc:
        raise HTTPException(503, detail=f"job unavailable: {exc}") from None


@router.post(
    "/actions/{job_id}/cancel",
    response_model=JobOut,
    responses={404: {"model": ErrorOut, "description": "no job has this id"}, **READ_ERRORS},
)
async def cancel(runtime: RuntimeDep, principal: ActorDep, job_id: JobId) -> JobOut:
    """Stop a job's remaining steps and tasks; those already sent are reported as they ended."""
    try:
        return await cancel_job(runtime.engine, runtime.jobs, principal, job_id)
    except ActionRequestError as exc:
        raise _http(exc) from None
    except StorageError as exc:
        raise HTTPException(503, detail=f"job unavailable: {exc}") from None


@router.get("/audit", response_model=AuditPage, responses=READ_ERRORS)
async def audit(
    runtime: RuntimeDep,
    _principal: ActorDep,
    device_id: Annotated[int | None, Query(ge=1, le=MAX_DEVICE_ID)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The audit log, newest first: every action asked for, refused attempts included."""
    try:
        entries = await read_audit(runtime.engine, device_id=device_id, since=since, limit=limit)
    except StorageError as exc:
        raise HTTPException(503, detail=f"audit log unavailable: {exc}") from None
    return AuditPage(entries=entries)

"""The service side of operator actions: choose the devices, plan, store and start a job, keep the
idempotency keys and the audit log (the routes in routes/actions.py only parse and call these).

Errors, rooted in one class and mapped to HTTP statuses by the routes:

    ActionRequestError
    ├── ActionsUnavailableError   this process does not poll (reader mode): 409
    ├── NothingSelectedError      no device has this id / matches the selector (or it names no
    │                             criterion: an empty selector selects nothing): 404
    ├── IdempotencyConflictError  the key was used with a different request: 409
    └── JobNotFoundError          no job has this id: 404

Storage errors (StorageError) pass through; the routes answer them 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from collectors.sample import utcnow
from fleetmon.service.action_schemas import (
    ActionParams,
    ActionRequest,
    AuditEntryOut,
    JobOut,
    PlannedDevice,
    PlannedStep,
    PlanOut,
    PowerSplit,
    Ramp,
    Selector,
    StepOut,
    TaskOut,
)
from fleetmon.service.auth import Principal
from fleetmon.service.jobs import JobRunner, RunningJob
from fleetmon.service.power import DevicePower, SitePower, outlet_watts, site_power, view_power
from fleetmon.service.ramp import (
    Candidate,
    JobAction,
    RampRule,
    Step,
    default_rule,
    eligible,
    order,
    plan_steps,
)
from fleetmon.service.snapshot import DeviceView, FleetSnapshot
from fleetmon.storage.actions import (
    AuditRow,
    Idempotency,
    JobRow,
    TaskRow,
    audit_entries,
    insert_audit,
    insert_job,
    job_by_id,
    power_before_last,
    recent_jobs,
)
from fleetmon.storage.engine import Engine

READER_MODE_DETAIL = (
    "actions need the collecting process: this replica reads from the database (reader mode) and "
    "polls no device; send actions to the `fleetmon serve` that polls the site (collector mode)"
)


class ActionRequestError(Exception):
    """Root of the errors of an action request."""


class ActionsUnavailableError(ActionRequestError):
    """This process polls no device, so it cannot act on one."""


class NothingSelectedError(ActionRequestError):
    """No device has the id, or none matches the selector."""


class IdempotencyConflictError(ActionRequestError):
    """The idempotency key was already used with a different request."""


class JobNotFoundError(ActionRequestError):
    """No job has this id."""


def actor_of(principal: Principal) -> str:
    """How a principal is named in jobs and the audit log: the key's name, else its public id."""
    return principal.name or principal.key_id


def stored_params(action: JobAction, params: ActionParams) -> dict[str, Any]:
    """The parameters that mean something for `action`."""
    if action is JobAction.LOCATE:
        return {"on": params.on}
    if action is JobAction.POWER_TARGET:
        return {"watts": params.watts}
    return {}


def _candidate(view: DeviceView, restore: dict[int, float], power: DevicePower | None) -> Candidate:
    assert view.device_id is not None
    s = view.sample
    efficiency = s.efficiency_jth
    if efficiency is None and power is not None and s.hashrate_ths:
        efficiency = round(power.watts / s.hashrate_ths, 3)  # so estimated devices are ordered too
    return Candidate(
        device_id=view.device_id,
        host=s.ip,
        port=s.port,
        site=view.site,
        model=s.model,
        state=s.state,
        power_w=power.watts if power is not None else None,
        efficiency_jth=efficiency,
        restore_w=restore.get(view.device_id),
        power_source=power.source.value if power is not None else None,
    )


def select(snapshot: FleetSnapshot, selector: Selector) -> list[DeviceView]:
    """The stored devices of the snapshot every given criterion matches (exact, case-insensitive)."""
    if selector.site is None and selector.model is None and selector.state is None and selector.ids is None:
        raise NothingSelectedError(
            "the selector names no criterion, so it selects no device: give site, model, state or ids"
        )
    ids = set(selector.ids) if selector.ids is not None else None
    site = selector.site.casefold() if selector.site is not None else None
    model = selector.model.casefold() if selector.model is not None else None
    return [
        view
        for view in snapshot.devices
        if view.device_id is not None
        and (ids is None or view.device_id in ids)
        and (site is None or view.site.casefold() == site)
        and (model is None or (view.sample.model or "").casefold() == model)
        and (selector.state is None or view.sample.state is selector.state)
    ]


def device_view(snapshot: FleetSnapshot, device_id: int) -> DeviceView:
    """The device with this id; NothingSelectedError when the snapshot has none."""
    for view in snapshot.devices:
        if view.device_id == device_id:
            return view
    raise NothingSelectedError(f"no device with id {device_id}")


def _fingerprint(path: str, body: dict[str, Any]) -> str:
    text = json.dumps({"path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def request_action(
    *,
    engine: Engine,
    runner: JobRunner | None,
    snapshot: FleetSnapshot,
    principal: Principal,
    request: ActionRequest,
    path: str,
    idempotency_key: str | None,
    idempotency_ttl: timedelta,
    views: Sequence[DeviceView] | None = None,
    now: datetime | None = None,
) -> PlanOut | JobOut:
    """Plan a request and, unless it is a dry run, store its job and start it (a dry run works on any
    replica; acting needs `runner`, the collecting process's, which the job names as its owner).

    `views` fixes the devices (one device's route); otherwise the selector chooses them. An
    idempotency key older than `idempotency_ttl` (at `now`, default the clock) is forgotten: the request
    is a new one. Raises the ActionRequestError tree (and StorageError).
    """
    action, params = request.action, stored_params(request.action, request.params)
    chosen = list(views) if views is not None else select(snapshot, request.selector)
    if not chosen:
        raise NothingSelectedError("no device matches the selector")
    ids = [v.device_id for v in chosen if v.device_id is not None]
    restore: dict[int, float] = {}
    if action is JobAction.WAKE:
        restore = await asyncio.to_thread(power_before_last, engine, ids, [JobAction.SLEEP.value])
    outlets = outlet_watts(snapshot)
    candidates = [_candidate(v, restore, view_power(v, outlets)) for v in chosen]
    rule = _rule(request.ramp, len(candidates))
    targeted = rule is not None and rule.target_site_kw is not None
    # A ramp measures the power of the site(s) its devices are in (the target applies to their sum),
    # each device by the same rule as its own figure (fleetmon.service.power).
    sites = tuple(sorted({v.site for v in chosen})) if rule is not None else ()
    site = site_power(snapshot, sites) if sites else None
    site_kw = site.kw if site is not None else None
    watts = request.params.watts
    excluded = {c.device_id: eligible(action, c, watts, targeted) for c in candidates}
    if rule is not None and runner is not None:
        # A ramp plans its steps from the devices that will act: one the firmware (or a missing
        # credential profile) refuses would count in a step's expected change and never deliver it.
        for c in candidates:
            if excluded[c.device_id] is None:
                why = runner.refusal(action, request.params.on, c.host, c.port)
                excluded[c.device_id] = f"would be refused: {why}" if why is not None else None
    planned = order(action, [c for c in candidates if excluded[c.device_id] is None])
    steps = plan_steps(action, planned, rule, watts=watts, site_kw=site_kw)
    if request.dry_run:
        plan = _plan(action, params, candidates, excluded, steps, sites, site, rule)
        await asyncio.to_thread(
            insert_audit,
            engine,
            _audit(principal, action.value, params, ids, "dry_run", None, _plan_note(plan)),
        )
        return plan
    if runner is None:  # a dry run needs only the snapshot; acting needs the poller
        raise ActionsUnavailableError(READER_MODE_DETAIL)
    now = now or utcnow()
    job_id = secrets.token_hex(8)
    job = JobRow(
        id=job_id,
        action=action.value,
        params=params,
        selector=request.selector.model_dump(mode="json", exclude_none=True) if views is None else None,
        ramp=request.ramp.model_dump(mode="json") if request.ramp is not None else None,
        state="queued",
        actor_key_id=principal.key_id,
        actor_name=principal.name,
        role=principal.role.value,
        created_at=now,
        steps=[_step_json(step, "planned") for step in steps],
        owner=runner.instance,
        heartbeat_at=now,
    )
    position = {
        c.device_id: i for i, c in enumerate([*planned, *(c for c in candidates if excluded[c.device_id])])
    }
    tasks = [
        TaskRow(
            job_id=job_id,
            device_id=c.device_id,
            position=position[c.device_id],
            host=c.host,
            state="queued" if excluded[c.device_id] is None else "skipped",
            power_w_before=c.power_w,
            detail=excluded[c.device_id],
            finished_at=None if excluded[c.device_id] is None else now,
        )
        for c in candidates
    ]
    body = request.body()
    idem = (
        Idempotency(idempotency_key, principal.key_id, _fingerprint(path, body))
        if idempotency_key is not None
        else None
    )
    earlier = await asyncio.to_thread(
        insert_job, engine, job, tasks, idem, forget_before=now - idempotency_ttl
    )
    if earlier is not None:
        assert idem is not None
        if earlier.fingerprint != idem.fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used with a different request; use a new key"
            )
        return await read_job(engine, earlier.job_id)
    await asyncio.to_thread(
        insert_audit, engine, _audit(principal, action.value, params, ids, "accepted", job_id, None)
    )
    runner.start(
        RunningJob(
            id=job_id,
            action=action,
            on=request.params.on,
            watts=watts,
            devices=planned,
            rule=rule,
            sites=sites,
            steps=[dict(s) for s in job.steps],
            actor_key_id=principal.key_id,
            actor_name=principal.name,
            role=principal.role.value,
            params=params,
        )
    )
    return await read_job(engine, job_id)


def _rule(ramp: Ramp | None, devices: int) -> RampRule | None:
    if ramp is None:
        return None
    return default_rule(
        RampRule(ramp.step_devices, ramp.step_kw, ramp.interval_s, ramp.target_site_kw), devices
    )


def _step_json(step: Step, state: str) -> dict[str, Any]:
    return {
        "index": step.index,
        "device_ids": list(step.device_ids),
        "state": state,
        "expected_kw": step.expected_kw,
        "started_at": None,
        "finished_at": None,
        "site_kw_after": None,
        "site_kw_after_sources": None,
    }


def _plan(  # noqa: PLR0917
    action: JobAction,
    params: dict[str, Any],
    candidates: Sequence[Candidate],
    excluded: dict[int, str | None],
    steps: Sequence[Step],
    sites: tuple[str, ...],
    site: SitePower | None,
    rule: RampRule | None,
) -> PlanOut:
    site_kw = site.kw if site is not None else None
    after = site_kw
    if site_kw is not None:
        for step in steps:
            if step.expected_kw is None:
                after = None
                break
            assert after is not None
            after += step.expected_kw if action is JobAction.WAKE else -step.expected_kw
    order_of = {device_id: i for i, step in enumerate(steps) for device_id in step.device_ids}
    shown = sorted(candidates, key=lambda c: (order_of.get(c.device_id, len(order_of)), c.device_id))
    return PlanOut(
        action=action,
        params=params,
        devices=[
            PlannedDevice(
                device_id=c.device_id,
                host=c.host,
                site=c.site,
                model=c.model,
                state=c.state,
                power_w=c.power_w,
                power_source=c.power_source,
                excluded=excluded[c.device_id],
            )
            for c in shown
        ],
        steps=[
            PlannedStep(index=s.index, device_ids=list(s.device_ids), expected_kw=s.expected_kw)
            for s in steps
        ],
        site=sites[0] if len(sites) == 1 else None,
        sites=list(sites),
        site_kw=site_kw,
        site_kw_sources=power_split(site),
        target_site_kw=rule.target_site_kw if rule is not None else None,
        expected_site_kw_after=round(after, 3) if after is not None and steps else site_kw,
    )


def power_split(site: SitePower | None) -> PowerSplit | None:
    """A site's power split by source, in the API's shape."""
    return PowerSplit.model_validate(site.split()) if site is not None else None


def _plan_note(plan: PlanOut) -> str:
    note = f"{len(plan.steps)} step(s) over {sum(len(s.device_ids) for s in plan.steps)} device(s)"
    if plan.target_site_kw is not None:
        note += f"; site {', '.join(plan.sites)} at {plan.site_kw} kW, target {plan.target_site_kw} kW"
        if plan.site_kw_sources is not None and plan.site_kw_sources.estimated_kw:
            note += f" ({plan.site_kw_sources.estimated_kw} kW of it estimated)"
    return note


def _audit(  # noqa: PLR0917
    principal: Principal | None,
    action: str,
    params: dict[str, Any],
    device_ids: Sequence[int],
    outcome: str,
    job_id: str | None,
    detail: str | None,
) -> AuditRow:
    return AuditRow(
        at=utcnow(),
        action=action,
        outcome=outcome,
        actor_key_id=principal.key_id if principal else None,
        actor_name=principal.name if principal else None,
        role=principal.role.value if principal else None,
        params=params,
        device_ids=tuple(device_ids),
        job_id=job_id,
        detail=detail,
    )


def audit_refusal(
    engine: Engine, principal: Principal, body: dict[str, Any], device_ids: Sequence[int], why: str
) -> None:
    """Record an attempt the caller's role may not make (sync: the permission check runs in a thread)."""
    action = body.get("action")
    params = body.get("params")
    insert_audit(
        engine,
        _audit(
            principal,
            action if isinstance(action, str) and len(action) <= 32 else "unknown",
            params if isinstance(params, dict) else {},
            device_ids,
            "refused",
            None,
            why,
        ),
    )


async def cancel_job(engine: Engine, runner: JobRunner | None, principal: Principal, job_id: str) -> JobOut:
    """Stop a job's remaining steps and tasks (audited); a job already ended is returned as it is."""
    job = await read_job(engine, job_id)
    running = runner.cancel(job_id) if runner is not None else False
    detail = (
        "cancel requested"
        if running
        else f"job already {job.state}"
        if job.state not in {"queued", "running"}
        else "not running in this process"
    )
    device_ids = [t.device_id for t in job.tasks]
    await asyncio.to_thread(
        insert_audit,
        engine,
        _audit(principal, job.action.value, dict(job.params), device_ids, "cancelled", job_id, detail),
    )
    if running and runner is not None:
        await runner.wait(job_id)
    return await read_job(engine, job_id)


async def read_job(engine: Engine, job_id: str) -> JobOut:
    """One job as the API shows it; JobNotFoundError."""
    found = await asyncio.to_thread(job_by_id, engine, job_id)
    if found is None:
        raise JobNotFoundError(f"no action job with id {job_id!r}")
    return job_out(*found)


async def read_jobs(engine: Engine, limit: int) -> list[JobOut]:
    """The newest jobs, newest first."""
    return [job_out(job, tasks) for job, tasks in await asyncio.to_thread(recent_jobs, engine, limit)]


def job_out(job: JobRow, tasks: Sequence[TaskRow]) -> JobOut:
    """A stored job in the API's shape."""
    ended = {"succeeded", "failed", "refused", "skipped", "cancelled"}
    return JobOut(
        id=job.id,
        action=JobAction(job.action),
        params=job.params,
        state=job.state,
        created_at=job.created_at,
        finished_at=job.finished_at,
        actor=job.actor_name or job.actor_key_id,
        devices_total=len(tasks),
        devices_done=sum(t.state in ended for t in tasks),
        devices_failed=sum(t.state in {"failed", "refused"} for t in tasks),
        owner=job.owner,
        heartbeat_at=job.heartbeat_at,
        steps=[StepOut.model_validate(_step_times(s)) for s in job.steps],
        tasks=[
            TaskOut(
                device_id=t.device_id,
                host=t.host,
                state=t.state,
                error_code=t.error_code,
                detail=t.detail,
                finished_at=t.finished_at,
            )
            for t in tasks
        ],
        detail=job.detail,
    )


def _step_times(step: dict[str, Any]) -> dict[str, Any]:
    out = dict(step)
    for key in ("started_at", "finished_at"):
        if isinstance(out.get(key), str):
            out[key] = datetime.fromisoformat(out[key])
    return out


async def read_audit(
    engine: Engine, *, device_id: int | None, since: datetime | None, limit: int
) -> list[AuditEntryOut]:
    """Audit entries, newest first."""
    rows = await asyncio.to_thread(audit_entries, engine, device_id=device_id, since=since, limit=limit)
    return [
        AuditEntryOut(
            id=row.id or 0,
            at=row.at,
            actor=row.actor_name or row.actor_key_id,
            role=row.role,
            action=row.action,
            params=row.params,
            device_ids=list(row.device_ids),
            job_id=row.job_id,
            outcome=row.outcome,
            detail=row.detail,
        )
        for row in rows
    ]

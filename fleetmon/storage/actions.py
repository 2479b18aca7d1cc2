"""Action jobs, their per-device tasks, the audit log and idempotency keys: named queries for
fleetmon.service.jobs, which owns what a job means.

Every function raises StorageUnavailableError (fleetmon.storage.errors) when the database fails, never a
SQLAlchemy exception. A job and its tasks (and the idempotency key that created it) are inserted in one
transaction, so a retried request finds either all of them or none.

Several collecting processes may share the database: a job names its `owner`, which renews its
`heartbeat_at` (`heartbeat`); `end_abandoned` ends the unfinished jobs nobody runs any more. An
idempotency key older than the caller's `forget_before` is forgotten by the lookup itself, whether or not
`purge_idempotency` deleted it yet.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, delete, or_, select, update
from sqlalchemy import exc as sa_exc

from fleetmon.storage.errors import translated
from fleetmon.storage.models import ActionJob, ActionTask, AuditDevice, AuditEntry, IdempotencyKey
from fleetmon.storage.rows import column_values, from_columns

JOBS: Table = ActionJob.__table__  # type: ignore[attr-defined]
TASKS: Table = ActionTask.__table__  # type: ignore[attr-defined]
AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]
AUDIT_DEVICES: Table = AuditDevice.__table__  # type: ignore[attr-defined]
IDEMPOTENCY: Table = IdempotencyKey.__table__  # type: ignore[attr-defined]

UNFINISHED = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobRow:
    """One stored job (without its tasks)."""

    id: str
    action: str
    params: dict[str, Any]
    selector: dict[str, Any] | None
    ramp: dict[str, Any] | None
    state: str
    actor_key_id: str
    actor_name: str | None
    role: str
    created_at: datetime
    finished_at: datetime | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None
    owner: str | None = None  # the collecting process running it (None: stored before revision 0010)
    heartbeat_at: datetime | None = None  # when the owner last said it still runs it


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One device's part of a stored job."""

    job_id: str
    device_id: int
    position: int
    host: str
    state: str
    step: int | None = None
    power_w_before: float | None = None
    error_code: str | None = None
    detail: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    locate: bool | None = None  # the light as the device confirmed it (locate), off after a reboot


@dataclass(frozen=True, slots=True)
class LightMark:
    """A device's locate light as the newest action that set it (or reset it: a reboot) confirmed."""

    on: bool
    at: datetime
    action: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit log entry (`id` None before it is stored)."""

    at: datetime
    action: str
    outcome: str
    actor_key_id: str | None = None
    actor_name: str | None = None
    role: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    device_ids: tuple[int, ...] = ()
    job_id: str | None = None
    detail: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An Idempotency-Key as sent by one principal, with the fingerprint of the request it came with."""

    key: str
    actor_key_id: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class AbandonedJob:
    """An unfinished job `end_abandoned` ended, with the owner and heartbeat it had."""

    id: str
    owner: str | None
    heartbeat_at: datetime | None


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """The job an idempotency key already created, and the fingerprint of the request that created it."""

    job_id: str
    fingerprint: str


def _job(row: Any) -> JobRow:
    return from_columns(JobRow, row, params=dict(row.params or {}), steps=list(row.steps or []))


def _task(row: Any) -> TaskRow:
    return from_columns(TaskRow, row)


def _same_key(idem: Idempotency) -> ColumnElement[bool]:
    return (IDEMPOTENCY.c.key == idem.key) & (IDEMPOTENCY.c.actor_key_id == idem.actor_key_id)


def _earlier(conn: Any, idem: Idempotency, forget_before: datetime | None) -> EarlierRequest | None:
    query = select(IDEMPOTENCY.c.job_id, IDEMPOTENCY.c.fingerprint).where(_same_key(idem))
    if forget_before is not None:
        query = query.where(IDEMPOTENCY.c.created_at >= forget_before)
    found = conn.execute(query).first()
    return None if found is None else EarlierRequest(found.job_id, found.fingerprint)


def insert_job(
    engine: Engine,
    job: JobRow,
    tasks: Sequence[TaskRow],
    idempotency: Idempotency | None = None,
    *,
    forget_before: datetime | None = None,
) -> EarlierRequest | None:
    """Store a new job with its tasks (and its idempotency key), in one transaction.

    When the principal already used the idempotency key, nothing is stored and the earlier request is
    returned (the caller compares fingerprints); None when the job was stored. The same key sent twice
    at once: the loser of the race (the key's primary key refuses its insert) gets the winner's job.
    A key stored before `forget_before` (its time to live is over) is forgotten: the request is a new
    one, and the expired row, if housekeeping has not purged it yet, is replaced by this request's.
    """
    try:
        with engine.begin() as conn:
            if idempotency is not None:
                if (earlier := _earlier(conn, idempotency, forget_before)) is not None:
                    return earlier
                if forget_before is not None:
                    conn.execute(
                        delete(IDEMPOTENCY).where(
                            _same_key(idempotency), IDEMPOTENCY.c.created_at < forget_before
                        )
                    )
            conn.execute(JOBS.insert().values(**column_values(job)))
            if tasks:
                conn.execute(TASKS.insert(), [column_values(task) for task in tasks])
            if idempotency is not None:
                conn.execute(
                    IDEMPOTENCY.insert().values(
                        key=idempotency.key,
                        actor_key_id=idempotency.actor_key_id,
                        fingerprint=idempotency.fingerprint,
                        job_id=job.id,
                        created_at=job.created_at,
                    )
                )
    except sa_exc.IntegrityError as exc:
        if idempotency is not None:
            with translated("reading an idempotency key failed"), engine.connect() as conn:
                earlier = _earlier(conn, idempotency, forget_before)
            if earlier is not None:
                return earlier
        with translated("storing an action job failed"):
            raise exc
    except sa_exc.SQLAlchemyError as exc:
        with translated("storing an action job failed"):
            raise exc
    return None


def update_job(engine: Engine, job_id: str, **values: Any) -> None:
    """Set columns of one job (`state`, `finished_at`, `steps`, `detail`)."""
    with translated("updating an action job failed"), engine.begin() as conn:
        conn.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))


def update_tasks(engine: Engine, job_id: str, device_ids: Iterable[int], **values: Any) -> None:
    """Set columns of some tasks of one job (`state`, `step`, `error_code`, `detail`, times)."""
    ids = list(device_ids)
    if not ids:
        return
    with translated("updating action tasks failed"), engine.begin() as conn:
        conn.execute(
            update(TASKS).where(TASKS.c.job_id == job_id, TASKS.c.device_id.in_(ids)).values(**values)
        )


def job_by_id(engine: Engine, job_id: str) -> tuple[JobRow, list[TaskRow]] | None:
    """One job with its tasks in job order, or None."""
    with translated("reading an action job failed"), engine.connect() as conn:
        row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        if row is None:
            return None
        tasks = conn.execute(select(TASKS).where(TASKS.c.job_id == job_id).order_by(TASKS.c.position)).all()
    return _job(row), [_task(t) for t in tasks]


def recent_jobs(engine: Engine, limit: int) -> list[tuple[JobRow, list[TaskRow]]]:
    """The newest `limit` jobs, newest first, each with its tasks."""
    with translated("reading action jobs failed"), engine.connect() as conn:
        rows = conn.execute(
            select(JOBS).order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(limit)
        ).all()
        ids = [row.id for row in rows]
        tasks = (
            conn.execute(
                select(TASKS).where(TASKS.c.job_id.in_(ids)).order_by(TASKS.c.job_id, TASKS.c.position)
            ).all()
            if ids
            else []
        )
    by_job: dict[str, list[TaskRow]] = {i: [] for i in ids}
    for task in tasks:
        by_job[task.job_id].append(_task(task))
    return [(_job(row), by_job[row.id]) for row in rows]


def power_before_last(engine: Engine, device_ids: Sequence[int], actions: Sequence[str]) -> dict[int, float]:
    """Each device's measured power before the newest succeeded task of one of `actions` (the watts a
    `wake` may bring back), where one was recorded."""
    if not device_ids:
        return {}
    query = (
        select(TASKS.c.device_id, TASKS.c.power_w_before)
        .join(JOBS, JOBS.c.id == TASKS.c.job_id)
        .where(
            TASKS.c.device_id.in_(list(device_ids)),
            TASKS.c.state == "succeeded",
            TASKS.c.power_w_before.is_not(None),
            JOBS.c.action.in_(list(actions)),
        )
        .order_by(TASKS.c.finished_at)
    )
    with translated("reading action tasks failed"), engine.connect() as conn:
        return {row.device_id: float(row.power_w_before) for row in conn.execute(query)}


def lights_set(engine: Engine, device_ids: Sequence[int]) -> dict[int, LightMark]:
    """Each device's locate light as the newest succeeded task that set or reset it confirmed (a
    locate's answer, a reboot's reset), where one did."""
    if not device_ids:
        return {}
    query = (
        select(TASKS.c.device_id, TASKS.c.locate, TASKS.c.finished_at, JOBS.c.action)
        .join(JOBS, JOBS.c.id == TASKS.c.job_id)
        .where(
            TASKS.c.device_id.in_(list(device_ids)),
            TASKS.c.state == "succeeded",
            TASKS.c.locate.is_not(None),
            TASKS.c.finished_at.is_not(None),
        )
        .order_by(TASKS.c.finished_at)
    )
    with translated("reading action tasks failed"), engine.connect() as conn:
        return {
            row.device_id: LightMark(bool(row.locate), row.finished_at, row.action)
            for row in conn.execute(query)
        }


def insert_audit(engine: Engine, entry: AuditRow) -> int:
    """Store one audit entry (and the devices it names); returns its id."""
    with translated("writing the audit log failed"), engine.begin() as conn:
        result = conn.execute(
            AUDIT.insert().values(
                at=entry.at,
                actor_key_id=entry.actor_key_id,
                actor_name=entry.actor_name,
                role=entry.role,
                action=entry.action,
                params=entry.params,
                device_ids=list(entry.device_ids),
                job_id=entry.job_id,
                outcome=entry.outcome,
                detail=entry.detail,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        audit_id = int(key[0])
        devices = sorted(set(entry.device_ids))
        if devices:
            conn.execute(AUDIT_DEVICES.insert(), [{"audit_id": audit_id, "device_id": d} for d in devices])
    return audit_id


def audit_entries(
    engine: Engine, *, device_id: int | None = None, since: datetime | None = None, limit: int = 100
) -> list[AuditRow]:
    """Audit entries, newest first: those naming `device_id` when given, at or after `since`."""
    query = select(AUDIT)
    if device_id is not None:
        query = query.where(
            AUDIT.c.id.in_(select(AUDIT_DEVICES.c.audit_id).where(AUDIT_DEVICES.c.device_id == device_id))
        )
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    query = query.order_by(AUDIT.c.at.desc(), AUDIT.c.id.desc()).limit(limit)
    with translated("reading the audit log failed"), engine.connect() as conn:
        return [
            AuditRow(
                id=row.id,
                at=row.at,
                actor_key_id=row.actor_key_id,
                actor_name=row.actor_name,
                role=row.role,
                action=row.action,
                params=dict(row.params or {}),
                device_ids=tuple(row.device_ids or ()),
                job_id=row.job_id,
                outcome=row.outcome,
                detail=row.detail,
            )
            for row in conn.execute(query)
        ]


def heartbeat(engine: Engine, owner: str, job_ids: Collection[str], at: datetime) -> int:
    """Renew `heartbeat_at` of the unfinished jobs `owner` runs, in one UPDATE; returns how many it renewed
    (fewer than asked when another process already ended one as abandoned: it stays ended)."""
    if not job_ids:
        return 0
    with translated("renewing action job heartbeats failed"), engine.begin() as conn:
        result = conn.execute(
            update(JOBS)
            .where(JOBS.c.id.in_(list(job_ids)), JOBS.c.owner == owner, JOBS.c.state.in_(UNFINISHED))
            .values(heartbeat_at=at)
        )
    return int(result.rowcount or 0)


def _abandoned(owner: str | None, stale_before: datetime) -> ColumnElement[bool]:
    """Unfinished, and owned by `owner` or silent since before `stale_before` (no owner or no heartbeat:
    stored before revision 0010)."""
    lapsed = or_(JOBS.c.owner.is_(None), JOBS.c.heartbeat_at.is_(None), JOBS.c.heartbeat_at < stale_before)
    if owner is not None:
        lapsed = or_(JOBS.c.owner == owner, lapsed)
    return JOBS.c.state.in_(UNFINISHED) & lapsed


def end_abandoned(
    engine: Engine,
    at: datetime,
    *,
    owner: str | None,
    stale_before: datetime,
    detail: Callable[[AbandonedJob], str],
    keep: Collection[str] = (),
) -> list[AbandonedJob]:
    """End the unfinished jobs nobody runs any more: those of `owner` (a process starting: whatever it
    ran before it stopped; None: none by owner) and those whose heartbeat is older than `stale_before`
    (their owner died), never those in `keep`. Each job `failed` with `detail(job)`, its queued or
    running tasks `cancelled`. Returns them.

    The condition is checked again by each job's UPDATE, so a job whose owner renewed its heartbeat
    between the read and the write is left running (PostgreSQL re-evaluates the WHERE of an UPDATE on
    the newest row version).
    """
    condition = _abandoned(owner, stale_before)
    if keep:
        condition = condition & JOBS.c.id.not_in(list(keep))
    ended: list[AbandonedJob] = []
    with translated("ending abandoned action jobs failed"), engine.begin() as conn:
        found = conn.execute(select(JOBS.c.id, JOBS.c.owner, JOBS.c.heartbeat_at).where(condition)).all()
        for row in found:
            job = AbandonedJob(row.id, row.owner, row.heartbeat_at)
            text = detail(job)
            result = conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job.id, condition)
                .values(state="failed", finished_at=at, detail=text)
            )
            if not result.rowcount:
                continue
            conn.execute(
                update(TASKS)
                .where(TASKS.c.job_id == job.id, TASKS.c.state.in_(UNFINISHED))
                .values(state="cancelled", detail=text, finished_at=at)
            )
            ended.append(job)
    return ended


def purge_idempotency(engine: Engine, before: datetime) -> int:
    """Delete the idempotency keys stored before `before` (their time to live is over); returns how many."""
    with translated("purging idempotency keys failed"), engine.begin() as conn:
        result = conn.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < before))
    return int(result.rowcount or 0)

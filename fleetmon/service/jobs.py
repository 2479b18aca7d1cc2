"""Run operator action jobs in the process that polls: asyncio tasks beside the poll loop.

A job is one action over one or more devices, in steps (one step, or a ramp's). Every device is a task:

    queued -> running -> succeeded | failed | refused        (refused: the firmware cannot do it,
    queued -> skipped | cancelled                              decided before anything is sent)

The runner resolves each device to the poller's cached Identity (identifying it afresh when the cache
has none: a device down at the last poll, or a poller pool whose identities live in its workers),
refuses up front what `collectors.actions.capabilities` says the firmware cannot do, and acts under
`ActionTimeouts` from the configuration, at most `actions.concurrency` devices at once. Every task has
a deadline (identification + the action's own + a second), so a hung, refusing or garbage-answering
miner ends its task with an error code and the job ends when every task has: a job is never stuck.

A ramp re-reads the site's measured power after each step from the snapshot of the next poll cycle
(`FleetAccess.wait_for_poll`), waits `interval_s`, and stops when the target is reached
(fleetmon.service.ramp has the rules). Cancelling stops the steps and tasks not started; those in
flight end as they end and are reported so. Every change is written through to storage at once, so
GET /api/v1/actions/{id} (any replica sharing the database) reads progress from one place; the audit log
gets the job's outcome per device group when it ends. Credentials are never logged.

Several collecting processes (one per site) may share one database, so a job is leased: it names its
owner (`actions.instance`), and while the owner runs jobs it renews their `heartbeat_at` every
`actions.heartbeat_s`, in one UPDATE for all of them, from a task of its own (not a job of the cycle
loop, where a long poll or housekeeping would delay it). A job nobody runs any more is ended `failed`
("interrupted: ..."): at start-up, the jobs this instance owns (it runs none yet, so they are what it
ran before it stopped) and any whose heartbeat is stale; by housekeeping (`end_stale`), the stale jobs
of owners that died. A job another live process runs is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from collectors import actions
from collectors.actions import ActionCredentials, ActionResult, ActionTimeouts
from collectors.connection import Timeouts
from collectors.drivers.control import Action, ActionRefusedError, UnsupportedActionError
from collectors.errors import MinerError
from collectors.identify import Identity
from collectors.reader import identify_device
from collectors.sample import utcnow
from collectors.targets import Target
from fleetmon.config import Settings
from fleetmon.service.power import SitePower
from fleetmon.service.ramp import (
    CURTAILING,
    Candidate,
    JobAction,
    RampRule,
    expected_change_w,
    take_step,
    target_reached,
    wake_overshoots,
)
from fleetmon.storage.actions import (
    AbandonedJob,
    AuditRow,
    end_abandoned,
    heartbeat,
    insert_audit,
    update_job,
    update_tasks,
)
from fleetmon.storage.engine import Engine
from fleetmon.storage.errors import StorageError

log = logging.getLogger(__name__)

TASK_SLACK_S = 1.0
"""Over identification + the action's deadline, before a task is ended as timed out."""
STOP_GRACE_S = 10.0
STALE_BEATS = 4
"""A job whose heartbeat is older than this many heartbeat intervals is taken for abandoned. Not one or
two: a renewal may come late without its owner being dead (a slow or briefly unreachable database, a
busy event loop, one failed UPDATE: each costs one interval), and the processes compare their own
clocks, which NTP keeps within a second or so, not exactly. Four intervals (a minute at the default
15 s) survive three missed renewals, and still end a dead owner's jobs within a few minutes (the next
housekeeping after that, or the next start of any collecting process)."""


class FleetAccess(Protocol):
    """What the runner needs of the process: the poller's identities and the measured site power."""

    def identity_of(self, target: Target) -> Identity | None:
        """The poller's cached identity of a target, if it has one."""
        ...

    def site_power(self, sites: tuple[str, ...]) -> SitePower | None:
        """The sites' power, together, in the current snapshot (fleetmon.service.power's rule)."""
        ...

    async def wait_for_poll(self, after: float, timeout: float) -> bool:
        """Wait for a poll cycle started at or after `after` (time.monotonic); False on timeout."""
        ...


@dataclass
class RunningJob:
    """A job this process runs: its plan, and the event that cancels it."""

    id: str
    action: JobAction
    on: bool
    watts: float | None
    devices: list[Candidate]  # eligible, in order
    rule: RampRule | None
    sites: tuple[str, ...]  # what a ramp measures (empty: nothing)
    steps: list[dict[str, Any]]
    actor_key_id: str
    actor_name: str | None
    role: str
    params: dict[str, Any]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    task_states: dict[int, tuple[str, str | None, str | None]] = field(default_factory=dict)


def collector_action(action: JobAction, on: bool) -> Action:
    """The collectors' action for an API action (locate's on/off chooses between two)."""
    match action:
        case JobAction.REBOOT:
            return Action.REBOOT
        case JobAction.LOCATE:
            return Action.LOCATE_ON if on else Action.LOCATE_OFF
        case JobAction.SLEEP:
            return Action.SLEEP
        case JobAction.WAKE:
            return Action.WAKE
        case JobAction.POWER_TARGET:
            return Action.POWER_TARGET


def action_credentials(settings: Settings) -> ActionCredentials:
    """The credential profiles actions use: the collector's (resolved now; never logged)."""
    c = settings.collector
    return ActionCredentials(
        antminer=settings.credential(c.credential_profile),
        vnish=settings.credential(c.vnish_credential_profile),
        whatsminer=settings.credential(c.whatsminer_credential_profile),
        braiins=settings.credential(c.braiins_credential_profile),
    )


def action_timeouts(settings: Settings) -> ActionTimeouts:
    """The configured action deadlines."""
    a = settings.actions
    return ActionTimeouts(connect=a.connect_timeout_s, read=a.read_timeout_s, action=a.timeout_s)


class JobRunner:
    """Runs jobs as asyncio tasks of this process; one semaphore bounds devices in flight across jobs."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        fleet: FleetAccess,
        poll_interval_s: float,
        *,
        credentials: ActionCredentials | None = None,
    ) -> None:
        self.engine = engine
        self.fleet = fleet
        self.timeouts = action_timeouts(settings)
        self.credentials = credentials or action_credentials(settings)
        self.identify_timeouts = Timeouts(
            connect=settings.collector.connect_timeout_s,
            read=settings.collector.timeout_s,
            device=settings.collector.timeout_s,
        )
        self.task_deadline_s = settings.collector.timeout_s + self.timeouts.action + TASK_SLACK_S
        self.poll_wait_s = settings.actions.step_poll_wait_s or (
            2 * poll_interval_s + settings.collector.timeout_s
        )
        self._semaphore = asyncio.Semaphore(settings.actions.concurrency)
        self._jobs: dict[str, RunningJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.instance = settings.actions.instance
        self.heartbeat_s = settings.actions.heartbeat_s
        self.stale_after = timedelta(seconds=STALE_BEATS * settings.actions.heartbeat_s)
        self._beating: asyncio.Task[None] | None = None

    async def recover(self, now: datetime | None = None) -> list[AbandonedJob]:
        """At start-up: end the jobs this instance left queued or running when it stopped, and those of
        other owners whose heartbeat is stale (never a job stuck forever, never one another process
        runs). Returns them; a storage error is logged (housekeeping tries the stale ones again)."""
        return await self._end_abandoned(now, owner=self.instance)

    async def end_stale(self, now: datetime | None = None) -> list[AbandonedJob]:
        """Housekeeping: end the unfinished jobs whose owner stopped renewing their heartbeat (it died, or
        lost the database for longer than the stale threshold); never one this process runs."""
        return await self._end_abandoned(now, owner=None)

    async def _end_abandoned(self, now: datetime | None, *, owner: str | None) -> list[AbandonedJob]:
        at = now or utcnow()

        def why(job: AbandonedJob) -> str:
            if job.owner == owner:
                return f"interrupted: the service ({job.owner}) stopped before it ended"
            if job.owner is None or job.heartbeat_at is None:
                return "interrupted: stored with no owner or heartbeat (before job leases) and never ended"
            silent = (at - job.heartbeat_at).total_seconds()
            return f"interrupted: its owner {job.owner} fell silent (no heartbeat for {silent:.0f} s)"

        try:
            ended = await asyncio.to_thread(
                end_abandoned,
                self.engine,
                at,
                owner=owner,
                stale_before=at - self.stale_after,
                detail=why,
                keep=tuple(self._jobs),
            )
        except StorageError as exc:
            log.warning("abandoned action jobs not checked: %s", exc)
            return []
        for job in ended:
            log.warning("action job %s ended failed: %s", job.id, why(job))
        return ended

    async def beat(self, now: datetime | None = None) -> int:
        """Renew the heartbeat of every job this process runs, in one UPDATE; how many it renewed."""
        ids = tuple(self._jobs)
        if not ids:
            return 0
        try:
            return await asyncio.to_thread(heartbeat, self.engine, self.instance, ids, now or utcnow())
        except StorageError as exc:
            log.warning("action job heartbeat not stored: %s", exc)
            return 0

    async def _heartbeats(self) -> None:
        """Renew the heartbeats every `heartbeat_s` while this process runs jobs (start() restarts it)."""
        while self._jobs:
            await asyncio.sleep(self.heartbeat_s)
            await self.beat()

    def refusal(self, action: JobAction, on: bool, host: str, port: int) -> str | None:
        """Why the device would be refused up front (its firmware cannot do the action, or the profile
        it needs is not configured), as far as the poller's cached identity tells; None when it would
        be attempted or the identity is not known yet (the task then decides). No I/O."""
        identity = self.fleet.identity_of(Target(host, port))
        if identity is None:
            return None
        return actions.refusal(identity, collector_action(action, on), self.credentials)

    def start(self, job: RunningJob) -> None:
        """Run a stored job (state queued) in the background."""
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job), name=f"fleetmon-job {job.id}")
        if self._beating is None or self._beating.done():
            self._beating = asyncio.create_task(self._heartbeats(), name="fleetmon-job-heartbeat")

    def running(self, job_id: str) -> RunningJob | None:
        """The job when this process is running it."""
        return self._jobs.get(job_id)

    async def wait(self, job_id: str) -> None:
        """Wait until the job ends (returns at once when it is not running here)."""
        task = self._tasks.get(job_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop; False when this process is not running it."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.cancelled.set()
        return True

    async def close(self) -> None:
        """Stop every job (the service is stopping): cancelled steps, in-flight tasks interrupted."""
        for job in self._jobs.values():
            job.cancelled.set()
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
            self._beating = None
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=STOP_GRACE_S)

    # ---- one job ---------------------------------------------------------------------------------

    async def _store(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A storage write in a thread; a failed write is logged, never ends the job."""
        try:
            await asyncio.to_thread(fn, self.engine, *args, **kwargs)
        except StorageError as exc:
            log.warning("action job progress not stored: %s", exc)

    async def _run(self, job: RunningJob) -> None:
        detail: str | None = None
        try:
            await self._store(update_job, job.id, state="running")
            if job.rule is None:
                await self._step(job, 0, job.devices)
            else:
                detail = await self._ramp(job, job.rule)
        except asyncio.CancelledError:
            detail = "interrupted: the service stopped"
            await self._finish(job, detail, interrupted=True)
            raise
        except Exception as exc:  # a bug must still end the job, never leave it running
            log.exception("action job %s failed", job.id)
            detail = f"internal error: {exc}"
            await self._finish(job, detail, interrupted=True)
        else:
            await self._finish(job, detail)
        finally:
            self._jobs.pop(job.id, None)
            self._tasks.pop(job.id, None)

    async def _ramp(self, job: RunningJob, rule: RampRule) -> str | None:
        """Steps until the devices or the target run out; returns a note on the target (or None)."""
        remaining = list(job.devices)
        index = 0
        target = rule.target_site_kw
        site_kw = self._site_kw(job)
        while remaining and not job.cancelled.is_set():
            if target is not None and job.action in CURTAILING and target_reached(site_kw, target):
                break
            step = take_step(remaining, rule, lambda d: expected_change_w(job.action, d, job.watts))
            if target is not None and job.action is JobAction.WAKE:
                step_w = [expected_change_w(job.action, d, job.watts) for d in step]
                step_kw = None if None in step_w else sum(w or 0.0 for w in step_w) / 1000.0
                if wake_overshoots(site_kw, step_kw, target):
                    break
            if index > 0 and rule.interval_s > 0 and await self._cancelled_within(job, rule.interval_s):
                break
            started = time.monotonic()
            await self._step(job, index, step)
            remaining = remaining[len(step) :]
            if job.cancelled.is_set():
                break
            await self.fleet.wait_for_poll(started, self.poll_wait_s)
            site = self.fleet.site_power(job.sites) if job.sites else None
            site_kw = site.kw if site is not None else None
            self._set_step(
                job,
                index,
                site_kw_after=site_kw,
                site_kw_after_sources=site.split() if site is not None else None,
            )
            await self._store(update_job, job.id, steps=job.steps)
            index += 1
        if target is None or site_kw is None:
            return None
        if job.action in CURTAILING:
            reached = target_reached(site_kw, target)
            return (
                f"site at {site_kw:.3f} kW, target {target:.3f} kW {'reached' if reached else 'not reached'}"
            )
        return f"site at {site_kw:.3f} kW, target {target:.3f} kW"

    def _site_kw(self, job: RunningJob) -> float | None:
        site = self.fleet.site_power(job.sites) if job.sites else None
        return site.kw if site is not None else None

    async def _cancelled_within(self, job: RunningJob, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.cancelled.wait(), seconds)
        return job.cancelled.is_set()

    def _set_step(self, job: RunningJob, index: int, **values: Any) -> None:
        while len(job.steps) <= index:
            job.steps.append(
                {
                    "index": len(job.steps),
                    "device_ids": [],
                    "state": "planned",
                    "expected_kw": None,
                    "started_at": None,
                    "finished_at": None,
                    "site_kw_after": None,
                    "site_kw_after_sources": None,
                }
            )
        job.steps[index].update(values)

    async def _step(self, job: RunningJob, index: int, devices: Sequence[Candidate]) -> None:
        ids = [d.device_id for d in devices]
        kw = [expected_change_w(job.action, d, job.watts) for d in devices]
        self._set_step(
            job,
            index,
            device_ids=ids,
            state="running",
            started_at=_iso(utcnow()),
            expected_kw=None if None in kw else round(sum(w or 0.0 for w in kw) / 1000.0, 3),
        )
        await self._store(update_job, job.id, steps=job.steps)
        await self._store(update_tasks, job.id, ids, step=index)
        await asyncio.gather(*(self._device(job, device) for device in devices))
        self._set_step(job, index, state="done", finished_at=_iso(utcnow()))
        await self._store(update_job, job.id, steps=job.steps)

    async def _device(self, job: RunningJob, device: Candidate) -> None:
        async with self._semaphore:
            if job.cancelled.is_set():
                return  # left queued: _finish reports it cancelled
            await self._store(update_tasks, job.id, [device.device_id], state="running", started_at=utcnow())
            state, code, detail, light = await self._act(job, device)
        job.task_states[device.device_id] = (state, code, detail)
        await self._store(
            update_tasks,
            job.id,
            [device.device_id],
            state=state,
            error_code=code,
            detail=detail,
            finished_at=utcnow(),
            locate=light,
        )

    async def _act(
        self, job: RunningJob, device: Candidate
    ) -> tuple[str, str | None, str | None, bool | None]:
        """(state, error code, detail, the light the device confirmed) of acting on one device, within
        the task's deadline. A locate's answer says the light's state; a reboot resets it (the
        firmware starts with it off); other actions say nothing about it (None)."""
        try:
            async with asyncio.timeout(self.task_deadline_s):
                identity = self.fleet.identity_of(Target(device.host, device.port))
                if identity is None:
                    identity = await identify_device(
                        device.host, device.port, timeouts=self.identify_timeouts
                    )
                action = collector_action(job.action, job.on)
                caps = actions.capabilities(identity)
                if action not in caps.supported:
                    return "refused", UnsupportedActionError.code, caps.unsupported.get(action), None
                result = await self._perform(job, identity)
        except (UnsupportedActionError, ActionRefusedError) as exc:
            return "refused", exc.code, str(exc), None
        except MinerError as exc:
            return "failed", exc.code, str(exc), None
        except TimeoutError:
            return "failed", "timeout", f"no result within {self.task_deadline_s:.0f} s", None
        light = False if job.action is JobAction.REBOOT else result.locate
        return "succeeded", None, result.detail, light

    def _perform(self, job: RunningJob, identity: Identity) -> Awaitable[ActionResult]:
        creds, timeouts = self.credentials, self.timeouts
        match job.action:
            case JobAction.REBOOT:
                return actions.reboot(identity, creds, timeouts=timeouts)
            case JobAction.LOCATE:
                return actions.locate(identity, job.on, creds, timeouts=timeouts)
            case JobAction.SLEEP:
                return actions.sleep(identity, creds, timeouts=timeouts)
            case JobAction.WAKE:
                return actions.wake(identity, creds, timeouts=timeouts)
            case JobAction.POWER_TARGET:
                assert job.watts is not None
                return actions.power_target(identity, job.watts, creds, timeouts=timeouts)

    async def _finish(self, job: RunningJob, detail: str | None, *, interrupted: bool = False) -> None:
        """Close the job: tasks never run are skipped (target reached) or cancelled, the state is
        decided, and the audit log gets one entry per outcome."""
        now = utcnow()
        stopped = job.cancelled.is_set() or interrupted
        leftover = [d.device_id for d in job.devices if d.device_id not in job.task_states]
        left_state = "cancelled" if stopped else "skipped"
        left_detail = detail if interrupted else ("cancelled" if stopped else "not needed: target reached")
        for device_id in leftover:
            job.task_states[device_id] = (left_state, None, left_detail)
        for step in job.steps:
            if step["state"] == "planned":
                step["state"] = "cancelled" if stopped else "skipped"
            elif step["state"] == "running":
                step["state"] = "cancelled"
        states = [s for s, _, _ in job.task_states.values()]
        bad = sum(s in {"failed", "refused"} for s in states)
        good = sum(s == "succeeded" for s in states)
        if job.cancelled.is_set() and not interrupted:
            final = "cancelled"
        elif interrupted:
            final = "failed"
        elif bad == 0:
            final = "succeeded"
        else:
            final = "failed" if good == 0 else "partial"
        with contextlib.suppress(asyncio.CancelledError):
            await self._store(
                update_tasks, job.id, leftover, state=left_state, detail=left_detail, finished_at=now
            )
            await self._store(
                update_job, job.id, state=final, finished_at=now, steps=job.steps, detail=detail
            )
            for entry in self._outcomes(job, now, detail):
                await self._store(insert_audit, entry)
        log.info("action job %s (%s) ended %s: %d ok, %d failed", job.id, job.action, final, good, bad)

    def _outcomes(self, job: RunningJob, at: datetime, detail: str | None) -> list[AuditRow]:
        groups: dict[str, list[int]] = {"succeeded": [], "failed": [], "cancelled": []}
        notes: list[str] = []
        for device_id, (state, code, why) in job.task_states.items():
            if state == "succeeded":
                groups["succeeded"].append(device_id)
            elif state in {"failed", "refused"}:
                groups["failed"].append(device_id)
                notes.append(f"device {device_id}: {state} {code or ''}: {why or ''}".rstrip(": "))
            elif state == "cancelled":
                groups["cancelled"].append(device_id)
        base = AuditRow(
            at=at,
            action=job.action.value,
            outcome="",
            actor_key_id=job.actor_key_id,
            actor_name=job.actor_name,
            role=job.role,
            params=job.params,
            job_id=job.id,
        )
        entries = []
        for outcome, ids in groups.items():
            if not ids:
                continue
            text = "; ".join(notes) if outcome == "failed" else detail
            entries.append(replace(base, outcome=outcome, device_ids=tuple(sorted(ids)), detail=text))
        if not entries:
            entries.append(replace(base, outcome="succeeded", detail=detail or "no device needed acting on"))
        return entries


def _iso(at: datetime) -> str:
    return at.isoformat()

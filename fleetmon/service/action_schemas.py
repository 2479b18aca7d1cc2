"""Request and response models of the actions API (`/api/v1/devices/{id}/actions`, `/api/v1/actions`,
`/api/v1/audit`): the contract the dashboard and `fleetmon action` code against (docs/actions.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from collectors.sample import State
from fleetmon.service.ramp import JobAction

MAX_DEVICE_ID = 2**31 - 1
MAX_WATTS = 100_000.0  # no single miner draws 100 kW: a bigger number is a unit mistake
MAX_INTERVAL_S = 3600.0

JobState = Literal["queued", "running", "succeeded", "failed", "partial", "cancelled"]
TaskState = Literal["queued", "running", "succeeded", "failed", "refused", "skipped", "cancelled"]
StepState = Literal["planned", "running", "done", "skipped", "cancelled"]
Outcome = Literal["accepted", "refused", "succeeded", "failed", "cancelled", "dry_run"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionParams(_In):
    """`locate`: `on` (default true). `power_target`: `watts` (required, > 0). Others take none."""

    on: bool = True
    watts: float | None = Field(default=None, gt=0, le=MAX_WATTS)


class DeviceActionRequest(_In):
    """One action on one device."""

    action: JobAction
    params: ActionParams = Field(default_factory=ActionParams)


class Selector(_In):
    """Which devices: every criterion given must match (exact, case-insensitive); at least one."""

    site: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    state: State | None = None
    ids: list[Annotated[int, Field(ge=1, le=MAX_DEVICE_ID)]] | None = Field(default=None, max_length=100_000)


class Ramp(_In):
    """Staged: steps of at most `step_devices` devices / `step_kw` kW of expected change (a tenth of
    the devices per step when neither is given), `interval_s` apart, until the site's measured power
    reaches `target_site_kw` when given."""

    step_devices: int | None = Field(default=None, ge=1, le=100_000)
    step_kw: float | None = Field(default=None, gt=0, le=1_000_000)
    interval_s: float = Field(ge=0, le=MAX_INTERVAL_S)
    target_site_kw: float | None = Field(default=None, ge=0, le=10_000_000)


class FleetActionRequest(_In):
    """One action on the devices a selector chooses, at once or staged; `dry_run` gives the plan only."""

    action: JobAction
    params: ActionParams = Field(default_factory=ActionParams)
    selector: Selector
    dry_run: bool = False
    ramp: Ramp | None = None


class StepOut(_Out):
    """One step of a job: its devices, and the measured site power read after it."""

    index: int
    device_ids: list[int]
    state: StepState
    expected_kw: float | None = Field(description="planned change in kW (null: unknown)")
    started_at: datetime | None
    finished_at: datetime | None
    site_kw_after: float | None = Field(description="the site's measured power at the poll after the step")


class TaskOut(_Out):
    """One device's part of a job."""

    device_id: int
    host: str
    state: TaskState
    error_code: str | None
    detail: str | None
    finished_at: datetime | None


class JobOut(_Out):
    """An action job and its progress."""

    id: str
    action: JobAction
    params: dict[str, bool | float]
    state: JobState
    created_at: datetime
    finished_at: datetime | None
    actor: str = Field(description="the key's name, else its public id")
    dry_run: Literal[False] = False
    devices_total: int
    devices_done: int
    devices_failed: int
    steps: list[StepOut]
    tasks: list[TaskOut]
    detail: str | None = None


class JobList(_Out):
    """Recent jobs, newest first."""

    jobs: list[JobOut]


class PlannedDevice(_Out):
    """A selected device in a plan, with the reason it takes no part when it does not."""

    device_id: int
    host: str
    site: str
    model: str | None
    state: State
    power_w: float | None
    excluded: str | None = None


class PlannedStep(_Out):
    """One planned step."""

    index: int
    device_ids: list[int]
    expected_kw: float | None


class PlanOut(_Out):
    """A dry run: what would be done, in order; nothing was sent."""

    dry_run: Literal[True] = True
    action: JobAction
    params: dict[str, bool | float]
    devices: list[PlannedDevice]
    steps: list[PlannedStep]
    site: str | None
    site_kw: float | None = Field(description="the site's measured power now")
    target_site_kw: float | None
    expected_site_kw_after: float | None


class AuditEntryOut(_Out):
    """One audit log entry."""

    id: int
    at: datetime
    actor: str | None
    role: str | None
    action: str
    params: dict[str, object]
    device_ids: list[int]
    job_id: str | None
    outcome: Outcome
    detail: str | None


class AuditPage(_Out):
    """Audit entries, newest first."""

    entries: list[AuditEntryOut]

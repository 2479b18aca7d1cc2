"""Request and response models of the actions API (`/api/v1/devices/{id}/actions`, `/api/v1/actions`,
`/api/v1/audit`): the contract the dashboard and `fleetmon action` code against (docs/actions.md)."""

from __future__ import annotations

from dataclasses import dataclass
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
    """An action's parameters, normalised: `on` for locate, `watts` for power_target."""

    on: bool = True
    watts: float | None = None


class NoParams(_In):
    """reboot, sleep and wake take no parameter."""


class LocateParams(_In):
    """Blink the locate light (`on`: true, the default) or stop it."""

    on: bool = True


class PowerParams(_In):
    """Run at no more than `watts` (the firmware's nearest setting at or under it)."""

    watts: float = Field(gt=0, le=MAX_WATTS)


class _Plain(_In):
    action: Literal["reboot", "sleep", "wake"]
    params: NoParams = Field(default_factory=NoParams)


class _Locate(_In):
    action: Literal["locate"]
    params: LocateParams = Field(default_factory=LocateParams)


class _Power(_In):
    action: Literal["power_target"]
    params: PowerParams


class PlainAction(_Plain):
    """reboot, sleep or wake one device."""


class LocateAction(_Locate):
    """locate on one device."""


class PowerAction(_Power):
    """power_target on one device."""


DeviceActionRequest = Annotated[PlainAction | LocateAction | PowerAction, Field(discriminator="action")]
"""One action on one device: `{"action": ..., "params": {...}}`."""


class Selector(_In):
    """Which devices: every criterion given must match (exact, case-insensitive); at least one."""

    site: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    state: State | None = None
    ids: list[Annotated[int, Field(ge=1, le=MAX_DEVICE_ID)]] | None = Field(default=None, max_length=100_000)


class Ramp(_In):
    """Staged: steps of at most `step_devices` devices / `step_kw` kW of expected change (a tenth of
    the devices per step when neither is given), `interval_s` apart, until the measured power of the
    site (of all the sites of the selection, together) reaches `target_site_kw` when given."""

    step_devices: int | None = Field(default=None, ge=1, le=100_000)
    step_kw: float | None = Field(default=None, gt=0, le=1_000_000)
    interval_s: float = Field(ge=0, le=MAX_INTERVAL_S)
    target_site_kw: float | None = Field(default=None, ge=0, le=10_000_000)


class _Fleet(_In):
    selector: Selector
    dry_run: bool = False
    ramp: Ramp | None = None


class FleetPlainAction(_Plain, _Fleet):
    """reboot, sleep or wake the selected devices."""


class FleetLocateAction(_Locate, _Fleet):
    """locate on the selected devices."""


class FleetPowerAction(_Power, _Fleet):
    """power_target on the selected devices."""


FleetActionBody = Annotated[
    FleetPlainAction | FleetLocateAction | FleetPowerAction, Field(discriminator="action")
]
"""One action on the devices a selector chooses, at once or staged; `dry_run` gives the plan only."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A request in one shape, whichever route and variant it came from."""

    action: JobAction
    params: ActionParams
    selector: Selector
    dry_run: bool = False
    ramp: Ramp | None = None

    @classmethod
    def of(cls, body: PlainAction | LocateAction | PowerAction, device_id: int) -> ActionRequest:
        """A one-device request."""
        return cls(JobAction(body.action), _params(body), Selector(ids=[device_id]))

    @classmethod
    def of_fleet(cls, body: FleetPlainAction | FleetLocateAction | FleetPowerAction) -> ActionRequest:
        """A selector request."""
        return cls(JobAction(body.action), _params(body), body.selector, body.dry_run, body.ramp)

    def body(self) -> dict[str, object]:
        """The request as JSON values (what an idempotency key's fingerprint covers)."""
        return {
            "action": self.action.value,
            "params": self.params.model_dump(mode="json"),
            "selector": self.selector.model_dump(mode="json", exclude_none=True),
            "dry_run": self.dry_run,
            "ramp": self.ramp.model_dump(mode="json") if self.ramp is not None else None,
        }


def _params(body: _Plain | _Locate | _Power) -> ActionParams:
    if isinstance(body, _Locate):
        return ActionParams(on=body.params.on)
    if isinstance(body, _Power):
        return ActionParams(watts=body.params.watts)
    return ActionParams()


class PowerSplit(_Out):
    """How much of a site power figure came from each source (docs/actions.md, "Power figures")."""

    reported_kw: float = Field(description="watts the devices report about themselves")
    pdu_kw: float = Field(description="measured at the PDU outlets of devices that report none")
    estimated_kw: float = Field(
        description="estimated from the catalog's nominal watts (hashing, scaled by hashrate/expected) or"
        " the idle figure (sleeping), for devices neither reports nor measures"
    )
    devices_unknown: int = Field(description="devices of the sites with no figure at all (down)")


class StepOut(_Out):
    """One step of a job: its devices, and the measured site power read after it."""

    index: int
    device_ids: list[int]
    state: StepState
    expected_kw: float | None = Field(description="planned change in kW (null: unknown)")
    started_at: datetime | None
    finished_at: datetime | None
    site_kw_after: float | None = Field(description="the site's power at the poll after the step")
    site_kw_after_sources: PowerSplit | None = Field(
        default=None, description="site_kw_after by source: how much of it is estimated"
    )


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
    owner: str | None = Field(
        default=None,
        description="the collecting process running the job (`actions.instance`; null: a job stored before"
        " job leases)",
    )
    heartbeat_at: datetime | None = Field(
        default=None, description="when the owner last renewed its lease on the job (while it runs)"
    )
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
    power_w: float | None = Field(description="its power now, by the rule of power_source")
    power_source: Literal["reported", "pdu", "estimated"] | None = Field(
        default=None, description="where power_w comes from (null: no figure)"
    )
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
    site: str | None = Field(description="the site a ramp measures (null: none, or several)")
    sites: list[str] = Field(description="the sites of the selected devices a ramp measures, together")
    site_kw: float | None = Field(
        description="their power now: each device's reported watts, else its PDU outlet's, else estimated"
    )
    site_kw_sources: PowerSplit | None = Field(default=None, description="site_kw by source")
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

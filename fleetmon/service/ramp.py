"""Plan an action over many devices: which devices, in which order, in which steps (pure, no I/O).

A ramp cuts the devices into steps of at most `step_devices` devices and at most `step_kw` kW of
expected change (a step always takes at least one device, so a device whose own change exceeds
`step_kw` is a step alone). Expected change is planned from the device's power now as
fleetmon.service.power gives it (reported, else its PDU outlet's, else the catalog's estimate; the
site's figure is summed by the same rule, so what a step removes shows in it): a device going to sleep
removes at most the watts it draws now (a sleeping miner still draws some: the simulator reports
~60 W), a power target removes at most `power - target`, and a device woken brings back what it drew
before it was put to sleep (recorded on the sleep's task) when known. A device whose change cannot be
known (no figure at all) is a step of its own.

With a site target (`target_site_kw`) the plan is a forecast: steps are listed until the expected site
power reaches the target; the job itself re-reads the measured site power after each step and stops
when it is at or under the target (curtailment), or before a step would take it over (wake), taking
further steps in the same order when the measured power says the forecast fell short.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from collectors.sample import State, is_down

DEFAULT_STEP_SHARE = 0.1
"""A ramp naming neither step_devices nor step_kw moves a tenth of the devices per step (at least one)."""


class JobAction(StrEnum):
    """What the API lets an operator ask for (locate's on/off is a parameter)."""

    REBOOT = "reboot"
    LOCATE = "locate"
    SLEEP = "sleep"
    WAKE = "wake"
    POWER_TARGET = "power_target"


CURTAILING = frozenset({JobAction.SLEEP, JobAction.POWER_TARGET})


@dataclass(frozen=True, slots=True)
class Candidate:
    """One selected device as the snapshot shows it."""

    device_id: int
    host: str
    port: int
    site: str
    model: str | None
    state: State
    power_w: float | None  # its power now (fleetmon.service.power), None when nothing gives a figure
    efficiency_jth: float | None = None
    restore_w: float | None = None  # wake: the watts it drew before it was put to sleep, when recorded
    power_source: str | None = None  # reported | pdu | estimated (fleetmon.service.power.PowerSource)


@dataclass(frozen=True, slots=True)
class RampRule:
    """Step limits: at most this many devices and this many kW of expected change per step."""

    step_devices: int | None
    step_kw: float | None
    interval_s: float
    target_site_kw: float | None


@dataclass(frozen=True, slots=True)
class Step:
    """One planned step: its devices and the kW change they are expected to make (None: unknown)."""

    index: int
    device_ids: tuple[int, ...]
    expected_kw: float | None


def expected_change_w(action: JobAction, device: Candidate, watts: float | None) -> float | None:
    """The watts acting on `device` is expected to change at most (positive), None when unknown."""
    match action:
        case JobAction.SLEEP:
            return device.power_w
        case JobAction.POWER_TARGET:
            if device.power_w is None or watts is None:
                return None
            return max(0.0, device.power_w - watts)
        case JobAction.WAKE:
            return device.restore_w
        case _:
            return None


def order(action: JobAction, devices: Iterable[Candidate]) -> list[Candidate]:
    """The order devices are acted on: curtailment takes the least efficient (then most power-hungry)
    first; wake brings the most efficient back first; other actions go by device id."""
    items = list(devices)
    if action in CURTAILING:
        return sorted(
            items,
            key=lambda d: (
                -(d.efficiency_jth if d.efficiency_jth is not None else -1.0),
                -(d.power_w or 0.0),
                d.device_id,
            ),
        )
    if action is JobAction.WAKE:
        return sorted(
            items,
            key=lambda d: (d.efficiency_jth if d.efficiency_jth is not None else math.inf, d.device_id),
        )
    return sorted(items, key=lambda d: d.device_id)


def eligible(action: JobAction, device: Candidate, watts: float | None, targeted: bool) -> str | None:
    """Why a selected device takes no part in a ramp towards a site target (None: it does)."""
    if not targeted:
        return None
    if is_down(device.state):
        return f"device is {device.state.value}"
    if action in CURTAILING:
        if device.state is State.SLEEPING:
            return "already sleeping"
        change = expected_change_w(action, device, watts)
        if change is None:
            return (
                "no power figure (it reports none, no PDU outlet measures it, and its model has no "
                "nominal watts to estimate from): curtailing it would not show in the site's power"
            )
        if change <= 0:
            return "already at or under the power target"
        return None
    if action is JobAction.WAKE and device.state is not State.SLEEPING:
        return f"not sleeping ({device.state.value})"
    return None


def default_rule(rule: RampRule, devices: int) -> RampRule:
    """The rule with a step size filled in when the request named none."""
    if rule.step_devices is None and rule.step_kw is None:
        step = max(1, math.ceil(devices * DEFAULT_STEP_SHARE))
        return RampRule(step, None, rule.interval_s, rule.target_site_kw)
    return rule


def take_step(
    remaining: Sequence[Candidate],
    rule: RampRule,
    change_w: Callable[[Candidate], float | None],
) -> list[Candidate]:
    """The next step from the front of `remaining`: at most `step_devices` devices and `step_kw` kW of
    expected change; at least one device. A device of unknown change goes alone when a kW limit is set."""
    step: list[Candidate] = []
    total_w = 0.0
    limit_w = rule.step_kw * 1000.0 if rule.step_kw is not None else None
    for device in remaining:
        if rule.step_devices is not None and len(step) >= rule.step_devices:
            break
        change = change_w(device)
        if limit_w is not None:
            if change is None:
                if not step:
                    step.append(device)
                break
            if step and total_w + change > limit_w:
                break
        step.append(device)
        total_w += change or 0.0
    return step


def plan_steps(
    action: JobAction,
    devices: Sequence[Candidate],
    rule: RampRule | None,
    *,
    watts: float | None,
    site_kw: float | None,
) -> list[Step]:
    """The steps for `devices` (already ordered and eligible). Without a rule: one step of all. With a
    site target: steps until the expected site power reaches it (curtail), or until the next step would
    take it over (wake); the job takes more steps if the measured power says so."""
    if rule is None:
        ids = tuple(d.device_id for d in devices)
        return [Step(0, ids, _kw(action, devices, watts))] if ids else []
    steps: list[Step] = []
    remaining = list(devices)
    expected_kw = site_kw
    while remaining:
        target = rule.target_site_kw
        if target is not None and action in CURTAILING and target_reached(expected_kw, target):
            break
        step = take_step(remaining, rule, lambda d: expected_change_w(action, d, watts))
        step_kw = _kw(action, step, watts)
        if target is not None and action is JobAction.WAKE and wake_overshoots(expected_kw, step_kw, target):
            break
        steps.append(Step(len(steps), tuple(d.device_id for d in step), step_kw))
        remaining = remaining[len(step) :]
        if expected_kw is not None and step_kw is not None:
            expected_kw += step_kw if action is JobAction.WAKE else -step_kw
    return steps


def target_reached(site_kw: float | None, target_kw: float) -> bool:
    """Curtailment is done: the site's (measured or expected) power is at or under the target."""
    return site_kw is not None and site_kw <= target_kw


def wake_overshoots(site_kw: float | None, step_kw: float | None, target_kw: float) -> bool:
    """Waking a step of `step_kw` could take the site over the target (or either figure is unknown)."""
    return site_kw is None or step_kw is None or site_kw + step_kw > target_kw


def _kw(action: JobAction, devices: Iterable[Candidate], watts: float | None) -> float | None:
    total = 0.0
    for device in devices:
        change = expected_change_w(action, device, watts)
        if change is None:
            return None
        total += change
    return round(total / 1000.0, 3)

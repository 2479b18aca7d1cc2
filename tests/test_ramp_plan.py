"""The ramp planner (pure): step limits, order, eligibility for a site target, measured power only."""

from __future__ import annotations

from collectors.sample import State
from fleetmon.service.power import DevicePower, PowerSource, total
from fleetmon.service.ramp import (
    Candidate,
    JobAction,
    RampRule,
    default_rule,
    eligible,
    order,
    plan_steps,
)


def _device(
    device_id: int, power_w: float | None, jth: float | None = 30.0, state: State = State.MINING
) -> Candidate:
    return Candidate(device_id, f"10.0.0.{device_id}", 4028, "s", "m", state, power_w, jth, restore_w=power_w)


def test_no_step_exceeds_its_device_or_kw_limit() -> None:
    devices = [_device(i, 3000.0 + 100 * i) for i in range(1, 11)]
    for rule in (RampRule(3, None, 0, None), RampRule(None, 7.0, 0, None), RampRule(4, 6.5, 0, None)):
        steps = plan_steps(JobAction.SLEEP, devices, rule, watts=None, site_kw=None)
        assert sorted(d for s in steps for d in s.device_ids) == list(range(1, 11))
        for step in steps:
            assert rule.step_devices is None or len(step.device_ids) <= rule.step_devices
            assert rule.step_kw is None or (step.expected_kw is not None and step.expected_kw <= rule.step_kw)


def test_a_device_bigger_than_step_kw_is_a_step_alone() -> None:
    steps = plan_steps(
        JobAction.SLEEP,
        [_device(1, 5000.0), _device(2, 1000.0)],
        RampRule(None, 2.0, 0, None),
        watts=None,
        site_kw=None,
    )
    assert [s.device_ids for s in steps] == [(1,), (2,)]


def test_curtailment_plans_until_the_measured_site_power_reaches_the_target() -> None:
    devices = [_device(i, 3000.0) for i in range(1, 7)]
    steps = plan_steps(JobAction.SLEEP, devices, RampRule(2, None, 0, 10.0), watts=None, site_kw=18.0)
    # 18 kW down to 10 kW: 8 kW needed, 6 kW per two-device step, so two steps.
    assert [s.device_ids for s in steps] == [(1, 2), (3, 4)]
    assert sum(s.expected_kw or 0 for s in steps) >= 8.0
    assert sum(s.expected_kw or 0 for s in steps[:-1]) < 8.0


def test_a_target_leaves_out_what_the_measured_power_cannot_show() -> None:
    assert eligible(JobAction.SLEEP, _device(1, None), None, targeted=True) is not None
    assert eligible(JobAction.SLEEP, _device(2, 60.0, state=State.SLEEPING), None, targeted=True) is not None
    assert (
        eligible(JobAction.SLEEP, _device(3, None, state=State.UNREACHABLE), None, targeted=True) is not None
    )
    assert eligible(JobAction.POWER_TARGET, _device(4, 2000.0), 2500.0, targeted=True) is not None
    assert eligible(JobAction.SLEEP, _device(5, 3000.0), None, targeted=True) is None
    assert eligible(JobAction.SLEEP, _device(1, None), None, targeted=False) is None


def test_curtailment_takes_the_least_efficient_first_and_wake_the_most_efficient() -> None:
    devices = [_device(1, 3000.0, 20.0), _device(2, 3000.0, 40.0), _device(3, 3000.0, None)]
    assert [d.device_id for d in order(JobAction.SLEEP, devices)] == [2, 1, 3]
    assert [d.device_id for d in order(JobAction.WAKE, devices)] == [1, 2, 3]


def test_wake_with_a_target_stops_before_a_step_would_exceed_it() -> None:
    devices = [_device(i, 3000.0) for i in range(1, 5)]
    steps = plan_steps(JobAction.WAKE, devices, RampRule(1, None, 0, 10.0), watts=None, site_kw=3.5)
    assert [s.device_ids for s in steps] == [(1,), (2,)]


def test_a_ramp_without_step_limits_moves_a_tenth_per_step() -> None:
    assert default_rule(RampRule(None, None, 5, None), 25).step_devices == 3
    assert default_rule(RampRule(None, None, 5, None), 3).step_devices == 1


def test_site_power_counts_only_devices_with_a_figure() -> None:
    # Moved from ramp.site_power_kw to fleetmon.service.power.total (figures now carry their source).
    reported, idle = DevicePower(3000.0, PowerSource.REPORTED), DevicePower(60.0, PowerSource.ESTIMATED)
    site = total([reported, None, idle])
    assert site is not None and site.kw == 3.06
    assert (site.reported_kw, site.estimated_kw, site.pdu_kw, site.unknown) == (3.0, 0.06, 0.0, 1)
    assert total([None, None]) is None

"""What a device draws, for planning a ramp and for a site's measured power, and where the figure came from.

Most stock Antminers report no watts, as the real firmware does not, so a site's power summed over the
devices that report it leaves them out, and a curtailment planned on it could not touch them. The rule,
per device, first that applies:

- `reported`: the watts the device reports about itself (`Sample.power_w`);
- `pdu`: the watts of the PDU outlet mapped to it, when that outlet was read (fleetmon.service.pdus);
- `estimated`: from the model catalog's nominal watts (`collectors.models`): while it hashes, the nominal
  watts scaled by hashrate / expected hashrate (power follows the clocks, as the simulator and the
  firmware's own power tables have it), never under the idle figure; while it sleeps, `IDLE_W` (the
  control board and the fans' floor; the simulator's sleeping Whatsminer reports about that).

None when none applies (down, or no hashrate and no nominal watts). A site's power is the sum of its
devices' figures, with the share of each source, so a reader can tell how much of it is measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from collectors.models import branded_lookup
from collectors.sample import Sample, State, is_down
from fleetmon.service.snapshot import DeviceView, FleetSnapshot

IDLE_W = 60.0
"""Estimated draw of a sleeping (or idle, not hashing) miner: its controller and fans."""
MAX_ESTIMATE_RATIO = 1.5
"""An estimate never scales the nominal watts above this (a hashrate read far over the expectation)."""


class PowerSource(StrEnum):
    """Where a device's watts come from."""

    REPORTED = "reported"
    PDU = "pdu"
    ESTIMATED = "estimated"


@dataclass(frozen=True, slots=True)
class DevicePower:
    """A device's watts and where the figure came from."""

    watts: float
    source: PowerSource


@dataclass(frozen=True, slots=True)
class SitePower:
    """A site's (or several sites') power and each source's share of it, in kW."""

    kw: float
    reported_kw: float
    pdu_kw: float
    estimated_kw: float
    devices: int  # devices with a figure
    unknown: int  # devices without one (down, or nothing to estimate from)

    def split(self) -> dict[str, float | int]:
        """The share of each source, as the API's `PowerSplit` and a job's stored steps hold it."""
        return {
            "reported_kw": self.reported_kw,
            "pdu_kw": self.pdu_kw,
            "estimated_kw": self.estimated_kw,
            "devices_unknown": self.unknown,
        }


def estimate_w(sample: Sample) -> float | None:
    """The catalog's estimate of what the device draws now (see the module docstring), or None."""
    if is_down(sample.state):
        return None
    if sample.state is State.SLEEPING:
        return IDLE_W
    spec = branded_lookup(sample.model, sample.make)
    nominal_w = spec.nominal_w if spec is not None else None
    if nominal_w is None or sample.hashrate_ths is None:
        return None
    expected = sample.expected_hashrate_ths or (spec.nominal_ths if spec is not None else None)
    if not expected:
        return None
    ratio = min(MAX_ESTIMATE_RATIO, max(0.0, sample.hashrate_ths / expected))
    return round(max(IDLE_W, nominal_w * ratio), 1)


def device_power(sample: Sample, outlet_w: float | None) -> DevicePower | None:
    """The device's watts by the first rule that applies: reported, its PDU outlet, estimated."""
    if sample.power_w is not None:
        return DevicePower(sample.power_w, PowerSource.REPORTED)
    if outlet_w is not None:
        return DevicePower(outlet_w, PowerSource.PDU)
    estimate = estimate_w(sample)
    return DevicePower(estimate, PowerSource.ESTIMATED) if estimate is not None else None


def outlet_watts(snapshot: FleetSnapshot) -> dict[tuple[str, str], float]:
    """The last read watts of every PDU outlet mapped to a miner, by (the PDU's site, miner ip)."""
    found: dict[tuple[str, str], float] = {}
    for pdu in snapshot.pdus:
        if pdu.reading is None or pdu.error is not None:
            continue
        measured = {(o.unit, o.index): o.power_w for o in pdu.reading.outlets}
        for key, ip in pdu.outlet_miners.items():
            watts = measured.get(key)
            if watts is not None:
                found[(pdu.site, ip)] = watts
    return found


def view_power(view: DeviceView, outlets: Mapping[tuple[str, str], float]) -> DevicePower | None:
    """One device view's power, with the outlet map of its snapshot (`outlet_watts`)."""
    return device_power(view.sample, outlets.get((view.site, view.sample.ip)))


def site_power(snapshot: FleetSnapshot, sites: Iterable[str]) -> SitePower | None:
    """The sites' power together in this snapshot, with each source's share; None when no device of
    them has a figure."""
    wanted = set(sites)
    outlets = outlet_watts(snapshot)
    return total(view_power(v, outlets) for v in snapshot.devices if v.site in wanted)


def total(powers: Iterable[DevicePower | None]) -> SitePower | None:
    """The sum of device figures by source (None when none is known)."""
    by_source = dict.fromkeys(PowerSource, 0.0)
    known = unknown = 0
    for power in powers:
        if power is None:
            unknown += 1
            continue
        known += 1
        by_source[power.source] += power.watts
    if not known:
        return None
    return SitePower(
        kw=round(sum(by_source.values()) / 1000.0, 3),
        reported_kw=round(by_source[PowerSource.REPORTED] / 1000.0, 3),
        pdu_kw=round(by_source[PowerSource.PDU] / 1000.0, 3),
        estimated_kw=round(by_source[PowerSource.ESTIMATED] / 1000.0, 3),
        devices=known,
        unknown=unknown,
    )

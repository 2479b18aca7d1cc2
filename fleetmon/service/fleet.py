"""The fleet service functions behind the routes: device list, fleet summary, device detail.

List and summary read the current snapshot (memory: the fleet state, published off the request path);
the detail also reads storage (recent samples through the (device_id, ts) key, history from the hourly
rollups).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collectors.models import is_sha256
from collectors.sample import Sample, State, is_down
from fleetmon.service.schemas import (
    DeviceDetail,
    DeviceItem,
    DevicePage,
    DeviceRef,
    FleetSummary,
    HourlyPoint,
    LocateOut,
    SiteFigures,
)
from fleetmon.service.snapshot import DeviceView, FleetSnapshot
from fleetmon.service.state import FleetState, device_view
from fleetmon.storage.actions import LightMark, lights_set
from fleetmon.storage.engine import Engine
from fleetmon.storage.fleet import DeviceRecord, device_record, hourly_history, recent_samples

SUMMARY_LIST_LENGTH = 10
UNKNOWN = "unknown"


def _snapshot_time(snapshot: FleetSnapshot) -> datetime | None:
    return datetime.fromtimestamp(snapshot.taken_at, UTC) if snapshot.taken_at else None


def device_item(view: DeviceView) -> DeviceItem:
    """The API shape of one device view."""
    s = view.sample
    return DeviceItem(
        id=view.device_id,
        site=view.site,
        ip=s.ip,
        port=s.port,
        make=s.make,
        manufacturer=view.manufacturer,
        manufacturer_country=view.manufacturer_country,
        model=s.model,
        serial=s.serial,
        firmware_vendor=s.firmware_vendor,
        firmware_version=s.firmware_version,
        assembly_country=view.assembly_country,
        origin_source=view.origin_source,
        state=s.state,
        hashrate_ths=s.hashrate_ths,
        expected_hashrate_ths=s.expected_hashrate_ths,
        temp_max_c=s.temp_max_c,
        power_w=s.power_w,
        efficiency_jth=s.efficiency_jth,
        last_seen=s.ts,
    )


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """Exact, case-insensitive filters of the device list; None leaves a field unfiltered.

    `assembly_country=unknown` selects the devices whose origin is not known.
    """

    site: str | None = None
    make: str | None = None
    model: str | None = None
    state: State | None = None
    firmware_vendor: str | None = None
    assembly_country: str | None = None

    def matches(self, view: DeviceView) -> bool:
        """True when the view passes every filter given."""
        s = view.sample
        checks = (
            (self.site, view.site),
            (self.make, s.make),
            (self.model, s.model),
            (self.firmware_vendor, s.firmware_vendor),
            (self.assembly_country, view.assembly_country or UNKNOWN),
        )
        for wanted, value in checks:
            if wanted is not None and (value is None or value.casefold() != wanted.casefold()):
                return False
        return self.state is None or s.state is self.state


def list_devices(snapshot: FleetSnapshot, where: DeviceFilter, limit: int, offset: int) -> DevicePage:
    """One page of the devices matching `where`, ordered by site then IP address."""
    matching = [view for view in snapshot.devices if where.matches(view)]
    page = matching[offset : offset + limit]
    return DevicePage(
        items=[device_item(view) for view in page],
        total=len(matching),
        limit=limit,
        offset=offset,
        snapshot_at=_snapshot_time(snapshot),
    )


def _ratio(view: DeviceView) -> float | None:
    s = view.sample
    if s.hashrate_ths is None or not s.expected_hashrate_ths:
        return None
    return s.hashrate_ths / s.expected_hashrate_ths


def _ref(view: DeviceView) -> DeviceRef:
    s = view.sample
    return DeviceRef(
        id=view.device_id,
        site=view.site,
        ip=s.ip,
        model=s.model,
        state=s.state,
        hashrate_ths=s.hashrate_ths,
        expected_hashrate_ths=s.expected_hashrate_ths,
        performance_ratio=_ratio(view),
        temp_max_c=s.temp_max_c,
    )


def _sites(views: Iterable[DeviceView]) -> list[SiteFigures]:
    totals: dict[str, list[float]] = {}
    for view in views:
        s = view.sample
        row = totals.setdefault(view.site, [0, 0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += not is_down(s.state)
        if is_sha256(s.algorithm):  # other algorithms' rates are not TH/s of bitcoin
            row[2] += s.hashrate_ths or 0.0
            row[3] += s.expected_hashrate_ths or 0.0
        row[4] += s.power_w or 0.0
    return [
        SiteFigures(
            site=site,
            devices=int(r[0]),
            up=int(r[1]),
            hashrate_ths=r[2],
            expected_hashrate_ths=r[3],
            power_w=r[4],
        )
        for site, r in sorted(totals.items())
    ]


def fleet_summary(snapshot: FleetSnapshot) -> FleetSummary:
    """Devices by state, totals, J/TH, the hottest devices and the worst against their nominal rate.

    Worst performers are devices that report a hashrate below their expected one; unreachable devices
    are counted in `devices_by_state`, not ranked as 0 TH/s (an outage is a state, not a reading).
    """
    views = snapshot.devices
    by_state = {state.value: 0 for state in State}
    hashrate = expected = power = 0.0
    rated_h = rated_e = eff_p = eff_h = 0.0
    for view in views:
        s = view.sample
        by_state[s.state.value] += 1
        power += s.power_w or 0.0
        if not is_sha256(s.algorithm):
            continue  # a Scrypt or X11 rate is not TH/s of bitcoin: never added in
        hashrate += s.hashrate_ths or 0.0
        expected += s.expected_hashrate_ths or 0.0
        if s.hashrate_ths is not None and s.expected_hashrate_ths:
            rated_h += s.hashrate_ths
            rated_e += s.expected_hashrate_ths
        if s.power_w is not None and s.hashrate_ths:
            eff_p += s.power_w
            eff_h += s.hashrate_ths
    hot = sorted(
        (v for v in views if v.sample.temp_max_c is not None),
        key=lambda v: (-(v.sample.temp_max_c or 0.0), v.site, v.sample.ip),
    )
    ranked = sorted(
        ((ratio, v) for v in views if (ratio := _ratio(v)) is not None and ratio < 1.0),
        key=lambda pair: (pair[0], pair[1].site, pair[1].sample.ip),
    )
    return FleetSummary(
        snapshot_at=_snapshot_time(snapshot),
        devices=len(views),
        devices_by_state=by_state,
        up=sum(n for state, n in by_state.items() if not is_down(state)),
        hashrate_ths=hashrate,
        expected_hashrate_ths=expected,
        performance_ratio=rated_h / rated_e if rated_e else None,
        power_w=power,
        efficiency_jth=eff_p / eff_h if eff_h else None,
        sites=_sites(views),
        hottest=[_ref(v) for v in hot[:SUMMARY_LIST_LENGTH]],
        worst_performers=[_ref(v) for _, v in ranked[:SUMMARY_LIST_LENGTH]],
    )


class DeviceNotFoundError(LookupError):
    """No device has this id."""


def device_detail(
    engine: Engine,
    snapshot: FleetSnapshot,
    fleet: FleetState,
    device_id: int,
    *,
    samples: int,
    hours: int,
    now: datetime,
) -> DeviceDetail:
    """A device with its `samples` newest samples and `hours` of hourly history; DeviceNotFoundError,
    StorageError when the database cannot be read."""
    device = device_record(engine, device_id)
    if device is None:
        raise DeviceNotFoundError(device_id)
    recent = recent_samples(engine, device_id, samples)
    view = next((v for v in snapshot.devices if v.device_id == device_id), None)
    if view is None and recent:  # not in the fleet state (aged out of it): joined here, once
        view = device_view(device.site, recent[0], device_id, fleet.inventory, fleet.catalog)
    history = hourly_history(engine, device_id, now - timedelta(hours=hours))
    item = device_item(view) if view is not None else _bare_item(device)
    newest = view.sample if view is not None else (recent[0] if recent else None)
    return DeviceDetail(
        device=item,
        first_seen=device.first_seen,
        hostname=device.hostname,
        mac=device.mac,
        recent_samples=recent,
        history=[HourlyPoint.model_validate(h, from_attributes=True) for h in history],
        locate=light_state(newest, lights_set(engine, [device_id]).get(device_id)),
    )


def light_state(sample: Sample | None, mark: LightMark | None) -> LocateOut | None:
    """The locate light: the newer of the poll's reading (a sample that carries it) and the state the
    device confirmed to the last locate or reboot action; None when neither says."""
    polled = sample if sample is not None and sample.locate is not None else None
    if polled is not None and (mark is None or polled.ts >= mark.at):
        assert polled.locate is not None
        return LocateOut(on=polled.locate, source="poll", at=polled.ts)
    if mark is not None:
        return LocateOut(on=mark.on, source="action", at=mark.at, action=mark.action)
    return None


def _bare_item(d: DeviceRecord) -> DeviceItem:
    """A device row with no stored sample (its samples aged out): identity only, measurements null."""
    return DeviceItem(
        id=d.id,
        site=d.site,
        ip=d.ip,
        port=d.port,
        make=d.make,
        manufacturer=d.manufacturer,
        manufacturer_country=None,
        model=d.model,
        serial=d.serial,
        firmware_vendor=d.firmware_vendor,
        firmware_version=d.firmware_version,
        assembly_country=None,
        origin_source=UNKNOWN,
        state=d.state,
        hashrate_ths=None,
        expected_hashrate_ths=None,
        temp_max_c=None,
        power_w=None,
        efficiency_jth=None,
        last_seen=d.last_seen,
    )

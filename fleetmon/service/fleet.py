"""The fleet service functions behind the routes: device list, fleet summary, device detail.

List and summary read the current snapshot (memory: the fleet state, published off the request path);
the detail also reads storage (recent samples through the (device_id, ts) key, history from the hourly
rollups).
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from collectors.models import is_sha256
from collectors.sample import Sample, State, is_down, is_paused
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
        mac=s.mac,
        hostname=s.hostname,
    )


_MAC_SEPARATORS = str.maketrans("", "", ":-. ")


def _mac_key(text: str) -> str:
    return text.casefold().translate(_MAC_SEPARATORS)


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """Exact, case-insensitive filters of the device list; None leaves a field unfiltered.

    `assembly_country=unknown` selects the devices whose origin is not known. `search` is a
    case-insensitive substring of the address, serial, MAC, model or hostname; a MAC matches with or
    without its separators (`02:00:0a`, `02-00-0a` and `02000a` find the same miner).
    """

    site: str | None = None
    make: str | None = None
    model: str | None = None
    state: State | None = None
    firmware_vendor: str | None = None
    assembly_country: str | None = None
    search: str | None = None

    def matches(self, view: DeviceView) -> bool:
        """True when the view passes every filter given."""
        s = view.sample
        if self.search and not _found(self.search, view):
            return False
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


def _found(needle: str, view: DeviceView) -> bool:
    s = view.sample
    wanted = needle.strip().casefold()
    for text in (s.ip, s.serial, s.model, s.hostname, s.mac):
        if text is not None and wanted in text.casefold():
            return True
    bare = _mac_key(wanted)
    return bool(bare) and s.mac is not None and bare in _mac_key(s.mac)


class SortField(StrEnum):
    """A column the device list can be ordered by."""

    SITE = "site"
    IP = "ip"
    HOSTNAME = "hostname"
    MAC = "mac"
    SERIAL = "serial"
    MODEL = "model"
    FIRMWARE = "firmware_vendor"
    STATE = "state"
    HASHRATE = "hashrate_ths"
    EXPECTED = "expected_hashrate_ths"
    TEMPERATURE = "temp_max_c"
    POWER = "power_w"
    EFFICIENCY = "efficiency_jth"
    LAST_SEEN = "last_seen"


@dataclass(frozen=True, slots=True)
class DeviceOrder:
    """How the device list is ordered; `field=None` keeps the fleet's own order (site, then address).

    Numbers sort as numbers, addresses as addresses (10.0.0.9 before 10.0.0.10), text without regard
    to case. A device without the value (no reading, no serial) comes last in either direction, so a
    descending hashrate sort starts with the fastest miner, not with the unreachable ones.
    """

    field: SortField | None = None
    descending: bool = False


def _address_key(address: str) -> tuple[int, int, str]:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address.casefold())  # a hostname: after every address, by name
    return (parsed.version, int(parsed), "")


_TEXT_FIELDS: dict[SortField, Callable[[Sample], str | None]] = {
    SortField.HOSTNAME: lambda s: s.hostname,
    SortField.MAC: lambda s: s.mac,
    SortField.SERIAL: lambda s: s.serial,
    SortField.MODEL: lambda s: s.model or s.make,
    SortField.FIRMWARE: lambda s: s.firmware_vendor,
}
_NUMBER_FIELDS: dict[SortField, Callable[[Sample], float | None]] = {
    SortField.HASHRATE: lambda s: s.hashrate_ths,
    SortField.EXPECTED: lambda s: s.expected_hashrate_ths,
    SortField.TEMPERATURE: lambda s: s.temp_max_c,
    SortField.POWER: lambda s: s.power_w,
    SortField.EFFICIENCY: lambda s: s.efficiency_jth,
}


def _value(view: DeviceView, field: SortField) -> object:
    s = view.sample
    if field is SortField.SITE:
        return view.site.casefold()
    if field is SortField.IP:
        return _address_key(s.ip)
    if field is SortField.STATE:
        return s.state.value
    if field is SortField.LAST_SEEN:
        return s.ts
    text = _TEXT_FIELDS.get(field)
    if text is not None:
        value = text(s)
        return value.casefold() if value is not None else None
    return _NUMBER_FIELDS[field](s)


def matching_devices(snapshot: FleetSnapshot, where: DeviceFilter, order: DeviceOrder) -> list[DeviceView]:
    """Every device of the snapshot that passes `where`, in `order` (ties keep the fleet's order)."""
    matching = [view for view in snapshot.devices if where.matches(view)]
    field = order.field
    if field is None:
        return matching[::-1] if order.descending else matching
    known: list[tuple[object, DeviceView]] = []
    missing: list[DeviceView] = []
    for view in matching:
        value = _value(view, field)
        if value is None:
            missing.append(view)
        else:
            known.append((value, view))
    # sorted() is stable and a key sort never compares views, so ties stay in the fleet's order.
    known.sort(key=lambda pair: pair[0], reverse=order.descending)  # type: ignore[arg-type,return-value]
    return [view for _, view in known] + missing


def list_devices(
    snapshot: FleetSnapshot,
    where: DeviceFilter,
    limit: int,
    offset: int,
    order: DeviceOrder = DeviceOrder(),
) -> DevicePage:
    """One page of the devices matching `where`, in `order` (default: by site, then IP address)."""
    matching = matching_devices(snapshot, where, order)
    page = matching[offset : offset + limit]
    return DevicePage(
        items=[device_item(view) for view in page],
        total=len(matching),
        limit=limit,
        offset=offset,
        snapshot_at=_snapshot_time(snapshot),
    )


CSV_COLUMNS = (
    "id",
    "site",
    "ip",
    "port",
    "hostname",
    "mac",
    "serial",
    "make",
    "model",
    "firmware_vendor",
    "firmware_version",
    "state",
    "hashrate_ths",
    "expected_hashrate_ths",
    "power_w",
    "temp_max_c",
    "efficiency_jth",
    "last_seen",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str | None) -> str:
    """A device-reported string made safe for a spreadsheet: one that would start a formula is quoted
    with a leading apostrophe (a miner's hostname or model is whatever its firmware says)."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def devices_csv(views: Sequence[DeviceView]) -> str:
    """The devices as CSV, one row each in the given order; raw numbers in the units of the column names
    (TH/s, W, degrees Celsius, J/TH), an empty cell for a value the device did not report."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for view in views:
        s = view.sample
        writer.writerow(
            [
                "" if view.device_id is None else view.device_id,
                csv_text(view.site),
                s.ip,
                s.port,
                csv_text(s.hostname),
                csv_text(s.mac),
                csv_text(s.serial),
                csv_text(s.make),
                csv_text(s.model),
                csv_text(s.firmware_vendor),
                csv_text(s.firmware_version),
                s.state.value,
                *("" if v is None else repr(v) for v in _figures(s)),
                s.ts.isoformat(),
            ]
        )
    return out.getvalue()


def _figures(s: Sample) -> tuple[float | None, ...]:
    return (s.hashrate_ths, s.expected_hashrate_ths, s.power_w, s.temp_max_c, s.efficiency_jth)


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
    are counted in `devices_by_state`, not ranked as 0 TH/s (an outage is a state, not a reading), and
    sleeping or curtailed ones (`is_paused`) are not ranked either: they were told to stop.
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
        (
            (ratio, v)
            for v in views
            if not is_paused(v.sample.state) and (ratio := _ratio(v)) is not None and ratio < 1.0
        ),
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
        mac=d.mac,
        hostname=d.hostname,
    )

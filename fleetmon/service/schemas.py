"""Response models of the HTTP API (what /openapi.json promises and schemathesis checks).

Units are in the field names, as everywhere in fleetmon: TH/s, degrees Celsius, watts, J/TH. A value
the device did not report is null, never 0; an unreachable device has state `unreachable` and null
measurements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from collectors.sample import Sample, State
from fleetmon.service.auth import Role


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceItem(_Out):
    """One device as of its latest sample, with its supply-chain identity."""

    id: int | None = Field(description="database id (for /api/v1/devices/{id}); null before it is stored")
    site: str
    ip: str
    port: int
    make: str | None
    manufacturer: str | None
    manufacturer_country: str | None
    model: str | None
    serial: str | None
    firmware_vendor: str | None
    firmware_version: str | None
    assembly_country: str | None
    origin_source: str = Field(description="inventory | inferred | unknown")
    state: State
    hashrate_ths: float | None
    expected_hashrate_ths: float | None
    temp_max_c: float | None
    power_w: float | None
    efficiency_jth: float | None
    last_seen: datetime
    mac: str | None = None
    hostname: str | None = None


class DevicePage(_Out):
    """One page of the filtered device list."""

    items: list[DeviceItem]
    total: int = Field(description="devices matching the filters, over all pages")
    limit: int
    offset: int
    snapshot_at: datetime | None


class HourlyPoint(_Out):
    """One hour of one device, from the hourly rollups."""

    hour: datetime
    samples: int
    up_fraction: float
    hashrate_avg_ths: float | None
    hashrate_min_ths: float | None
    hashrate_max_ths: float | None
    power_avg_w: float | None
    temp_max_avg_c: float | None


class OutletPower(_Out):
    """The PDU outlet feeding one miner, as last read: PDU-measured power beside miner-reported power."""

    pdu: str = Field(description="the PDU's configured name")
    pdu_host: str
    unit: int
    outlet: int
    outlet_name: str | None
    outlet_state: str | None = Field(description="on | off; null when unknown")
    pdu_power_w: float | None = Field(description="measured at the outlet; null when the PDU is unreadable")
    miner_power_w: float | None = Field(description="what the miner reports about itself")
    difference_w: float | None = Field(description="pdu_power_w - miner_power_w, when both are known")
    read_at: datetime | None = Field(description="when the PDU was last read successfully")


class LocateOut(_Out):
    """The locate light as last known: from the poll that read it, or from the action that set it."""

    on: bool = Field(description="true: the light is lit (blinking)")
    source: Literal["poll", "action"] = Field(
        description="poll: read by the newest poll that carried the light; action: as the device confirmed"
        " a locate action (or off after a reboot, which resets it), newer than any poll that read it"
    )
    at: datetime = Field(description="when it was read (the sample's time) or confirmed (the task's end)")
    action: str | None = Field(default=None, description="locate | reboot, when the source is an action")


class DeviceDetail(_Out):
    """A device, its most recent samples (newest first) and its hourly history (oldest first)."""

    device: DeviceItem
    first_seen: datetime
    hostname: str | None
    mac: str | None
    recent_samples: list[Sample]
    history: list[HourlyPoint]
    pdu_power_w: float | None = Field(
        default=None, description="PDU-measured power of the device's outlet (null: unmapped or unread)"
    )
    pdu_outlet: OutletPower | None = Field(default=None, description="the outlet, when one is mapped")
    locate: LocateOut | None = Field(
        default=None,
        description="the locate light: the newer of the poll's reading and the last locate/reboot action's"
        " confirmation; null when neither says (stock Antminer and VNish polls do not read it)",
    )


class DeviceRef(_Out):
    """A device named in a summary list."""

    id: int | None
    site: str
    ip: str
    model: str | None
    state: State
    hashrate_ths: float | None
    expected_hashrate_ths: float | None
    performance_ratio: float | None = Field(description="hashrate / expected hashrate")
    temp_max_c: float | None


class SiteFigures(_Out):
    """Totals of one site."""

    site: str
    devices: int
    up: int
    hashrate_ths: float
    expected_hashrate_ths: float
    power_w: float


class FleetSummary(_Out):
    """Fleet totals as of the current snapshot."""

    snapshot_at: datetime | None
    devices: int
    devices_by_state: dict[str, int]
    up: int
    hashrate_ths: float = Field(description="sum of measured hashrate (devices without a reading add 0)")
    expected_hashrate_ths: float = Field(description="sum of nominal hashrate over every device")
    performance_ratio: float | None = Field(description="hashrate / expected over devices that report both")
    power_w: float
    efficiency_jth: float | None = Field(description="power / hashrate over devices that report both")
    sites: list[SiteFigures]
    hottest: list[DeviceRef]
    worst_performers: list[DeviceRef]


class HealthStatus(_Out):
    """Liveness and readiness of this replica."""

    status: str = Field(description="ok | degraded")
    database: str = Field(description="ok | unavailable")
    snapshot_at: datetime | None
    snapshot_age_s: float | None
    devices: int
    mode: str = Field(description="collector (polls in-process) | reader (rebuilds from the database)")


class LiveStatus(_Out):
    """The process answers."""

    status: str = Field(description="ok")


class ReadyStatus(_Out):
    """Whether this replica should receive traffic."""

    status: str = Field(description="ready | not ready")
    reason: str | None = Field(description="why not ready (null when ready)")
    mode: str = Field(description="collector | reader")
    snapshot_age_s: float | None


class KeyOut(_Out):
    """An API key without its secret."""

    id: str
    name: str | None
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class ErrorOut(_Out):
    """An error answer."""

    detail: str


class PduOutletOut(_Out):
    """One outlet of a PDU: what the PDU measures and, where mapped, what its miner reports."""

    unit: int
    outlet: int
    name: str | None
    state: str | None = Field(description="on | off; null when unknown")
    power_w: float | None = Field(description="PDU-measured; null when not metered or unreadable")
    miner_ip: str | None = Field(description="the miner this outlet feeds, per the configuration")
    miner_id: int | None = Field(description="that miner's device id, once it is stored")
    miner_power_w: float | None = Field(description="the miner's own report in its latest sample")
    difference_w: float | None = Field(description="power_w - miner_power_w, when both are known")


class PduOut(_Out):
    """One configured PDU as last read (reading fields null while it cannot be read)."""

    name: str
    host: str
    site: str
    up: bool = Field(description="true when the last SNMP read succeeded")
    error: str | None = Field(description="why the last read failed")
    vendor: str | None
    model: str | None
    read_at: datetime | None
    total_power_w: float | None
    total_power_source: str | None = Field(description="inlet | outlet_sum")
    mapped_pdu_power_w: float | None = Field(description="sum over mapped outlets with a reading")
    mapped_miner_power_w: float | None = Field(description="sum of the mapped miners' own reports")
    outlets: list[PduOutletOut]


class PduList(_Out):
    """Every configured PDU."""

    items: list[PduOut]
    snapshot_at: datetime | None

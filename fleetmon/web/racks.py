"""The temperature heat map of the overview: devices aggregated by site and rack, server-side.

A rack is the device's `rack` column when the inventory set one. Otherwise it is derived from the
address: the aligned block of 32 consecutive IPv4 addresses (a /27; a /123 for IPv6) holding the
device. One switch per rack with a contiguous address range is the common farm layout, the block is
stable across restarts and polls, and it needs no configuration; a device named by hostname, not
address, falls into the rack `unracked`. The rule is returned with the figures (`rack_rule`).

At 10,000 devices this answers a few hundred cells instead of 10,000 rows; it is computed once per
snapshot version (LiveFleet.derived).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from collectors.models import is_sha256
from collectors.sample import is_down
from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.snapshot import FleetSnapshot

RACK_BLOCK_V4 = 27
RACK_BLOCK_V6 = 123
UNRACKED = "unracked"
RACK_RULE = (
    "the device's rack field when the inventory sets it; otherwise its aligned block of 32 consecutive "
    "addresses (IPv4 /27, IPv6 /123); devices named by hostname are 'unracked'"
)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RackCell(_Out):
    """One rack of one site: device counts, hashrate and temperatures."""

    site: str
    rack: str
    rack_source: str = Field(description="inventory (the rack field) | derived (from the address)")
    devices: int
    up: int
    hashrate_ths: float = Field(description="SHA-256 only: another algorithm's rate is not TH/s of bitcoin")
    expected_hashrate_ths: float = Field(description="SHA-256 only, as hashrate_ths")
    devices_other_algorithm: int = Field(description="devices hashing Scrypt, X11, ...: counted, not summed")
    temp_max_c: float | None = Field(description="hottest device temperature in the rack")
    temp_mean_c: float | None = Field(description="mean of the devices' hottest temperatures")
    devices_with_temp: int
    hottest_device_id: int | None


class RackHeatmap(_Out):
    """Every rack of the fleet, ordered by site then rack."""

    snapshot_at: datetime | None
    rack_rule: str
    sites: list[str]
    racks: list[RackCell]


def derived_rack(ip: str) -> str:
    """The rack of a device without a rack field: its address block, or `unracked`."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return UNRACKED
    prefix = RACK_BLOCK_V4 if address.version == 4 else RACK_BLOCK_V6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass
class _Acc:
    source: str
    devices: int = 0
    up: int = 0
    hashrate: float = 0.0
    expected: float = 0.0
    other_algorithm: int = 0
    temps: list[float] = field(default_factory=list)
    hottest: tuple[float, int | None] | None = None


def _sort_key(rack: str) -> tuple[int, object]:
    try:
        network = ipaddress.ip_network(rack)
    except ValueError:
        return (1, rack)
    return (0, (network.version, int(network.network_address)))


def rack_heatmap(snapshot: FleetSnapshot, racks: Mapping[int, str]) -> RackHeatmap:
    """Aggregate the snapshot by (site, rack); `racks` are the stored rack fields by device id."""
    cells: dict[tuple[str, str], _Acc] = {}
    for view in snapshot.devices:
        s = view.sample
        stored = racks.get(view.device_id) if view.device_id is not None else None
        rack = stored or derived_rack(s.ip)
        acc = cells.setdefault((view.site, rack), _Acc("inventory" if stored else "derived"))
        acc.devices += 1
        acc.up += not is_down(s.state)
        if is_sha256(s.algorithm):
            acc.hashrate += s.hashrate_ths or 0.0
            acc.expected += s.expected_hashrate_ths or 0.0
        else:
            acc.other_algorithm += 1
        if s.temp_max_c is not None:
            acc.temps.append(s.temp_max_c)
            if acc.hottest is None or s.temp_max_c > acc.hottest[0]:
                acc.hottest = (s.temp_max_c, view.device_id)
    ordered = sorted(cells.items(), key=lambda item: (item[0][0], _sort_key(item[0][1])))
    return RackHeatmap(
        snapshot_at=datetime.fromtimestamp(snapshot.taken_at, UTC) if snapshot.taken_at else None,
        rack_rule=RACK_RULE,
        sites=sorted({site for site, _ in cells}),
        racks=[
            RackCell(
                site=site,
                rack=rack,
                rack_source=acc.source,
                devices=acc.devices,
                up=acc.up,
                hashrate_ths=acc.hashrate,
                expected_hashrate_ths=acc.expected,
                devices_other_algorithm=acc.other_algorithm,
                temp_max_c=acc.hottest[0] if acc.hottest else None,
                temp_mean_c=sum(acc.temps) / len(acc.temps) if acc.temps else None,
                devices_with_temp=len(acc.temps),
                hottest_device_id=acc.hottest[1] if acc.hottest else None,
            )
            for (site, rack), acc in ordered
        ],
    )


router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"], responses=AUTH_ERRORS)


@router.get("/racks", response_model=RackHeatmap, dependencies=[Depends(require(Permission.READ_FLEET))])
def get_racks(runtime: RuntimeDep) -> RackHeatmap:
    """Devices aggregated by site and rack (counts, hashrate, temperatures): the overview's heat map."""
    racks = runtime.fleet.racks
    return runtime.live.derived("web_rack_heatmap", lambda snapshot: rack_heatmap(snapshot, racks))

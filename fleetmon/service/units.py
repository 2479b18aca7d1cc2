"""The one way the service turns devices into the supply-chain analytics' FleetUnits.

A device's latest sample (serial, make, model, firmware vendor, state, measured hashrate) is joined by
serial with the operator's inventory records from the database and resolved against the catalog.
The fleet state (fleetmon.service.state) calls `device_unit` once per applied sample and keeps the
unit on its DeviceView, so the /metrics figures, the device list's manufacturer and origin columns,
the supply-chain API and `fleetmon report supply-chain --db` all read the same units: there is no
second join anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from collectors.sample import Sample
from fleetmon.service.snapshot import DeviceView, FleetSnapshot
from fleetmon.supplychain.catalog import Catalog
from fleetmon.supplychain.fleet import FleetUnit, build_unit
from fleetmon.supplychain.origin import InventoryRecord, OriginBasis

ORIGIN_SOURCE = {
    OriginBasis.DECLARED: "inventory",
    OriginBasis.INFERRED: "inferred",
    OriginBasis.UNKNOWN: "unknown",
}
"""How the device list names a unit's origin basis (DeviceView.origin_source)."""


def device_unit(sample: Sample, inventory: Mapping[str, InventoryRecord], catalog: Catalog) -> FleetUnit:
    """The FleetUnit of one device's latest sample; raises ValueError for a value the analytics refuse.

    The inventory is the authority on origin: a device it does not list gets the catalog's
    maker/model/year default (inferred) or stays unknown. Measured hashrate of an unreachable device
    is None, not 0. A sample without a make (identification found no brand) resolves to no maker and
    no catalog model, whatever its model string looks like.
    """
    record: dict[str, object] = {
        "serial": sample.serial,
        "model": sample.model,
        "make": sample.make,
        "firmware_vendor": sample.firmware_vendor,
        "state": sample.state.value,
        "hashrate_ths": sample.hashrate_ths,
        "algorithm": sample.algorithm,
        "ip": sample.ip,
    }
    return build_unit(
        record, inventory=inventory, catalog=catalog, record_origin=False, model_names_maker=False
    )


def snapshot_units(snapshot: FleetSnapshot) -> list[FleetUnit]:
    """The units of every device of the snapshot that has one, in the snapshot's order."""
    return view_units(snapshot.devices)


def view_units(views: Iterable[DeviceView]) -> list[FleetUnit]:
    """The units of the devices that have one, in order."""
    return [view.unit for view in views if view.unit is not None]

"""Read one PDU: identify its family from sysObjectID/sysDescr, walk that family's tables, normalise.

    reading = await read_pdu(SnmpTarget(host, port, community), SnmpTimeouts(timeout_s=2, retries=1))

Raises only `PduError` subclasses (see errors.py). The walk of each table is one GETBULK conversation;
a PDU with 24 outlets is read in roughly a dozen requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collectors.snmp import apc, raritan, sentry4
from collectors.snmp.errors import PduUnsupportedError
from collectors.snmp.models import AmbientSensor, Inlet, Outlet, PduReading, Vendor, total_power
from collectors.snmp.transport import (
    Oid,
    OidTable,
    SnmpClient,
    SnmpTarget,
    SnmpTimeouts,
    as_str,
    oid,
)

SYS_DESCR = oid("1.3.6.1.2.1.1.1.0")  # SNMPv2-MIB::sysDescr.0
SYS_OBJECT_ID = oid("1.3.6.1.2.1.1.2.0")  # SNMPv2-MIB::sysObjectID.0
SYS_NAME = oid("1.3.6.1.2.1.1.5.0")  # SNMPv2-MIB::sysName.0

# Private enterprise numbers (IANA) under 1.3.6.1.4.1.
_ENTERPRISES = {
    "1.3.6.1.4.1.318": Vendor.APC,  # American Power Conversion
    "1.3.6.1.4.1.13742": Vendor.RARITAN,  # Raritan
    "1.3.6.1.4.1.1718": Vendor.SERVERTECH,  # Server Technology
}
# sysDescr words that identify the family when sysObjectID is generic (e.g. net-snmp's).
_DESCR_WORDS = (("raritan", Vendor.RARITAN), ("sentry", Vendor.SERVERTECH), ("servertech", Vendor.SERVERTECH))


@dataclass(frozen=True, slots=True)
class _Family:
    subtrees: tuple[Oid, ...]
    model: Callable[[OidTable], str | None]
    outlets: Callable[[OidTable], list[Outlet]]
    inlets: Callable[[OidTable], list[Inlet]]
    sensors: Callable[[OidTable], list[AmbientSensor]]


_FAMILIES = {
    Vendor.APC: _Family(
        apc.SUBTREES, apc.parse_model, apc.parse_outlets, apc.parse_inlets, apc.parse_sensors
    ),
    Vendor.RARITAN: _Family(
        raritan.SUBTREES,
        raritan.parse_model,
        raritan.parse_outlets,
        raritan.parse_inlets,
        raritan.parse_sensors,
    ),
    Vendor.SERVERTECH: _Family(
        sentry4.SUBTREES,
        sentry4.parse_model,
        sentry4.parse_outlets,
        sentry4.parse_inlets,
        sentry4.parse_sensors,
    ),
}


def detect_vendor(sys_object_id: str | None, sys_descr: str | None) -> Vendor | None:
    """The PDU family from the agent's sysObjectID (enterprise number) or, failing that, sysDescr."""
    if sys_object_id:
        for prefix, vendor in _ENTERPRISES.items():
            if sys_object_id == prefix or sys_object_id.startswith(prefix + "."):
                return vendor
    descr = (sys_descr or "").lower()
    if descr.startswith("apc ") or "powernet" in descr:
        return Vendor.APC
    for word, vendor in _DESCR_WORDS:
        if word in descr:
            return vendor
    return None


async def read_pdu(
    target: SnmpTarget, timeouts: SnmpTimeouts, max_repetitions: int = 25, engine: SnmpEngine | None = None
) -> PduReading:
    """Read outlets, inlets and ambient sensors of one PDU; raises PduError subclasses only.

    Pass a shared `engine` (transport.new_engine()) when reading many PDUs; without one, a private
    engine is made and closed for this read.
    """
    async with SnmpClient(target, timeouts, max_repetitions, engine) as client:
        system = await client.get((SYS_DESCR, SYS_OBJECT_ID, SYS_NAME))
        sys_descr = as_str(system.get(SYS_DESCR))
        vendor = detect_vendor(as_str(system.get(SYS_OBJECT_ID)), sys_descr)
        if vendor is None:
            raise PduUnsupportedError(
                f"{target.host}:{target.port}: not an APC, Raritan or ServerTech PDU "
                f"(sysObjectID {system.get(SYS_OBJECT_ID)!r})"
            )
        family = _FAMILIES[vendor]
        table: OidTable = {}
        for subtree in family.subtrees:
            table.update(await client.walk(subtree))
    outlets = family.outlets(table)
    inlets = family.inlets(table)
    total, source = total_power(inlets, outlets)
    return PduReading(
        host=target.host,
        port=target.port,
        vendor=vendor,
        model=family.model(table),
        name=as_str(system.get(SYS_NAME)),
        sys_descr=sys_descr,
        outlets=outlets,
        inlets=inlets,
        sensors=family.sensors(table),
        total_power_w=total,
        total_power_source=source,
    )

"""Reading rack PDUs over SNMP (pysnmp 7, asyncio).

Families: APC (PowerNet-MIB rPDU2), Raritan (PDU2-MIB), ServerTech (Sentry4-MIB). Entry point: `read_pdu`.
"""

from __future__ import annotations

from collectors.snmp.errors import (
    PduAuthError,
    PduConnectionError,
    PduError,
    PduProtocolError,
    PduTimeoutError,
    PduUnsupportedError,
)
from collectors.snmp.mapping import MinerOutletPower, OutletBinding, PduConfig, join_outlets
from collectors.snmp.models import AmbientSensor, Inlet, Outlet, OutletState, PduReading, TotalSource, Vendor
from collectors.snmp.reader import detect_vendor, read_pdu
from collectors.snmp.transport import SnmpTarget, SnmpTimeouts, new_engine

__all__ = [
    "AmbientSensor",
    "Inlet",
    "MinerOutletPower",
    "Outlet",
    "OutletBinding",
    "OutletState",
    "PduAuthError",
    "PduConfig",
    "PduConnectionError",
    "PduError",
    "PduProtocolError",
    "PduReading",
    "PduTimeoutError",
    "PduUnsupportedError",
    "SnmpTarget",
    "SnmpTimeouts",
    "TotalSource",
    "Vendor",
    "detect_vendor",
    "join_outlets",
    "new_engine",
    "read_pdu",
]

"""Raritan PX2/PX3 (and Legrand/Server Technology PRO3X units speaking the same MIB): PDU2-MIB.

OIDs and units are from PDU2-MIB revision 201711130000Z (PX2/PX3 release 3.4.0, as shipped in
librenms/mibs/raritan). Every measurement is an integer to be divided by 10 ** DecimalDigits, read
from the matching *SensorConfigurationTable row (outletSensorDecimalDigits, inletSensorDecimalDigits,
externalSensorDecimalDigits); the unit then follows the sensor type: activePower in W, rmsCurrent
in A, activeEnergy in Wh (converted here to kWh), temperature in degrees C, humidity in percent.
Outlet and inlet rows are indexed (pduId, outletId|inletId, sensorType); external sensors (pduId,
sensorId).
"""

from __future__ import annotations

from collectors.snmp.models import AmbientSensor, Inlet, Outlet, OutletState
from collectors.snmp.transport import Oid, OidTable, Value, as_int, as_str, column, first_text, oid

PDU2 = "1.3.6.1.4.1.13742.6"
# nameplateEntry
PDU_MODEL = oid(f"{PDU2}.3.2.1.1.3")  # pduModel
# outletConfigurationEntry, index (pduId, outletId)
OUTLET_NAME = oid(f"{PDU2}.3.5.3.1.3")  # outletName
# *SensorConfigurationEntry, index (pduId, inlet|outletId, sensorType)
INLET_SENSOR_DECIMAL_DIGITS = oid(f"{PDU2}.3.3.4.1.7")  # inletSensorDecimalDigits
OUTLET_SENSOR_DECIMAL_DIGITS = oid(f"{PDU2}.3.5.4.1.7")  # outletSensorDecimalDigits
# externalSensorConfigurationEntry, index (pduId, sensorId)
EXTERNAL_SENSOR_TYPE = oid(f"{PDU2}.3.6.3.1.2")  # externalSensorType (SensorTypeEnumeration)
EXTERNAL_SENSOR_NAME = oid(f"{PDU2}.3.6.3.1.4")  # externalSensorName
EXTERNAL_SENSOR_DECIMAL_DIGITS = oid(f"{PDU2}.3.6.3.1.17")  # externalSensorDecimalDigits
# measurements*SensorEntry
MEASUREMENTS_INLET_SENSOR_VALUE = oid(f"{PDU2}.5.2.3.1.4")  # measurementsInletSensorValue
MEASUREMENTS_OUTLET_SENSOR_STATE = oid(f"{PDU2}.5.4.3.1.3")  # measurementsOutletSensorState
MEASUREMENTS_OUTLET_SENSOR_VALUE = oid(f"{PDU2}.5.4.3.1.4")  # measurementsOutletSensorValue
MEASUREMENTS_EXTERNAL_SENSOR_VALUE = oid(f"{PDU2}.5.5.3.1.4")  # measurementsExternalSensorValue

SUBTREES: tuple[Oid, ...] = (
    PDU_MODEL,
    OUTLET_NAME,
    INLET_SENSOR_DECIMAL_DIGITS,
    OUTLET_SENSOR_DECIMAL_DIGITS,
    EXTERNAL_SENSOR_TYPE,
    EXTERNAL_SENSOR_NAME,
    EXTERNAL_SENSOR_DECIMAL_DIGITS,
    MEASUREMENTS_INLET_SENSOR_VALUE,
    MEASUREMENTS_OUTLET_SENSOR_STATE,
    MEASUREMENTS_OUTLET_SENSOR_VALUE,
    MEASUREMENTS_EXTERNAL_SENSOR_VALUE,
)

# SensorTypeEnumeration
RMS_CURRENT = 1
ACTIVE_POWER = 5
ACTIVE_ENERGY = 8
TEMPERATURE = 10
HUMIDITY = 11
ON_OFF = 14
# SensorStateEnumeration values of the onOff sensor
_ON_OFF_STATE = {7: OutletState.ON, 8: OutletState.OFF}


def _scaled(values: dict[Oid, Value], digits: dict[Oid, Value], row: Oid) -> float | None:
    """value / 10 ** decimalDigits for one sensor row; None if the PDU has no such sensor."""
    raw = as_int(values.get(row))
    if raw is None:
        return None
    scale: int = 10 ** (as_int(digits.get(row)) or 0)
    return raw / scale


def parse_model(table: OidTable) -> str | None:
    """pduModel of the first PDU behind the agent."""
    return first_text(table, PDU_MODEL)


def parse_outlets(table: OidTable) -> list[Outlet]:
    """Outlets with name, active power, RMS current and relay state."""
    names = column(table, OUTLET_NAME)
    values = column(table, MEASUREMENTS_OUTLET_SENSOR_VALUE)
    states = column(table, MEASUREMENTS_OUTLET_SENSOR_STATE)
    digits = column(table, OUTLET_SENSOR_DECIMAL_DIGITS)
    ids = sorted(set(names) | {row[:2] for row in values})
    outlets = []
    for pdu_id, outlet_id in ids:
        state = _ON_OFF_STATE.get(as_int(states.get((pdu_id, outlet_id, ON_OFF))) or 0)
        outlets.append(
            Outlet(
                index=outlet_id,
                unit=pdu_id,
                name=as_str(names.get((pdu_id, outlet_id))),
                power_w=_scaled(values, digits, (pdu_id, outlet_id, ACTIVE_POWER)),
                current_a=_scaled(values, digits, (pdu_id, outlet_id, RMS_CURRENT)),
                state=state,
            )
        )
    return outlets


def parse_inlets(table: OidTable) -> list[Inlet]:
    """Inlets with active power and the active-energy counter (Wh on the wire, kWh here)."""
    values = column(table, MEASUREMENTS_INLET_SENSOR_VALUE)
    digits = column(table, INLET_SENSOR_DECIMAL_DIGITS)
    inlets = []
    for pdu_id, inlet_id in sorted({row[:2] for row in values}):
        wh = _scaled(values, digits, (pdu_id, inlet_id, ACTIVE_ENERGY))
        inlets.append(
            Inlet(
                index=inlet_id,
                unit=pdu_id,
                power_w=_scaled(values, digits, (pdu_id, inlet_id, ACTIVE_POWER)),
                energy_kwh=None if wh is None else wh / 1000,
            )
        )
    return inlets


def parse_sensors(table: OidTable) -> list[AmbientSensor]:
    """External temperature and humidity probes (other external sensor types are skipped)."""
    types = column(table, EXTERNAL_SENSOR_TYPE)
    names = column(table, EXTERNAL_SENSOR_NAME)
    values = column(table, MEASUREMENTS_EXTERNAL_SENSOR_VALUE)
    digits = column(table, EXTERNAL_SENSOR_DECIMAL_DIGITS)
    sensors = []
    for row in sorted(types):
        kind = as_int(types[row])
        if kind not in (TEMPERATURE, HUMIDITY):
            continue
        value = _scaled(values, digits, row)
        sensors.append(
            AmbientSensor(
                sensor=".".join(map(str, row)),
                name=as_str(names.get(row)),
                temperature_c=value if kind == TEMPERATURE else None,
                humidity_percent=value if kind == HUMIDITY else None,
            )
        )
    return sensors

"""ServerTech (Legrand) Sentry PRO1/PRO2 PDUs: Sentry4-MIB.

OIDs and units are from Sentry4-MIB revision 2017-06-15 (UNITS clauses as compiled by pysmi):
    st4InputCordActivePower  Watts (-1 = not available)
    st4InputCordEnergy       tenth Kilowatt-Hours -> / 10 kWh
    st4OutletActivePower     Watts (-1 = not available)
    st4OutletCurrent         hundredth Amps -> / 100 A
    st4OutletState           DeviceState: unknown(0), on(1), off(2)
    st4TempSensorValue       tenth degrees, in the scale given by st4TempSensorScale:
                             celsius(0) or fahrenheit(1); converted here to degrees C
    st4HumidSensorValue      percent
Sensor rows whose *Status is not a reading (notFound, lost, noComm, ...) are skipped.
Outlets are indexed (unit, cord, outlet); the outlet number is unique within a unit.
"""

from __future__ import annotations

from collectors.snmp.models import AmbientSensor, Inlet, Outlet, OutletState
from collectors.snmp.transport import Oid, OidTable, as_int, as_measured, as_str, column, first_text, oid

ST4 = "1.3.6.1.4.1.1718.4.1"
ST4_UNIT_NAME = oid(f"{ST4}.2.2.1.3")  # st4UnitName
ST4_UNIT_MODEL = oid(f"{ST4}.2.2.1.5")  # st4UnitModel
ST4_INPUT_CORD_NAME = oid(f"{ST4}.3.2.1.3")  # st4InputCordName
ST4_INPUT_CORD_ACTIVE_POWER = oid(f"{ST4}.3.3.1.3")  # st4InputCordActivePower, W
ST4_INPUT_CORD_ENERGY = oid(f"{ST4}.3.3.1.10")  # st4InputCordEnergy, tenth kWh
ST4_OUTLET_NAME = oid(f"{ST4}.8.2.1.3")  # st4OutletName
ST4_OUTLET_STATE = oid(f"{ST4}.8.3.1.1")  # st4OutletState
ST4_OUTLET_CURRENT = oid(f"{ST4}.8.3.1.3")  # st4OutletCurrent, hundredth A
ST4_OUTLET_ACTIVE_POWER = oid(f"{ST4}.8.3.1.7")  # st4OutletActivePower, W
ST4_TEMP_SENSOR_SCALE = oid(f"{ST4}.9.1.10")  # st4TempSensorScale (scalar, .0)
ST4_TEMP_SENSOR_NAME = oid(f"{ST4}.9.2.1.3")  # st4TempSensorName
ST4_TEMP_SENSOR_VALUE = oid(f"{ST4}.9.3.1.1")  # st4TempSensorValue, tenth degrees
ST4_TEMP_SENSOR_STATUS = oid(f"{ST4}.9.3.1.2")  # st4TempSensorStatus (DeviceStatus)
ST4_HUMID_SENSOR_NAME = oid(f"{ST4}.10.2.1.3")  # st4HumidSensorName
ST4_HUMID_SENSOR_VALUE = oid(f"{ST4}.10.3.1.1")  # st4HumidSensorValue, percent
ST4_HUMID_SENSOR_STATUS = oid(f"{ST4}.10.3.1.2")  # st4HumidSensorStatus (DeviceStatus)

SUBTREES: tuple[Oid, ...] = (
    ST4_UNIT_NAME,
    ST4_UNIT_MODEL,
    ST4_INPUT_CORD_NAME,
    oid(f"{ST4}.3.3.1"),  # st4InputCordMonitorEntry
    ST4_OUTLET_NAME,
    oid(f"{ST4}.8.3.1"),  # st4OutletMonitorEntry
    oid(f"{ST4}.9"),  # st4TemperatureSensors
    oid(f"{ST4}.10"),  # st4HumiditySensors
)

FAHRENHEIT = 1
_OUTLET_STATE = {1: OutletState.ON, 2: OutletState.OFF}
# DeviceStatus values that carry no reading.
_NO_READING = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 11})


def parse_model(table: OidTable) -> str | None:
    """st4UnitModel of the master unit."""
    return first_text(table, ST4_UNIT_MODEL)


def parse_inlets(table: OidTable) -> list[Inlet]:
    """Input cords with active power and energy."""
    names = column(table, ST4_INPUT_CORD_NAME)
    power = column(table, ST4_INPUT_CORD_ACTIVE_POWER)
    energy = column(table, ST4_INPUT_CORD_ENERGY)
    inlets = []
    for unit, cord in sorted(set(power) | set(energy)):
        watts = as_measured(power.get((unit, cord)))
        tenths_kwh = as_measured(energy.get((unit, cord)))
        inlets.append(
            Inlet(
                index=cord,
                unit=unit,
                name=as_str(names.get((unit, cord))),
                power_w=None if watts is None else float(watts),
                energy_kwh=None if tenths_kwh is None else tenths_kwh / 10,
            )
        )
    return inlets


def parse_outlets(table: OidTable) -> list[Outlet]:
    """Outlets with name, active power, current and relay state."""
    names = column(table, ST4_OUTLET_NAME)
    states = column(table, ST4_OUTLET_STATE)
    current = column(table, ST4_OUTLET_CURRENT)
    power = column(table, ST4_OUTLET_ACTIVE_POWER)
    outlets = []
    for row in sorted(set(names) | set(power)):
        unit, _cord, number = row
        watts = as_measured(power.get(row))
        hundredths_a = as_measured(current.get(row))
        outlets.append(
            Outlet(
                index=number,
                unit=unit,
                name=as_str(names.get(row)),
                power_w=None if watts is None else float(watts),
                current_a=None if hundredths_a is None else hundredths_a / 100,
                state=_OUTLET_STATE.get(as_int(states.get(row)) or 0),
            )
        )
    return outlets


def temperature_c(tenths: int, scale: int | None) -> float:
    """A st4TempSensorValue in degrees Celsius, whichever scale the PDU is set to."""
    degrees = tenths / 10
    if scale == FAHRENHEIT:
        return (degrees - 32) * 5 / 9
    return degrees


def parse_sensors(table: OidTable) -> list[AmbientSensor]:
    """Temperature and humidity probes that currently give a reading."""
    scale = as_int(column(table, ST4_TEMP_SENSOR_SCALE).get((0,)))
    sensors = []
    t_names, t_values = column(table, ST4_TEMP_SENSOR_NAME), column(table, ST4_TEMP_SENSOR_VALUE)
    t_status = column(table, ST4_TEMP_SENSOR_STATUS)
    for row in sorted(t_values):
        raw = as_int(t_values[row])
        if raw is None or as_int(t_status.get(row)) in _NO_READING:
            continue
        sensors.append(
            AmbientSensor(
                sensor="temp." + ".".join(map(str, row)),
                name=as_str(t_names.get(row)),
                temperature_c=temperature_c(raw, scale),
            )
        )
    h_names, h_values = column(table, ST4_HUMID_SENSOR_NAME), column(table, ST4_HUMID_SENSOR_VALUE)
    h_status = column(table, ST4_HUMID_SENSOR_STATUS)
    for row in sorted(h_values):
        raw = as_measured(h_values[row])
        if raw is None or as_int(h_status.get(row)) in _NO_READING:
            continue
        sensors.append(
            AmbientSensor(
                sensor="humid." + ".".join(map(str, row)),
                name=as_str(h_names.get(row)),
                humidity_percent=float(raw),
            )
        )
    return sensors

"""APC / Schneider rack PDUs (AP7xxx/AP8xxx "rPDU2" firmware): PowerNet-MIB, rPDU2 tables.

OIDs and units are from PowerNet-MIB v4.2.6 (2018-01-19, as shipped in librenms/mibs/apc):
    rPDU2DeviceStatusPower          hundredths of kW   -> x 10 W      (-1 = not supported)
    rPDU2DeviceStatusEnergy         tenths of kWh      -> / 10 kWh    (-1 = not supported)
    rPDU2OutletMeteredStatusPower   W
    rPDU2OutletMeteredStatusCurrent tenths of A        -> / 10 A
    rPDU2OutletSwitchedStatusState  off(1), on(2)
    rPDU2SensorTempHumidityStatusTempC            tenths of degrees C  -> / 10
    rPDU2SensorTempHumidityStatusRelativeHumidity percent (-1 = no humidity probe)
Daisy-chained (NPS) units are told apart by the *Module columns; outlets are keyed by their
per-unit number (rPDU2OutletMeteredStatusNumber), not by the chain-wide SNMP row index.
"""

from __future__ import annotations

from collectors.snmp.models import AmbientSensor, Inlet, Outlet, OutletState
from collectors.snmp.transport import Oid, OidTable, as_int, as_measured, as_str, column, first_text, oid

RPDU2 = "1.3.6.1.4.1.318.1.1.26"
# rPDU2IdentModelNumber: model string of each unit (rPDU2IdentEntry column 8)
RPDU2_IDENT_MODEL_NUMBER = oid(f"{RPDU2}.2.1.8")
# rPDU2DeviceStatusEntry: one row per unit
RPDU2_DEVICE_STATUS_ENTRY = oid(f"{RPDU2}.4.3.1")
RPDU2_DEVICE_STATUS_MODULE = oid(f"{RPDU2}.4.3.1.2")  # rPDU2DeviceStatusModule
RPDU2_DEVICE_STATUS_NAME = oid(f"{RPDU2}.4.3.1.3")  # rPDU2DeviceStatusName
RPDU2_DEVICE_STATUS_POWER = oid(f"{RPDU2}.4.3.1.5")  # rPDU2DeviceStatusPower, hundredths of kW
RPDU2_DEVICE_STATUS_ENERGY = oid(f"{RPDU2}.4.3.1.9")  # rPDU2DeviceStatusEnergy, tenths of kWh
# rPDU2OutletSwitchedStatusEntry
RPDU2_OUTLET_SWITCHED_STATUS_ENTRY = oid(f"{RPDU2}.9.2.3.1")
RPDU2_OUTLET_SWITCHED_STATUS_MODULE = oid(f"{RPDU2}.9.2.3.1.2")  # rPDU2OutletSwitchedStatusModule
RPDU2_OUTLET_SWITCHED_STATUS_NUMBER = oid(f"{RPDU2}.9.2.3.1.4")  # rPDU2OutletSwitchedStatusNumber
RPDU2_OUTLET_SWITCHED_STATUS_STATE = oid(f"{RPDU2}.9.2.3.1.5")  # rPDU2OutletSwitchedStatusState
# rPDU2OutletMeteredStatusEntry
RPDU2_OUTLET_METERED_STATUS_ENTRY = oid(f"{RPDU2}.9.4.3.1")
RPDU2_OUTLET_METERED_STATUS_MODULE = oid(f"{RPDU2}.9.4.3.1.2")  # rPDU2OutletMeteredStatusModule
RPDU2_OUTLET_METERED_STATUS_NAME = oid(f"{RPDU2}.9.4.3.1.3")  # rPDU2OutletMeteredStatusName
RPDU2_OUTLET_METERED_STATUS_NUMBER = oid(f"{RPDU2}.9.4.3.1.4")  # rPDU2OutletMeteredStatusNumber
RPDU2_OUTLET_METERED_STATUS_CURRENT = oid(f"{RPDU2}.9.4.3.1.6")  # rPDU2OutletMeteredStatusCurrent, 0.1 A
RPDU2_OUTLET_METERED_STATUS_POWER = oid(f"{RPDU2}.9.4.3.1.7")  # rPDU2OutletMeteredStatusPower, W
# rPDU2SensorTempHumidityStatusEntry
RPDU2_SENSOR_TH_STATUS_ENTRY = oid(f"{RPDU2}.10.2.2.1")
RPDU2_SENSOR_TH_STATUS_NAME = oid(f"{RPDU2}.10.2.2.1.3")  # rPDU2SensorTempHumidityStatusName
RPDU2_SENSOR_TH_STATUS_TEMP_C = oid(f"{RPDU2}.10.2.2.1.8")  # ...StatusTempC, tenths of degrees C
RPDU2_SENSOR_TH_STATUS_HUMIDITY = oid(f"{RPDU2}.10.2.2.1.10")  # ...StatusRelativeHumidity, percent

SUBTREES: tuple[Oid, ...] = (
    RPDU2_IDENT_MODEL_NUMBER,
    RPDU2_DEVICE_STATUS_ENTRY,
    RPDU2_OUTLET_SWITCHED_STATUS_ENTRY,
    RPDU2_OUTLET_METERED_STATUS_ENTRY,
    RPDU2_SENSOR_TH_STATUS_ENTRY,
)

_SWITCHED_STATE = {1: OutletState.OFF, 2: OutletState.ON}


def parse_model(table: OidTable) -> str | None:
    """The first unit's model number."""
    return first_text(table, RPDU2_IDENT_MODEL_NUMBER)


def parse_inlets(table: OidTable) -> list[Inlet]:
    """rPDU2DeviceStatus rows: one metered input per unit."""
    modules = column(table, RPDU2_DEVICE_STATUS_MODULE)
    names = column(table, RPDU2_DEVICE_STATUS_NAME)
    power = column(table, RPDU2_DEVICE_STATUS_POWER)
    energy = column(table, RPDU2_DEVICE_STATUS_ENERGY)
    inlets = []
    for row in sorted(set(power) | set(energy)):
        watts = as_measured(power.get(row))
        tenths_kwh = as_measured(energy.get(row))
        inlets.append(
            Inlet(
                index=row[0],
                unit=as_int(modules.get(row)) or row[0],
                name=as_str(names.get(row)),
                power_w=None if watts is None else float(watts * 10),
                energy_kwh=None if tenths_kwh is None else tenths_kwh / 10,
            )
        )
    return inlets


def parse_outlets(table: OidTable) -> list[Outlet]:
    """Metered outlets, with the relay state from the switched table where the model has one."""
    sw_state: dict[tuple[int, int], OutletState] = {}
    sw_modules = column(table, RPDU2_OUTLET_SWITCHED_STATUS_MODULE)
    sw_numbers = column(table, RPDU2_OUTLET_SWITCHED_STATUS_NUMBER)
    for row, raw in column(table, RPDU2_OUTLET_SWITCHED_STATUS_STATE).items():
        state = _SWITCHED_STATE.get(as_int(raw) or 0)
        number = as_int(sw_numbers.get(row)) or row[0]
        if state is not None:
            sw_state[(as_int(sw_modules.get(row)) or 1, number)] = state
    modules = column(table, RPDU2_OUTLET_METERED_STATUS_MODULE)
    names = column(table, RPDU2_OUTLET_METERED_STATUS_NAME)
    numbers = column(table, RPDU2_OUTLET_METERED_STATUS_NUMBER)
    current = column(table, RPDU2_OUTLET_METERED_STATUS_CURRENT)
    power = column(table, RPDU2_OUTLET_METERED_STATUS_POWER)
    outlets = []
    for row in sorted(set(power) | set(names)):
        unit = as_int(modules.get(row)) or 1
        number = as_int(numbers.get(row)) or row[0]
        watts = as_measured(power.get(row))
        tenths_a = as_measured(current.get(row))
        outlets.append(
            Outlet(
                index=number,
                unit=unit,
                name=as_str(names.get(row)),
                power_w=None if watts is None else float(watts),
                current_a=None if tenths_a is None else tenths_a / 10,
                state=sw_state.get((unit, number)),
            )
        )
    return outlets


def parse_sensors(table: OidTable) -> list[AmbientSensor]:
    """Temperature/humidity probes on the unit's sensor port."""
    names = column(table, RPDU2_SENSOR_TH_STATUS_NAME)
    temps = column(table, RPDU2_SENSOR_TH_STATUS_TEMP_C)
    humid = column(table, RPDU2_SENSOR_TH_STATUS_HUMIDITY)
    sensors = []
    for row in sorted(set(temps) | set(humid)):
        tenths_c = as_int(temps.get(row))
        rh = as_measured(humid.get(row))
        sensors.append(
            AmbientSensor(
                sensor=".".join(map(str, row)),
                name=as_str(names.get(row)),
                # -1 would be -0.1 C, which a rack never is: APC uses it for "no probe".
                temperature_c=None if tenths_c is None or tenths_c == -1 else tenths_c / 10,
                humidity_percent=None if rh is None else float(rh),
            )
        )
    return sensors

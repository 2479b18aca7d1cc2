"""What one SNMP read of one PDU says, whatever its maker.

Units are converted once, in the vendor modules: power in watts, current in amperes, energy in kWh,
temperature in degrees Celsius, relative humidity in percent. A value the PDU did not report (or
reported as "not supported", e.g. APC's -1) is None, never 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Vendor(StrEnum):
    """The PDU families we can read."""

    APC = "apc"
    RARITAN = "raritan"
    SERVERTECH = "servertech"


class TotalSource(StrEnum):
    """Where `total_power_w` came from."""

    INLET = "inlet"  # the PDU's own input metering (APC device power, Raritan inlet, Sentry4 cord)
    OUTLET_SUM = "outlet_sum"  # no input metering: the sum of the metered outlets


class OutletState(StrEnum):
    """Whether an outlet's relay is closed."""

    ON = "on"
    OFF = "off"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outlet(_Strict):
    """One metered outlet. `unit` is the linked/daisy-chained unit (1 on a standalone PDU)."""

    index: int
    unit: int = 1
    name: str | None = None
    power_w: float | None = None
    current_a: float | None = None
    state: OutletState | None = None


class Inlet(_Strict):
    """One metered input (APC: the device total; Raritan: an inlet; ServerTech: an input cord)."""

    index: int
    unit: int = 1
    name: str | None = None
    power_w: float | None = None
    energy_kwh: float | None = None


class AmbientSensor(_Strict):
    """One environmental probe; `sensor` is its index on the wire, e.g. "1" or "1.2"."""

    sensor: str
    name: str | None = None
    temperature_c: float | None = None
    humidity_percent: float | None = None


class PduReading(_Strict):
    """One successful read of one PDU."""

    host: str
    port: int
    vendor: Vendor
    model: str | None = None
    name: str | None = None
    sys_descr: str | None = None
    outlets: list[Outlet] = Field(default_factory=list)
    inlets: list[Inlet] = Field(default_factory=list)
    sensors: list[AmbientSensor] = Field(default_factory=list)
    total_power_w: float | None = None
    total_power_source: TotalSource | None = None
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))


def total_power(inlets: list[Inlet], outlets: list[Outlet]) -> tuple[float | None, TotalSource | None]:
    """Inlet power when the PDU meters its input, else the sum of metered outlets, else nothing."""
    inlet_watts = [i.power_w for i in inlets if i.power_w is not None]
    if inlet_watts:
        return sum(inlet_watts), TotalSource.INLET
    outlet_watts = [o.power_w for o in outlets if o.power_w is not None]
    if outlet_watts:
        return sum(outlet_watts), TotalSource.OUTLET_SUM
    return None, None

"""The normalized sample: what one poll of one device says, whatever its make or firmware.

Every driver produces exactly this shape, and everything downstream (storage, MQTT, the API, metrics)
consumes it. Units are converted once, in the drivers: hashrate in TH/s, temperature in degrees Celsius,
power in watts, efficiency in J/TH, uptime in seconds. A field the device did not report is None, never 0;
an outage is a `state` of `unreachable` or `error` with an entry in `errors`, never zeros.

The JSON names are part of the wire contract (MQTT payloads, `--out` files, `db export-samples`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer


class State(StrEnum):
    """What a device is doing, as far as one poll can tell."""

    MINING = "mining"
    IDLE = "idle"
    SLEEPING = "sleeping"
    DEGRADED = "degraded"
    ERROR = "error"
    UNREACHABLE = "unreachable"


def format_ts(ts: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, e.g. `2026-11-24T23:31:11.123456Z`."""
    if ts.tzinfo is None:
        raise ValueError("sample timestamps must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


Timestamp = Annotated[datetime, PlainSerializer(format_ts, return_type=str, when_used="json")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Board(_Strict):
    """One hashboard (chain)."""

    index: int
    hashrate_ths: float | None = None
    temp_c: float | None = None
    chip_temp_c: float | None = None
    chips: int | None = None
    expected_chips: int | None = None


class Pool(_Strict):
    """One configured pool and its share counters."""

    url: str
    user: str | None = None
    status: str | None = None
    accepted: int | None = None
    rejected: int | None = None
    active: bool | None = None


class DeviceError(_Strict):
    """An error the device reported, or the reason we could not read it."""

    code: str
    message: str


class Sample(_Strict):
    """One normalized reading of one device at one instant."""

    ip: str
    port: int = 4028
    ts: Timestamp = Field(default_factory=utcnow)
    make: str | None = None
    model: str | None = None
    firmware_vendor: str | None = None
    firmware_version: str | None = None
    state: State
    hashrate_ths: float | None = None
    expected_hashrate_ths: float | None = None
    boards: list[Board] = Field(default_factory=list)
    temp_max_c: float | None = None
    temp_avg_c: float | None = None
    fans_rpm: list[int] = Field(default_factory=list)
    power_w: float | None = None
    efficiency_jth: float | None = None
    pools: list[Pool] = Field(default_factory=list)
    uptime_s: int | None = None
    errors: list[DeviceError] = Field(default_factory=list)
    serial: str | None = None
    mac: str | None = None
    hostname: str | None = None

    def to_json(self) -> str:
        """The sample as one line of JSON, with the wire names."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Sample:
        """Parse one JSON sample; raises pydantic.ValidationError on bad input."""
        return cls.model_validate_json(data)

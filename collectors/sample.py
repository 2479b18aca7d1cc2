"""The normalized sample: what one poll of one device says, whatever its make or firmware.

Every driver produces exactly this shape, and everything downstream (storage, MQTT, the API, metrics)
consumes it. Units are converted once, in the drivers: hashrate in TH/s, temperature in degrees Celsius,
power in watts, efficiency in J/TH, uptime in seconds. A field the device did not report is None, never 0;
an outage is a `state` of `unreachable` or `error` with an entry in `errors`, never zeros.

`security` lists the posture findings the read made (a write-open API, a factory web login, an old
build, a build named by a published advisory), each `{code, severity, message}`; an absent or empty list
means no finding. A down device carries none: its posture was not read.

The JSON names are part of the wire contract (MQTT payloads, `--out` files, `db export-samples`).

The contract also refuses what no store can hold, with a validation error naming the field, so a bad
value is caught where it enters (a driver bug, a forged MQTT message, an edited file) and never reaches
a database batch: integers outside the signed 64-bit range (SQLite INTEGER, PostgreSQL bigint; a port
outside 1-65535), floats that are NaN or infinite, and strings holding a NUL character (PostgreSQL text
and jsonb cannot store U+0000). Nothing is mapped or trimmed here: the drivers already turn a device's
"nan", junk numbers and NUL-laden strings into None at the wire border (collectors.wire), so a value
refused here is a bug or a forged payload, and saying so beats storing a quiet None.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer


class State(StrEnum):
    """What a device is doing, as far as one poll can tell."""

    MINING = "mining"
    IDLE = "idle"
    SLEEPING = "sleeping"
    DEGRADED = "degraded"
    ERROR = "error"
    UNREACHABLE = "unreachable"


class Availability(StrEnum):
    """What a state means for the fleet: the one definition of up, failing and down.

    - up: the device answers and does what it was told (mining, or idle/sleeping on purpose).
    - failing: the device answers and hashes, but below what it should (a dead board, a lost pool).
    - down: no trustworthy reading (the device said error, or did not answer); its figures are not
      measurements, and `fleetmon_miner_up` is 0.

    Everything that asks "is this device down" (the poller's transition log, the summary, the rack
    heat map, `/metrics`, the rollups, the supply-chain analytics) asks `availability` or `is_down`.
    """

    UP = "up"
    FAILING = "failing"
    DOWN = "down"


_AVAILABILITY: dict[State, Availability] = {
    State.MINING: Availability.UP,
    State.IDLE: Availability.UP,
    State.SLEEPING: Availability.UP,
    State.DEGRADED: Availability.FAILING,
    State.ERROR: Availability.DOWN,
    State.UNREACHABLE: Availability.DOWN,
}


def availability(state: State) -> Availability:
    """Whether a device in `state` is up, failing or down."""
    return _AVAILABILITY[state]


def is_down(state: State | str) -> bool:
    """True when `state` gives no trustworthy reading; a string that names no State is not down."""
    try:
        return _AVAILABILITY[State(state)] is Availability.DOWN
    except ValueError:
        return False


PAUSED_STATES: frozenset[State] = frozenset({State.SLEEPING})
"""States in which a device hashes below its nominal rate because it was told to: put to sleep by an
operator, or curtailed (a curtailment ramp sleeps miners; LuxOS calls its sleep `curtail`). Their
shortfall is not a fault, so rankings against nominal (the summary's worst devices) leave them out.
`idle` is not here: an idle miner may have lost its pool, which an operator wants to see."""


def is_paused(state: State | str) -> bool:
    """True when a device in `state` is not hashing on purpose; a string that names no State is not."""
    try:
        return State(state) in PAUSED_STATES
    except ValueError:
        return False


def states_with(wanted: Availability) -> tuple[State, ...]:
    """The states of one availability, in declaration order (for SQL `IN` lists and pages)."""
    return tuple(state for state in State if _AVAILABILITY[state] is wanted)


def format_ts(ts: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, e.g. `2026-11-24T23:31:11.123456Z`."""
    if ts.tzinfo is None:
        raise ValueError("sample timestamps must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


Timestamp = Annotated[datetime, PlainSerializer(format_ts, return_type=str, when_used="json")]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain a NUL character (U+0000), which no store can hold")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string a database can store: no NUL character."""
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer in the signed 64-bit range (SQLite INTEGER, PostgreSQL bigint)."""
Port = Annotated[int, Field(ge=1, le=65535)]


class _Strict(BaseModel):
    # allow_inf_nan=False: every float of the contract is finite (see the module docstring).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Board(_Strict):
    """One hashboard (chain)."""

    index: Int64
    hashrate_ths: float | None = None
    temp_c: float | None = None
    chip_temp_c: float | None = None
    chips: Int64 | None = None
    expected_chips: Int64 | None = None


class Pool(_Strict):
    """One configured pool and its share counters."""

    url: Text
    user: Text | None = None
    status: Text | None = None
    accepted: Int64 | None = None
    rejected: Int64 | None = None
    active: bool | None = None


class DeviceError(_Strict):
    """An error the device reported, or the reason we could not read it."""

    code: Text
    message: Text


class SecurityFinding(_Strict):
    """One security-posture finding about a device (see docs/security.md for the codes).

    `code` is stable (`api_write_open`, `default_credentials`, `firmware_outdated`, `firmware_advisory`),
    `severity` one of low, medium, high, critical, `message` one line for a person.
    """

    code: Text
    severity: Text
    message: Text


class Sample(_Strict):
    """One normalized reading of one device at one instant."""

    ip: Text
    port: Port = 4028
    ts: Timestamp = Field(default_factory=utcnow)
    make: Text | None = None
    model: Text | None = None
    firmware_vendor: Text | None = None
    firmware_version: Text | None = None
    state: State
    algorithm: Text | None = None
    hashrate_ths: float | None = None
    expected_hashrate_ths: float | None = None
    boards: list[Board] = Field(default_factory=list)
    temp_max_c: float | None = None
    temp_avg_c: float | None = None
    fans_rpm: list[Int64] = Field(default_factory=list)
    power_w: float | None = None
    efficiency_jth: float | None = None
    pools: list[Pool] = Field(default_factory=list)
    uptime_s: Int64 | None = None
    errors: list[DeviceError] = Field(default_factory=list)
    serial: Text | None = None
    mac: Text | None = None
    hostname: Text | None = None
    security: list[SecurityFinding] = Field(default_factory=list)
    """Security-posture findings of this read (collectors.posture); empty: none found or not checked."""
    locate: bool | None = None
    """The locate light as this read saw it: True lit, False off, None when the read did not say (the
    firmware's polled replies carry no light state, as stock Antminer's and VNish's do not)."""

    def to_json(self) -> str:
        """The sample as one line of JSON, with the wire names."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Sample:
        """Parse one JSON sample; raises pydantic.ValidationError on bad input."""
        return cls.model_validate_json(data)

"""What every driver shares: the parsed reading, and turning it into exactly one Sample.

A driver (one per firmware dialect) names the commands it needs and parses their replies into a
`Reading`: values already in the sample's units (TH/s, Celsius, watts, seconds). `build_sample` then adds
what is the same for every dialect: temperature summaries, efficiency (J/TH = W / TH/s) and the state
(sleeping / idle / degraded / mining) with the reasons recorded in `errors`.

Values are checked at this border: drivers read measured numbers through `reading.checks`
(`collectors.wire.Checks`), which refuses non-finite, negative and out-of-range numbers, and
`build_sample` refuses a hashrate above 10x the model's nominal (or, with no nominal, above
`ABSURD_THS`). Each refused value is None in the sample plus an `invalid_value` error naming the field
and the value. The state never claims `mining` on refused numbers: when the reply's hashrate fields
were all refused and no other field of the same reply gives a sound total (the boards' rates), the
state is `error` (the device answered, but nothing it said about hashing can be believed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.models import SHA256, ModelSpec, branded_lookup
from collectors.sample import Board, DeviceError, Pool, Sample, State
from collectors.wire import Checks, Quantity, section, to_bool, to_int, to_str

OVERHEAT_CHIP_C = 95.0
OVERHEAT_BOARD_C = 90.0
LOW_HASHRATE_RATIO = 0.8
MISSING_CHIPS_RATIO = 0.95
ABSURD_NOMINAL_RATIO = 10.0
"""A hashrate above this many times the model's nominal is bad data, not a fast machine."""
ABSURD_THS = 10_000.0
"""With no nominal to compare: no single machine does 10 PH/s (the largest, 3U hydro racks, do ~1.2)."""


@dataclass(slots=True)
class Reading:
    """One poll's values in sample units, before the shared finishing."""

    hashrate_ths: float | None = None
    expected_hashrate_ths: float | None = None
    boards: list[Board] = field(default_factory=list)
    temps_c: list[float] = field(default_factory=list)
    hottest_c: float | None = None
    """A whole-machine maximum the reply names (Antminer `temp_max`): feeds temp_max_c, not the mean."""
    fans_rpm: list[int] = field(default_factory=list)
    power_w: float | None = None
    pools: list[Pool] = field(default_factory=list)
    uptime_s: int | None = None
    errors: list[DeviceError] = field(default_factory=list)
    sleeping: bool = False
    idle: bool = False
    wire_model: str | None = None
    firmware_version: str | None = None
    firmware_vendor: str | None = None
    serial: str | None = None
    mac: str | None = None
    hostname: str | None = None
    locate: bool | None = None
    """The locate light, where a polled reply carries it (None: not said)."""
    checks: Checks = field(default_factory=Checks)
    """Values refused while parsing (non-finite, negative, out of range)."""


class Driver:
    """Base of the per-dialect drivers: the commands to send and the parser of their replies."""

    dialect: ClassVar[Dialect] = Dialect.UNKNOWN
    joinable: ClassVar[tuple[str, ...]] = ()
    """Commands read with one `a+b+c` multi-command where the firmware allows it."""
    separate: ClassVar[tuple[str, ...]] = ()
    """Commands that must go alone (Whatsminer get_*/status); their failure is tolerated."""
    required: ClassVar[tuple[str, ...]] = ()
    """Without at least one of these the device cannot be read (state error)."""
    multi: ClassVar[bool] = True

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        """Turn the replies that came back into a Reading (absent commands simply are not in `replies`)."""
        raise NotImplementedError


def cgminer_pools(reply: Reply | None) -> list[Pool]:
    """Pools from a standard cgminer `pools` reply (URL, User, Status, Accepted, Rejected, Stratum Active)."""
    pools: list[Pool] = []
    for record in section(reply, "POOLS"):
        url = to_str(record.get("URL"))
        if url is None:
            continue
        pools.append(
            Pool(
                url=url,
                user=to_str(record.get("User")),
                status=to_str(record.get("Status")),
                accepted=to_int(record.get("Accepted")),
                rejected=to_int(record.get("Rejected")),
                active=to_bool(record.get("Stratum Active")),
            )
        )
    return pools


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _fans(fans: list[int], spec: ModelSpec | None) -> list[int]:
    """The fan readings, none for a model the catalog lists without fans (hydro, immersion) whose
    firmware still sends the air-cooled layout's slots as zeros (`fan1..4` = 0 on the S21 XP Hyd.,
    `Fan Speed In/Out` 0): those are empty slots, not stopped fans. A spinning reading is kept."""
    if spec is not None and spec.fans == 0 and not any(fans):
        return []
    return fans


def build_sample(
    host: str, port: int, identity: Identity, reading: Reading, spec: ModelSpec | None
) -> Sample:
    """The one Sample for this reading: temperatures, efficiency and state computed the same for all."""
    identity = identity.with_model(reading.wire_model)
    if spec is None:
        spec = branded_lookup(identity.model, identity.make)
    expected = reading.expected_hashrate_ths
    if expected is None and spec is not None:
        expected = spec.nominal_ths
    boards = reading.boards
    if spec is not None and spec.chips_per_board is not None:
        boards = [
            b
            if b.expected_chips is not None
            else b.model_copy(update={"expected_chips": spec.chips_per_board})
            for b in boards
        ]
    checks = reading.checks
    hashrate, boards = _bounded_rates(reading.hashrate_ths, boards, spec, checks)
    total_refused = hashrate is None and any(r.quantity is Quantity.HASHRATE for r in checks.refused)
    if total_refused and boards and all(b.hashrate_ths is not None for b in boards):
        # The total was refused but every board gave a sound rate: the same reply still says it.
        hashrate = round(sum(b.hashrate_ths or 0.0 for b in boards), 12)
    temps = [t for b in boards for t in (b.temp_c, b.chip_temp_c) if t is not None] + reading.temps_c
    hottest = temps + ([reading.hottest_c] if reading.hottest_c is not None else [])
    temp_max = max(hottest) if hottest else None
    errors = list(reading.errors) + [r.error() for r in checks.refused]
    efficiency = None
    if reading.power_w is not None and hashrate:
        efficiency = round(reading.power_w / hashrate, 3)
        if not math.isfinite(efficiency):  # a vanishing hashrate overflows the division
            efficiency = None

    if reading.sleeping:
        state = State.SLEEPING
    elif reading.idle:
        state = State.IDLE
    elif hashrate is None and any(r.quantity is Quantity.HASHRATE for r in checks.refused):
        state = State.ERROR
    else:
        problems = _problems(boards, hashrate, expected)
        errors.extend(problems)
        state = State.DEGRADED if problems else State.MINING
    return Sample(
        ip=host,
        port=port,
        make=identity.make,
        model=identity.model,
        firmware_vendor=identity.firmware_vendor,
        firmware_version=identity.firmware_version or reading.firmware_version,
        state=state,
        algorithm=spec.algorithm if spec is not None else SHA256,
        hashrate_ths=hashrate,
        expected_hashrate_ths=expected,
        boards=boards,
        temp_max_c=temp_max,
        temp_avg_c=_mean(temps),
        fans_rpm=_fans(reading.fans_rpm, spec),
        power_w=reading.power_w,
        efficiency_jth=efficiency,
        pools=reading.pools,
        uptime_s=reading.uptime_s,
        errors=errors,
        serial=reading.serial or identity.serial,
        mac=reading.mac or identity.mac,
        hostname=reading.hostname or identity.hostname,
        locate=reading.locate,
    )


def _bounded_rates(
    hashrate: float | None, boards: list[Board], spec: ModelSpec | None, checks: Checks
) -> tuple[float | None, list[Board]]:
    """The total and board rates with absurd ones (above the ceiling) refused."""
    nominal = spec.nominal_ths if spec is not None else None
    ceiling = nominal * ABSURD_NOMINAL_RATIO if nominal else ABSURD_THS
    reason = (
        f"above {ABSURD_NOMINAL_RATIO:g}x the nominal {nominal:g}" if nominal else f"above {ABSURD_THS:g}"
    )
    if hashrate is not None and hashrate > ceiling:
        checks.refuse("hashrate_ths", hashrate, Quantity.HASHRATE, reason)
        hashrate = None
    bounded: list[Board] = []
    for board in boards:
        if board.hashrate_ths is not None and board.hashrate_ths > ceiling:
            checks.refuse(
                f"boards[{board.index}].hashrate_ths", board.hashrate_ths, Quantity.HASHRATE, reason
            )
            bounded.append(board.model_copy(update={"hashrate_ths": None}))
        else:
            bounded.append(board)
    return hashrate, bounded


def _problems(boards: list[Board], hashrate: float | None, expected: float | None) -> list[DeviceError]:
    """Why a device that is meant to be mining is degraded (empty when it is healthy)."""
    found: list[DeviceError] = []
    hot = [
        b.index
        for b in boards
        if (b.chip_temp_c is not None and b.chip_temp_c >= OVERHEAT_CHIP_C)
        or (b.temp_c is not None and b.temp_c >= OVERHEAT_BOARD_C)
    ]
    if hot:
        found.append(
            DeviceError(code="overheating", message=f"boards {hot} at or above the safe temperature")
        )
    dead = [
        b.index
        for b in boards
        if b.chips == 0 or (b.hashrate_ths == 0 and any(o.hashrate_ths for o in boards))
    ]
    if dead:
        found.append(DeviceError(code="dead_board", message=f"boards {dead} report no chips or no hashrate"))
    short = [
        b.index
        for b in boards
        if b.chips and b.expected_chips and b.chips < b.expected_chips * MISSING_CHIPS_RATIO
    ]
    if short:
        found.append(
            DeviceError(code="missing_chips", message=f"boards {short} report fewer chips than expected")
        )
    if hashrate is not None and hashrate == 0:
        found.append(DeviceError(code="zero_hashrate", message="the device reports no hashrate"))
    elif hashrate is not None and expected and hashrate < expected * LOW_HASHRATE_RATIO:
        found.append(
            DeviceError(
                code="low_hashrate",
                message=(
                    f"hashrate {hashrate:.6g} TH/s is under {LOW_HASHRATE_RATIO:.0%} "
                    f"of expected {expected:.6g}"
                ),
            )
        )
    return found

"""The state of one simulated device, independent of how any firmware renders it.

Personalities (`personalities/*.py`) turn this state into the exact bytes a real firmware sends; the
server (`server.py`) only moves bytes. State is advanced lazily: `advance(now)` is called before each
reply, so an idle fleet of 10,000 devices costs no CPU.

Units inside the simulator match the rest of fleetmon: TH/s, degrees Celsius, watts, seconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum


class Make(StrEnum):
    """The hardware family (who built the box), not the firmware."""

    ANTMINER = "antminer"
    WHATSMINER = "whatsminer"
    AVALON = "avalon"
    AURADINE = "auradine"
    SEALMINER = "sealminer"
    CLONE = "clone"  # a made-up brand whose firmware copies the Antminer API (issue 14)


class Firmware(StrEnum):
    """Which firmware dialect the device speaks."""

    STOCK = "stock"
    BRAIINS = "braiins"
    LUXOS = "luxos"
    VNISH = "vnish"


class SimState(StrEnum):
    """Operating states a simulated device can be put in."""

    MINING = "mining"
    SLEEPING = "sleeping"
    DEAD_BOARD = "dead_board"
    OVERHEATING = "overheating"
    POOL_DOWN = "pool_down"


class Fault(StrEnum):
    """Faults: how the device misbehaves on the wire (NON_FINITE: in the numbers it sends)."""

    REFUSED = "refused"  # nothing listens
    HANG = "hang"  # accepts, reads, never answers
    SLOW_DRIP = "slow_drip"  # answers a few bytes per second
    RESET = "reset"  # sends part of the reply, then RST
    GARBAGE = "garbage"  # answers random bytes
    OVERSIZED = "oversized"  # answers a reply of many megabytes
    NO_CLOSE = "no_close"  # valid reply with its NUL, but never closes
    TRUNCATED = "truncated"  # the reply cut off mid-JSON, then its NUL and a close
    HTTP = "http"  # an HTTP/1.1 response on the API port (a web server where the API should be)
    DEEP_NESTING = "deep_nesting"  # a valid envelope around a few hundred thousand brackets, under the cap
    INVALID_UTF8 = "invalid_utf8"  # the reply with bytes that are not UTF-8 inside a string value
    EMPTY = "empty"  # closes without a byte of reply (cgminer's answer to a host api-allow does not list)
    ACCESS_DENIED = "access_denied"  # every command answered STATUS=E Code 45 "Access denied"
    NON_FINITE = "non_finite"  # well-framed replies whose hashrate numbers are 1e999 / bare NaN


@dataclass(frozen=True)
class ModelSpec:
    """One row of the simulator's model table (see personalities/models.py)."""

    make: Make
    name: str  # catalog name, e.g. "Antminer S19 Pro", "Whatsminer M30S+", "Avalon A1366"
    wire_type: str  # what the firmware reports: "Antminer S19 Pro", "M30S+_VE40", "1366"
    boards: int
    chips_per_board: int
    fans: int
    nominal_ths: float
    power_w: float


@dataclass
class BoardState:
    """One hashboard."""

    index: int
    expected_chips: int
    chips: int
    share: float  # fraction of the device's hashrate this board carries when healthy
    temp_pcb_c: float = 60.0
    temp_chip_c: float = 75.0
    hashrate_ths: float = 0.0
    hw_errors: int = 0

    @property
    def alive(self) -> bool:
        """A board with no working chips is dead."""
        return self.chips > 0


@dataclass
class PoolState:
    """One configured pool with its counters."""

    url: str
    user: str
    priority: int
    alive: bool = True
    active: bool = False
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    difficulty: float = 65536.0


@dataclass
class SimDevice:
    """A simulated miner: identity, hardware, and state that drifts plausibly over time."""

    ip: str
    spec: ModelSpec
    firmware: Firmware
    firmware_version: str
    serial: str
    mac: str  # "AA:BB:CC:DD:EE:FF"
    hostname: str
    seed: int
    boot_time: float  # epoch seconds
    state: SimState = SimState.MINING
    fault: Fault | None = None
    whatsminer_api_v3: bool = False  # Whatsminer firmware built after 2024-11 also serves 4433
    api_write_open: bool = False  # the CGMiner API grants `privileged` (write) access to any caller
    web_password: str | None = None  # None: the web UI still takes its factory password
    env_temp_c: float = 25.0
    boards: list[BoardState] = field(default_factory=list)
    fans_rpm: list[int] = field(default_factory=list)
    pools: list[PoolState] = field(default_factory=list)
    hashrate_ths: float = 0.0  # current (5 s) hashrate
    power_w: float = 0.0
    last_update: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    # ---- what operator actions change (issue 19) ----
    locate: bool = False  # the locate (fault) light is blinking
    power_limit_w: float | None = None  # a power target in force; hashrate and power scale with it
    session: str | None = None  # LuxOS: the session `logon` opened, needed by privileged commands
    wm_tokens: list[tuple[str, float]] = field(default_factory=list)  # Whatsminer v2: (sign, issued at)
    reboot_requested: bool = False  # set by a personality; the server takes the device down after the reply
    bosminer_stopped: bool = False  # Braiins OS: gRPC `Stop` stopped bosminer (and its 4028 API)
    bosminer_started: float = 0.0  # Braiins OS: when gRPC `Start` last started bosminer (epoch seconds)
    bos_tokens: list[str] = field(default_factory=list)  # Braiins OS: tokens gRPC `Login` issued
    requests: int = 0  # requests received on any port, counted by the server

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if not self.boards:
            n = self.spec.boards
            self.boards = [
                BoardState(
                    index=i,
                    expected_chips=self.spec.chips_per_board,
                    chips=self.spec.chips_per_board,
                    share=1.0 / n,
                )
                for i in range(n)
            ]
        if not self.fans_rpm:
            self.fans_rpm = [0] * self.spec.fans
        if not self.pools:
            self.pools = [
                PoolState(
                    url="stratum+tcp://btc.example-pool.com:3333",
                    user=f"farm.{self.hostname}",
                    priority=0,
                    active=True,
                ),
                PoolState(
                    url="stratum+tcp://btc-backup.example-pool.com:443",
                    user=f"farm.{self.hostname}",
                    priority=1,
                ),
            ]
        self.apply_state(self.state)
        self.last_update = self.boot_time
        self.advance(self.boot_time)

    # ---- state changes -------------------------------------------------------------------------

    def set_asleep(self, asleep: bool) -> None:
        """Stop (True) or resume (False) hashing, as a sleep or wake command does: only a sleeping device
        wakes, and a device already asleep is left as it is."""
        if asleep != (self.state is SimState.SLEEPING):
            self.apply_state(SimState.SLEEPING if asleep else SimState.MINING)

    def apply_state(self, state: SimState) -> None:
        """Put the device in an operating state (hardware effects are applied on the next advance)."""
        self.state = state
        for board in self.boards:
            board.chips = board.expected_chips
        for pool in self.pools:
            pool.alive = True
        if state is SimState.DEAD_BOARD and self.boards:
            self.boards[-1].chips = 0
        if state is SimState.POOL_DOWN:
            for pool in self.pools:
                pool.alive = False
                pool.active = False
        elif self.pools:
            self.pools[0].active = True

    @property
    def mining(self) -> bool:
        """True when the device is hashing at all."""
        return self.state not in (SimState.SLEEPING, SimState.POOL_DOWN)

    @property
    def power_scale(self) -> float:
        """The share of nominal hashrate (and power) the power target allows; 1.0 without one."""
        if self.power_limit_w is None or self.spec.power_w <= 0:
            return 1.0
        return max(0.0, self.power_limit_w / self.spec.power_w)

    def reboot(self, now: float, down_s: float) -> None:
        """Restart: uptime counts from when it is back, the light goes off and any session or token ends; the
        operating state (a sleep set in the configuration) survives, as on the firmware."""
        self.reboot_requested = False
        self.boot_time = now + down_s
        self.last_update = max(self.last_update, now)
        self.locate = False
        self.session = None
        self.wm_tokens = []
        self.bos_tokens = []
        if self.bosminer_stopped:  # bosminer is a service started at boot: a Stop does not survive
            self.bosminer_stopped = False
            self.apply_state(SimState.MINING)

    @property
    def expected_hashrate_ths(self) -> float:
        """Nominal hashrate of the model."""
        return self.spec.nominal_ths

    def uptime_s(self, now: float) -> int:
        """Seconds since boot."""
        return max(0, int(now - self.boot_time))

    # ---- drift ---------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Bring hashrate, temperatures, fans, power and pool counters up to `now`."""
        dt = max(0.0, now - self.last_update)
        self.last_update = now
        rng = self.rng
        # Slow sinusoidal ambient swing plus noise, as a farm sees over a day.
        self.env_temp_c = 24.0 + 4.0 * math.sin(now / 13_750.0 + self.seed % 97) + rng.uniform(-0.3, 0.3)
        hot = self.state is SimState.OVERHEATING
        mining, spec, env_temp_c = self.mining, self.spec, self.env_temp_c
        total = 0.0
        for board in self.boards:
            if not mining or not board.alive:
                board.hashrate_ths = 0.0
                board.temp_pcb_c = env_temp_c + rng.uniform(1.0, 3.0)
                board.temp_chip_c = board.temp_pcb_c + rng.uniform(0.5, 2.0)
                continue
            healthy = spec.nominal_ths * board.share * self.power_scale
            board.hashrate_ths = max(0.0, healthy * rng.gauss(1.0, 0.015))
            base = 95.0 if hot else 62.0
            board.temp_pcb_c = base + (env_temp_c - 24.0) * 0.6 + rng.uniform(-1.5, 1.5)
            board.temp_chip_c = board.temp_pcb_c + rng.uniform(10.0, 14.0)
            total += board.hashrate_ths
            board.hw_errors += int(rng.random() < dt / 600.0)
        self.hashrate_ths = total
        fan_base = 6000 if hot else (4200 if mining else 1200)
        gauss = rng.gauss
        self.fans_rpm = [max(0, int(gauss(fan_base, 60))) for _ in range(spec.fans)]
        if mining:
            self.power_w = spec.power_w * (total / spec.nominal_ths if spec.nominal_ths else 0.0)
            self.power_w = max(self.power_w, 0.0) + rng.uniform(-15.0, 15.0)
        else:
            self.power_w = 60.0 + rng.uniform(-5.0, 5.0)
        # Shares found at a rate proportional to hashrate; about one every ten seconds at nominal.
        if mining:
            for pool in self.pools:
                if pool.active and pool.alive:
                    found = int(dt * (total / max(spec.nominal_ths, 1.0)) / 10.0)
                    pool.accepted += found
                    pool.rejected += int(found * 0.002 + (rng.random() < 0.01))

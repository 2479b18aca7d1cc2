"""Antminer stock firmware (bmminer/cgminer) and the firmware that keeps its API: Hiveon, MSKminer,
asicseer, A.P., MaraFW, VNish over RPC, and LuxOS (which adds `power` and `config`).

Units, reply first: a value carrying its own unit ("11.49 GH/s", "891.29 Ksol/s") means that unit; else
the `GHS` fields and `chain_rateN` are in `rate_unit` when the firmware sends one ("GH", "MH/s");
otherwise in the algorithm's unit from the model table (GH/s on SHA-256; MH/s on Scrypt L3+, X11 D3 and
Ethash E3; kSol/s on Equihash Z11); an unknown model is taken as SHA-256. Temperatures: a board's chip
temperature is the hottest of its `temp_chipN` readings, else `temp2_N`; where the firmware names a
maximum (`temp_max`, the whole machine's hottest sensor) it is kept as a reading, never averaged.
Sleeping: `Mode` 254 (X17), or no hashrate with an empty `chain_rateN` on a
board slot (X19). Power: `total_power` where the firmware sends it (Hiveon and MSKminer builds; stock
sends none). Fans: the spinning `fanN`, else `fan_num` zeros (a hydro model's zero slots are dropped by
`build_sample`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from collectors.drivers.base import (
    OVERHEAT_BOARD_C,
    OVERHEAT_CHIP_C,
    Driver,
    Reading,
    cgminer_pools,
)
from collectors.framing import Reply
from collectors.identify import Dialect, Identity, antminer_type
from collectors.models import ModelSpec
from collectors.sample import Board
from collectors.wire import Checks, dash_temps, first, section, to_float, to_int, to_str, unit_ths

GHS_FIELDS = ("GHS 5s", "GHS av", "rate_30m")
"""The whole machine's rate, freshest window first: a refused 5 s window falls back to the average."""
SLEEP_MODE = 254
_DIGITS = "0123456789"
Indexed = dict[str, dict[int, object]]
"""Values of numbered keys by prefix: `{"chain_acn": {1: 76, 2: 76, 3: 76}}`."""


def _indexed(record: dict[str, Any], *prefixes: str) -> Indexed:
    """`{prefix: {N: value}}` for the keys `prefixN` (e.g. `chain_acn3` -> 3), in one pass over the
    record (a stats record has a hundred keys or so); prefixes must not end in a digit."""
    found: Indexed = {prefix: {} for prefix in prefixes}
    for key, value in record.items():
        stem = key.rstrip(_DIGITS)
        group = found.get(stem)
        if group is not None and len(stem) < len(key):
            group[int(key[len(stem) :])] = value
    return found


def stats_record(reply: Reply | None) -> dict[str, Any]:
    """The data record of an Antminer `stats` reply (the one after the version block)."""
    for record in section(reply, "STATS"):
        if "GHS 5s" in record or "chain_acn1" in record or "STATS" in record:
            return record
    return {}


def _all_chips_off(stats: dict[str, Any]) -> bool:
    """True when every populated `chain_acsN` shows only `x` (chips not hashing): X19 asleep."""
    chips = _indexed(stats, "chain_acs")["chain_acs"]
    strings = [v for v in chips.values() if isinstance(v, str) and v.strip()]
    return bool(strings) and all(set(v) <= {" ", "x"} for v in strings)


class AntminerDriver(Driver):
    """Stock Antminer API and its compatible aftermarket firmware."""

    dialect: ClassVar[Dialect] = Dialect.ANTMINER
    # `summary` adds nothing `stats` lacks on these firmwares (GHS 5s, Elapsed); it is read only when
    # identification already had it. One connection fewer per device and cycle.
    joinable: ClassVar[tuple[str, ...]] = ("stats", "pools")
    required: ClassVar[tuple[str, ...]] = ("stats", "summary")

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        stats = stats_record(replies.get("stats"))
        summary = first(replies.get("summary"), "SUMMARY")
        version_block = first(replies.get("stats"), "STATS")
        reading = Reading(pools=cgminer_pools(replies.get("pools")))
        type_field = to_str(version_block.get("Type"))
        # The model only: without a vendor's note ("(vnish 3.8.6)", " Hiveon", " v.2.6.0.39"), else a cached
        # identity looks contradicted on every poll and the device is identified again each time.
        reading.wire_model = antminer_type(type_field)[0] if type_field else None
        if self.dialect is Dialect.ANTMINER and type_field:
            # What the firmware says it is now, for spotting a reflash under a cached identity.
            _, vendor, vendor_version = antminer_type(type_field)
            if vendor is not None:
                reading.firmware_vendor, reading.firmware_version = vendor, vendor_version
            elif identity.firmware_vendor == "stock":
                reading.firmware_vendor = "stock"
                reading.firmware_version = to_str(version_block.get("CompileTime"))
        unit = unit_ths(stats.get("rate_unit"))
        if unit is None:
            unit = spec.ghs_unit_ths if spec is not None else 1e-3

        checks = reading.checks
        indexed = _indexed(stats, "chain_acn", "chain_rate", "fan")
        boards, chain_rates, empty_slots = self._boards(stats, indexed, unit, spec, checks)
        reading.boards = boards
        hashrate = checks.first_rate(stats, GHS_FIELDS, unit)
        if hashrate is None:
            hashrate = checks.first_rate(summary, GHS_FIELDS, unit)
        chain_sum = sum(chain_rates) if chain_rates else None
        if hashrate is not None and chain_sum and hashrate > chain_sum * 100:
            # Some firmware (Z11 "Chipless") reports the total in a smaller unit than the chains: the
            # per-chain rates agree with the model, so they are the truth.
            hashrate = chain_sum
        reading.hashrate_ths = round(hashrate, 12) if hashrate is not None else None
        ideal = Checks().rate(stats.get("total_rateideal"), "total_rateideal", unit)
        reading.expected_hashrate_ths = ideal if ideal else None
        reading.fans_rpm = self._fans(stats, indexed["fan"], checks)
        # The Hiveon and MSKminer builds add the chains' power and its total (watts) to stats.
        reading.power_w = checks.watts(stats.get("total_power"), "total_power")
        reading.hottest_c = checks.temperature(stats.get("temp_max"), "temp_max")
        elapsed = stats.get("Elapsed", summary.get("Elapsed"))
        reading.uptime_s = to_int(elapsed)
        mode = to_int(stats.get("Mode"))
        # All chips off on hot boards is the overheat protection having tripped, not sleep.
        hot = any(
            (b.chip_temp_c or 0) >= OVERHEAT_CHIP_C or (b.temp_c or 0) >= OVERHEAT_BOARD_C for b in boards
        )
        pools_dead = bool(reading.pools) and all(p.status == "Dead" for p in reading.pools)
        # No hashrate because no pool answers is idle, not asleep: the operator's fix is the pool.
        reading.idle = reading.hashrate_ths == 0 and pools_dead
        reading.sleeping = not reading.idle and (
            mode == SLEEP_MODE
            or (reading.hashrate_ths == 0 and (empty_slots or (_all_chips_off(stats) and not hot)))
        )
        return reading

    def _boards(
        self, stats: dict[str, Any], indexed: Indexed, unit: float, spec: ModelSpec | None, checks: Checks
    ) -> tuple[list[Board], list[float], bool]:
        """Boards (present chains, plus dead slots up to the model's board count), chain rates, and
        whether a board slot sent an empty `chain_rateN` (the X19 sleeping signal)."""
        acn = {i: to_int(v) for i, v in indexed["chain_acn"].items()}
        rates = indexed["chain_rate"]
        rate_values = {i: checks.rate(v, f"chain_rate{i}", unit) for i, v in rates.items()}
        present = sorted(
            i for i in set(acn) | set(rates) if (acn.get(i) or 0) > 0 or (rate_values.get(i) or 0) > 0
        )
        wanted = spec.boards if spec is not None and spec.boards else len(present)
        slots = sorted(acn) if acn else sorted(rates)
        dead = [i for i in slots if i not in present][: max(0, wanted - len(present))]
        indices = sorted(present + dead)
        last_slot = max(indices) if indices else 0
        empty_slots = any(
            isinstance(rates.get(i), str) and rates.get(i) == "" for i in slots if i <= last_slot
        )
        boards: list[Board] = []
        for position, i in enumerate(indices):
            rate = rate_values.get(i)
            pcb = dash_temps(stats.get(f"temp_pcb{i}"), f"temp_pcb{i}", checks)
            chip = dash_temps(stats.get(f"temp_chip{i}"), f"temp_chip{i}", checks)
            board_temp = max(pcb) if pcb else checks.temperature(stats.get(f"temp{i}"), f"temp{i}")
            chip_temp = max(chip) if chip else checks.temperature(stats.get(f"temp2_{i}"), f"temp2_{i}")
            boards.append(
                Board(
                    index=position,
                    hashrate_ths=rate,
                    temp_c=board_temp,
                    chip_temp_c=chip_temp,
                    chips=acn.get(i),
                )
            )
        chain_rates = [b.hashrate_ths for b in boards if b.hashrate_ths is not None]
        return boards, chain_rates, empty_slots

    @staticmethod
    def _fans(stats: dict[str, Any], fans: dict[int, object], checks: Checks) -> list[int]:
        fans.pop(0, None)
        values = [checks.rpm(fans[i], f"fan{i}") for i in sorted(fans) if i < 100]
        spinning = [v for v in values if v]
        if spinning:
            return spinning
        count = to_int(stats.get("fan_num")) or 0
        return [0] * count if values else []


def red_led_lit(value: object) -> bool | None:
    """LuxOS `config` `RedLed`: "on" or "blink" is the locate light lit; None when absent."""
    text = to_str(value)
    return None if text is None else text.strip().lower() in ("on", "blink")


class LuxOSDriver(AntminerDriver):
    """LuxOS: the Antminer API plus `power` (watts) and `config` (MAC, hostname, serial)."""

    dialect: ClassVar[Dialect] = Dialect.LUXOS
    joinable: ClassVar[tuple[str, ...]] = ("summary", "stats", "pools", "power", "config")

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        reading = super().parse(identity, replies, spec)
        power = first(replies.get("power"), "POWER")
        watts = reading.checks.watts(power.get("Watts"), "Watts")
        if watts is not None:
            reading.power_w = watts
        config = first(replies.get("config"), "CONFIG")
        reading.mac = to_str(config.get("MACAddr"))
        reading.hostname = to_str(config.get("Hostname"))
        reading.serial = to_str(config.get("SerialNumber"))
        reading.locate = red_led_lit(config.get("RedLed"))
        nameplate = to_float(config.get("NameplateTHS"))
        if reading.expected_hashrate_ths is None and nameplate:
            reading.expected_hashrate_ths = nameplate
        return reading

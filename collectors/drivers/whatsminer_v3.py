"""Whatsminer API v3 (TCP 4433, firmware built after 2024-11).

Commands: `get.miner.status` with param summary / edevs / pools, and `get.device.info`. Units: TH/s
floats everywhere (`hash-1min`, `hash-realtime`, `factory-hash`). A board's `chip_temp_c` is its
`chip-temp-max` (the hottest chip), `chip-temp-avg` only when no maximum is sent. Device errors:
`error-code` in
get.device.info, `[{"<code>": "<time>", "reason": "..."}]`.
"""

from __future__ import annotations

from typing import ClassVar

from collectors.drivers.base import Driver, Reading
from collectors.drivers.whatsminer import led_lit
from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.models import ModelSpec
from collectors.sample import Board, DeviceError, Pool
from collectors.wire import as_mapping, pick, to_bool, to_float, to_int, to_str

SUMMARY, EDEVS, POOLS, DEVICE_INFO = (
    "get.miner.status:summary",
    "get.miner.status:edevs",
    "get.miner.status:pools",
    "get.device.info",
)


def _msg(reply: Reply | None) -> dict[str, object]:
    return as_mapping(as_mapping(reply).get("msg"))


class WhatsminerV3Driver(Driver):
    """API v3 replies -> one Reading."""

    dialect: ClassVar[Dialect] = Dialect.WHATSMINER_V3
    joinable: ClassVar[tuple[str, ...]] = (SUMMARY, EDEVS, POOLS, DEVICE_INFO)
    required: ClassVar[tuple[str, ...]] = (SUMMARY,)
    multi: ClassVar[bool] = False

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        summary = as_mapping(_msg(replies.get(SUMMARY)).get("summary"))
        reading = Reading()
        checks = reading.checks
        reading.hashrate_ths = checks.first_rate(summary, ("hash-1min", "hash-realtime", "hash-average"), 1.0)
        factory = to_float(summary.get("factory-hash"))
        reading.expected_hashrate_ths = factory if factory else None
        # v3 names no target hashrate, only `power-limit`. Under a limit below the model's nominal watts
        # (curtailment) the expectation scales with the watts: hashrate falls less than power as the
        # clocks drop, so this errs toward `mining`, never calls a curtailed miner degraded.
        limit = to_float(summary.get("power-limit"))
        nominal_w = spec.nominal_w if spec is not None else None
        if factory and limit and nominal_w and 0 < limit < nominal_w:
            reading.expected_hashrate_ths = round(factory * limit / nominal_w, 6)
        power = [checks.watts(summary.get(name), name) for name in ("power-realtime", "power-5min")]
        reading.power_w = next((p for p in power if p is not None), None)
        fans = [checks.rpm(summary.get(name), name) for name in ("fan-speed-in", "fan-speed-out")]
        reading.fans_rpm = [f for f in fans if f is not None]
        reading.uptime_s = to_int(pick(summary, "elapsed", "bootup-time"))
        edevs = _msg(replies.get(EDEVS)).get("edevs")
        board_temps = summary.get("board-temperature")
        temps = board_temps if isinstance(board_temps, list) else []
        for position, dev in enumerate(edevs if isinstance(edevs, list) else []):
            record = as_mapping(dev)
            chips = to_int(record.get("effective-chips"))
            reading.boards.append(
                Board(
                    index=position,
                    hashrate_ths=checks.first_rate(
                        record, ("hash-realtime", "hash-average"), 1.0, f"edevs[{position}]."
                    ),
                    temp_c=checks.temperature(temps[position], f"board-temperature[{position}]")
                    if position < len(temps)
                    else None,
                    chip_temp_c=checks.first_temperature(
                        record, ("chip-temp-max", "chip-temp-avg"), f"edevs[{position}]."
                    ),
                    chips=chips,
                )
            )
        if not reading.boards:
            chip = checks.temperature(summary.get("chip-temp-max"), "chip-temp-max")
            if chip is not None:
                reading.temps_c.append(chip)
        pools = _msg(replies.get(POOLS)).get("pools")
        for pool in pools if isinstance(pools, list) else []:
            record = as_mapping(pool)
            url = to_str(record.get("url"))
            if url:
                reading.pools.append(
                    Pool(
                        url=url,
                        user=to_str(record.get("account")),
                        status=to_str(record.get("status")),
                        active=to_bool(record.get("stratum-active")),
                    )
                )
        info = _msg(replies.get(DEVICE_INFO))
        miner = as_mapping(info.get("miner"))
        network = as_mapping(info.get("network"))
        reading.serial = to_str(miner.get("miner-sn"))
        reading.mac = to_str(network.get("mac"))
        reading.hostname = to_str(network.get("hostname"))
        model = to_str(miner.get("type"))
        reading.wire_model = model.replace("_", "") if model else None
        reading.sleeping = to_bool(miner.get("working")) is False
        reading.locate = led_lit(as_mapping(info.get("system")).get("ledstatus"))
        codes = info.get("error-code")
        for entry in codes if isinstance(codes, list) else []:
            record = as_mapping(entry)
            reason = to_str(record.get("reason"))
            for key, value in record.items():
                if key != "reason":
                    message = reason or "Whatsminer error"
                    reading.errors.append(
                        DeviceError(code=f"whatsminer:{key}", message=f"{message} (since {value})")
                    )
        return reading

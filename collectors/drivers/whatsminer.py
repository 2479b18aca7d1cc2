"""Whatsminer (btminer) API v1/v2 on port 4028.

Units: MH/s in `summary` and `devs`/`edevs` (`MHS 1m`), GH/s in `Factory GHS`, unless a value carries
its own unit text; the 2024+ builds answer `summary` with its fields in a `Msg` object and send the
boards' `MHS` fields in TH/s (`board_unit` tells the two apart by the summary's total). Temperatures: a
board's `temp_c` is its `Temperature` (the hashboard sensor), its `chip_temp_c` the `Chip Temp Max`
(the hottest chip; `Chip Temp Avg` only when no maximum is sent); where no board names a chip
temperature, the summary's `Chip Temp Max` is the machine's hottest.
The `get_*` and `status` commands answer with a string STATUS and an object Msg and are sent alone. Sleeping:
`status` Msg `btmineroff`/`mineroff` "true". Device errors: `Error Code N` in summary and
`get_error_code` (API >= 2.0.1).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from collectors.drivers.base import Driver, Reading, cgminer_pools
from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.models import ModelSpec
from collectors.sample import Board, DeviceError
from collectors.wire import (
    Checks,
    as_mapping,
    first,
    first_or_msg,
    pick,
    section,
    to_bool,
    to_float,
    to_int,
    to_str,
)

MHS_TO_THS = 1e-6
GHS_TO_THS = 1e-3
MHS_FIELDS = ("MHS 1m", "MHS 5s", "MHS av")


def firmware_string(value: object) -> str | None:
    """`"'20210322.22.REL'"` -> `20210322.22.REL` (the firmware quotes its own version)."""
    text = to_str(value)
    return text.strip("'\"\\ ") or None if text else None


def led_lit(value: object) -> bool | None:
    """Whatsminer's LED state (v2 `ledstat`, v3 `system.ledstatus`): "auto" is the ordinary status
    blinking, anything else ("manual", a colour) a light set by command; None when absent."""
    text = to_str(value)
    return None if text is None else text.strip().lower() != "auto"


def board_unit(records: list[dict[str, Any]], total_ths: float | None) -> float:
    """The factor from the boards' `MHS` fields to TH/s: MH/s as btminer documents, except where the
    boards only add up to the summary's total read as TH/s.

    The 2024+ builds send each board's `MHS 1m` in TH/s (`"MHS 1m": 45.61` on one of three boards of a
    machine whose summary says `"MHS 1m": 140544208`, MH/s). Nothing in the reply names the unit, so the
    one under which the boards' sum lies nearer the total (by ratio) wins; without a total, MH/s.
    """
    rates = [to_float(pick(dev, *MHS_FIELDS)) for dev in records]
    raw = sum(r for r in rates if r is not None and r > 0)
    if not total_ths or total_ths <= 0 or raw <= 0:
        return MHS_TO_THS
    as_ths = abs(math.log(raw / total_ths))
    as_mhs = abs(math.log(raw * MHS_TO_THS / total_ths))
    return 1.0 if as_ths < as_mhs else MHS_TO_THS


class WhatsminerDriver(Driver):
    """btminer replies -> one Reading."""

    dialect: ClassVar[Dialect] = Dialect.WHATSMINER
    joinable: ClassVar[tuple[str, ...]] = ("summary", "edevs", "devs", "pools")
    separate: ClassVar[tuple[str, ...]] = ("status", "get_version", "get_error_code", "get_miner_info")
    required: ClassVar[tuple[str, ...]] = ("summary",)

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        summary = first_or_msg(replies.get("summary"), "SUMMARY")
        reading = Reading(pools=cgminer_pools(replies.get("pools")))
        checks = reading.checks
        reading.hashrate_ths = checks.first_rate(summary, MHS_FIELDS, MHS_TO_THS)
        factory = to_float(summary.get("Factory GHS"))
        target = to_float(summary.get("Target MHS"))
        # `Target MHS` is what the firmware aims for in its current power mode and limit; `Factory GHS` is
        # the nameplate. A miner held under a power limit (curtailment) is not degraded for hashing less
        # than its nameplate, so the target comes first.
        if target:
            reading.expected_hashrate_ths = round(target * MHS_TO_THS, 6)
        elif factory:
            reading.expected_hashrate_ths = round(factory * GHS_TO_THS, 6)
        reading.power_w = checks.watts(summary.get("Power"), "Power")
        fans = [checks.rpm(summary.get(name), name) for name in ("Fan Speed In", "Fan Speed Out")]
        reading.fans_rpm = [f for f in fans if f is not None]
        reading.uptime_s = to_int(pick(summary, "Elapsed", "Uptime"))
        reading.mac = to_str(summary.get("MAC"))
        reading.firmware_version = firmware_string(summary.get("Firmware Version"))
        reading.boards = self._boards(replies, checks, reading.hashrate_ths)
        if not reading.boards:
            temp = checks.temperature(summary.get("Temperature"), "Temperature")
            if temp is not None:
                reading.temps_c.append(temp)
        if not any(b.chip_temp_c is not None for b in reading.boards):
            # The 2024+ builds' `edevs` carry only the board sensor: the summary still names the
            # machine's hottest chip (where the boards do, it is their maximum, read once).
            reading.hottest_c = checks.temperature(summary.get("Chip Temp Max"), "Chip Temp Max")
        reading.errors += self._errors(summary, replies.get("get_error_code"))

        status = as_mapping(as_mapping(replies.get("status")).get("Msg"))
        off = to_bool(status.get("btmineroff", status.get("mineroff")))
        reading.sleeping = bool(off)
        reading.firmware_version = reading.firmware_version or firmware_string(
            status.get("Firmware Version", status.get("FirmwareVersion"))
        )
        version = as_mapping(replies.get("get_version"))
        msg = version.get("Msg")
        if isinstance(msg, dict):
            reading.firmware_version = firmware_string(msg.get("fw_ver")) or reading.firmware_version
        info = as_mapping(as_mapping(replies.get("get_miner_info")).get("Msg"))
        reading.mac = reading.mac or to_str(info.get("mac"))
        reading.hostname = to_str(info.get("hostname"))
        reading.serial = to_str(info.get("minersn"))
        reading.locate = led_lit(info.get("ledstat"))
        devdetails = first(replies.get("devdetails"), "DEVDETAILS")
        model = to_str(devdetails.get("Model"))
        reading.wire_model = model.replace("_", "") if model else None
        return reading

    @staticmethod
    def _boards(replies: dict[str, Reply], checks: Checks, total_ths: float | None) -> list[Board]:
        records = section(replies.get("edevs"), "DEVS") or section(replies.get("devs"), "DEVS")
        unit = board_unit(records, total_ths)
        boards: list[Board] = []
        for position, dev in enumerate(records):
            rate = checks.first_rate(dev, MHS_FIELDS, unit, f"DEVS[{position}].")
            chips = to_int(dev.get("Effective Chips"))
            if str(dev.get("Status", "")).lower() == "dead" and chips is None:
                chips = 0
            boards.append(
                Board(
                    index=position,
                    hashrate_ths=rate,
                    temp_c=checks.temperature(dev.get("Temperature"), f"DEVS[{position}].Temperature"),
                    chip_temp_c=checks.first_temperature(
                        dev, ("Chip Temp Max", "Chip Temp Avg"), f"DEVS[{position}]."
                    ),
                    chips=chips,
                )
            )
        return boards

    @staticmethod
    def _errors(summary: dict[str, Any], error_reply: Reply | None) -> list[DeviceError]:
        errors: list[DeviceError] = []
        count = to_int(summary.get("Error Code Count")) or 0
        for i in range(count):
            code = to_str(summary.get(f"Error Code {i}"))
            if code is not None:
                errors.append(DeviceError(code=f"whatsminer:{code}", message=f"Whatsminer error code {code}"))
        msg = as_mapping(as_mapping(error_reply).get("Msg"))
        listed = msg.get("error_code")
        entries = listed.items() if isinstance(listed, dict) else []
        if isinstance(listed, list):
            entries = [kv for item in listed if isinstance(item, dict) for kv in item.items()]
        seen = {e.code for e in errors}
        for code, since in entries:
            key = f"whatsminer:{code}"
            if key not in seen:
                seen.add(key)
                errors.append(DeviceError(code=key, message=f"Whatsminer error code {code} since {since}"))
        return errors

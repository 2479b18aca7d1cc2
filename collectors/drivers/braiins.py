"""Braiins OS / BOS+ (BOSminer, BOSminer+, BOSer) over the cgminer-compatible API.

Units: MH/s in `summary` and `devs` (`MHS 1m`, `Nominal MHS`). Boards are the `devs` entries (IDs 6-8 on
the S9, renumbered 0..n-1 here); their temperatures come from `temps` (Board/Chip) by ID, fans from `fans`.
"""

from __future__ import annotations

from typing import ClassVar

from collectors.drivers.base import Driver, Reading, cgminer_pools
from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.models import ModelSpec
from collectors.sample import Board
from collectors.wire import first, section, to_float, to_int, to_str

MHS_TO_THS = 1e-6
MHS_FIELDS = ("MHS 1m", "MHS 5s", "MHS av")


class BraiinsDriver(Driver):
    """BOSminer-family replies -> one Reading."""

    dialect: ClassVar[Dialect] = Dialect.BRAIINS
    joinable: ClassVar[tuple[str, ...]] = ("summary", "devs", "pools", "fans", "temps")
    required: ClassVar[tuple[str, ...]] = ("summary", "devs")

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        summary = first(replies.get("summary"), "SUMMARY")
        reading = Reading(pools=cgminer_pools(replies.get("pools")))
        checks = reading.checks
        rate = checks.first_rate(summary, MHS_FIELDS, MHS_TO_THS, "SUMMARY.")
        reading.hashrate_ths = round(rate, 9) if rate is not None else None
        reading.uptime_s = to_int(summary.get("Elapsed"))
        temps = {to_int(t.get("ID")): t for t in section(replies.get("temps"), "TEMPS")}
        nominal = 0.0
        for position, dev in enumerate(section(replies.get("devs"), "DEVS")):
            board_rate = checks.first_rate(dev, MHS_FIELDS[:2], MHS_TO_THS, f"DEVS[{position}].")
            nominal += to_float(dev.get("Nominal MHS")) or 0.0
            temp = temps.get(to_int(dev.get("ID")), {})
            reading.boards.append(
                Board(
                    index=position,
                    hashrate_ths=round(board_rate, 9) if board_rate is not None else None,
                    temp_c=checks.temperature(temp.get("Board"), f"TEMPS[{position}].Board")
                    or checks.temperature(dev.get("Temperature"), f"DEVS[{position}].Temperature"),
                    chip_temp_c=checks.temperature(temp.get("Chip"), f"TEMPS[{position}].Chip"),
                )
            )
        reading.expected_hashrate_ths = round(nominal * MHS_TO_THS, 9) if nominal else None
        rpms = [
            checks.rpm(f.get("RPM"), f"FANS[{n}].RPM")
            for n, f in enumerate(section(replies.get("fans"), "FANS"))
        ]
        values = [r for r in rpms if r is not None]
        reading.fans_rpm = [r for r in values if r > 0] or values
        devdetails = first(replies.get("devdetails"), "DEVDETAILS")
        reading.wire_model = to_str(devdetails.get("Model"))
        return reading

"""Auradine Teraflux on GCMiner / FluxOS: a cgminer-style API on 4028 plus Auradine's own commands.

Units and shapes (captures auradine/gcminer_*.json): `summary` and `devs` in MH/s (`MHS 5s`, `MHS av`);
`devs` has one ASICBoard per hashboard with its own `Temperature`; `temperature` lists, per board
(`Name` "Hash Board N", the control board apart), `BoardTemp` and `ChipTemp` sensor arrays; `fan` has one
`Speed` per chassis fan; `psu` writes its values with their unit (`"PowerIn": "58.94W"`); `mode` says
whether the machine sleeps (`"Sleep": "on"`). Hashrate is `summary` `MHS 5s`, the figure FluxOS shows
and the one that agrees with the sum of the boards. The `mode` target (`Ths`) is a tuning setting, not
a nominal figure, so it does not become the expected hashrate.
"""

from __future__ import annotations

from typing import Any, ClassVar

from collectors.drivers.base import Driver, Reading, cgminer_pools
from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.models import ModelSpec
from collectors.sample import Board
from collectors.wire import Checks, first, section, to_float, to_int, to_str

MHS_TO_THS = 1e-6


def with_unit(value: object, unit: str) -> float | None:
    """A number written with its unit (`"58.94W"`, `"4052.00 RPM"`); None when it is not one."""
    text = to_str(value)
    if text is None:
        return to_float(value)
    if text.upper().endswith(unit.upper()):
        text = text[: -len(unit)]
    return to_float(text)


def _sensor_values(value: object, name: str, checks: Checks) -> list[float]:
    """The real readings of an Auradine sensor array (`[{"ID": 0, "Temperature": 41.5}, ...]`)."""
    if not isinstance(value, list):
        return []
    readings = (
        checks.temperature(item.get("Temperature"), f"{name}[{i}].Temperature")
        for i, item in enumerate(value)
        if isinstance(item, dict)
    )
    return [r for r in readings if r is not None]


class AuradineDriver(Driver):
    """GCMiner/FluxOS replies -> one Reading."""

    dialect: ClassVar[Dialect] = Dialect.AURADINE
    # Auradine's own commands go in the same multi-command: one connection per poll where GCMiner joins
    # them, and the client falls back to one command per connection where it refuses.
    joinable: ClassVar[tuple[str, ...]] = ("summary", "devs", "pools", "temperature", "fan", "psu", "mode")
    required: ClassVar[tuple[str, ...]] = ("summary", "devs")

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        reading = Reading(pools=cgminer_pools(replies.get("pools")))
        summary = first(replies.get("summary"), "SUMMARY")
        devs = section(replies.get("devs"), "DEVS")
        checks = reading.checks
        hashrate = checks.first_rate(summary, ("MHS 5s", "MHS 1m", "MHS av"), MHS_TO_THS)
        reading.boards = self._boards(devs, section(replies.get("temperature"), "Temperature"), checks)
        if hashrate is None:
            rates = [b.hashrate_ths for b in reading.boards if b.hashrate_ths is not None]
            hashrate = round(sum(rates), 9) if rates else None
        reading.hashrate_ths = hashrate
        reading.uptime_s = to_int(summary.get("Elapsed"))
        fans = [
            checks.rpm(f.get("Speed"), f"Fan[{i}].Speed")
            for i, f in enumerate(section(replies.get("fan"), "Fan"))
        ]
        reading.fans_rpm = [f for f in fans if f is not None]
        psu = first(replies.get("psu"), "PSU")
        watts = checks.watts(summary.get("Wattage"), "Wattage")
        if watts is None:
            watts = checks.watts(with_unit(psu.get("PowerIn"), "W"), "PowerIn")
        reading.power_w = watts
        mode = first(replies.get("mode"), "Mode")
        reading.sleeping = str(mode.get("Sleep", "")).strip().lower() in ("on", "true", "yes")
        return reading

    @staticmethod
    def _boards(devs: list[dict[str, Any]], temps: list[dict[str, Any]], checks: Checks) -> list[Board]:
        """One board per `devs` ASICBoard, its sensors joined from `temperature` by ID."""
        by_id: dict[int, dict[str, Any]] = {}
        for record in temps:
            board_id = to_int(record.get("ID"))
            name = str(record.get("Name", "")).lower()
            if board_id is not None and "hash" in name:  # not the control board
                by_id[board_id] = record
        boards: list[Board] = []
        for position, dev in enumerate(devs):
            board_id = to_int(dev.get("ID"))
            sensors = by_id.get(board_id, {}) if board_id is not None else {}
            board_temps = _sensor_values(sensors.get("BoardTemp"), f"BoardTemp{board_id}", checks)
            chip_temps = _sensor_values(sensors.get("ChipTemp"), f"ChipTemp{board_id}", checks)
            rate = checks.rate(dev.get("MHS 5s"), f"DEVS[{position}].MHS 5s", MHS_TO_THS)
            boards.append(
                Board(
                    index=position,
                    hashrate_ths=rate,
                    temp_c=max(board_temps)
                    if board_temps
                    else checks.temperature(dev.get("Temperature"), f"DEVS[{position}].Temperature"),
                    chip_temp_c=max(chip_temps) if chip_temps else None,
                )
            )
        return boards

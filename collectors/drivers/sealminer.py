"""Bitdeer SealMiner on BDMiner (a cgminer 4.11 fork): everything of interest is in `stats`.

Units and shapes (captures sealminer/a2_*.json): hashrates are MH/s everywhere (`summary` `MHS 1m`;
`stats` `MHS(1m)`, `MHS(Sample)`, `MHS(Ideal)`, `MHS(Rated)`); per board N the `stats` record has
`N Chip Count`, `N MHS(Sample)`, `N Temp 0..3`, `N SN`, `N Online`; per fan N `N Speed` (`Fan Count`
of them, counted apart from the boards); `PSU Input Power` in watts; `Ctrl Board SN` and `MAC` name the
machine. Hashrate is `stats` `MHS(1m)`, measured at the chips (the boards' `MHS(Sample)` add up to it);
`summary`'s windows count accepted work and swing with share luck. Expected is `MHS(Rated)`, the
machine's own nameplate. The four `N Temp k` sensors are not labelled chip or board, so they are
board temperatures (their maximum).
"""

from __future__ import annotations

from typing import Any, ClassVar

from collectors.drivers.base import Driver, Reading, cgminer_pools
from collectors.framing import Reply
from collectors.identify import Dialect, Identity, with_brand
from collectors.models import ModelSpec
from collectors.sample import Board
from collectors.wire import first, pick, section, temperature, to_bool, to_float, to_int, to_str

MHS_TO_THS = 1e-6
MAX_SLOTS = 16
"""Board and fan slots looked at (`0 Chip Count` ... `15 Chip Count`)."""


def stats_record(reply: Reply | None) -> dict[str, Any]:
    """The BDMiner `stats` record (the one holding the machine's figures)."""
    for record in section(reply, "STATS"):
        if "Board Count" in record or "MHS(1m)" in record or "0 Chip Count" in record:
            return record
    return first(reply, "STATS")


class SealMinerDriver(Driver):
    """BDMiner replies -> one Reading."""

    dialect: ClassVar[Dialect] = Dialect.SEALMINER
    joinable: ClassVar[tuple[str, ...]] = ("summary", "stats", "pools")
    required: ClassVar[tuple[str, ...]] = ("summary", "stats")

    def parse(self, identity: Identity, replies: dict[str, Reply], spec: ModelSpec | None) -> Reading:
        reading = Reading(pools=cgminer_pools(replies.get("pools")))
        stats = stats_record(replies.get("stats"))
        summary = first(replies.get("summary"), "SUMMARY")
        mhs = to_float(pick(stats, "MHS(1m)", "MHS(Sample)", "MHS(Avg)"))
        if mhs is None:
            mhs = to_float(pick(summary, "MHS 1m", "MHS av", "MHS 5s"))
        reading.hashrate_ths = round(mhs * MHS_TO_THS, 9) if mhs is not None else None
        rated = to_float(pick(stats, "MHS(Rated)", "MHS(Ideal)"))
        reading.expected_hashrate_ths = round(rated * MHS_TO_THS, 9) if rated else None
        reading.uptime_s = to_int(pick(stats, "Elapsed")) or to_int(summary.get("Elapsed"))
        reading.boards = self._boards(stats)
        fan_count = to_int(stats.get("Fan Count"))
        slots = range(min(fan_count, MAX_SLOTS)) if fan_count is not None else range(MAX_SLOTS)
        fans = [to_int(stats.get(f"{i} Speed")) for i in slots if f"{i} Speed" in stats]
        reading.fans_rpm = [f for f in fans if f is not None]
        watts = to_float(stats.get("PSU Input Power"))
        reading.power_w = watts if watts else None
        reading.serial = to_str(stats.get("Ctrl Board SN"))
        reading.mac = to_str(stats.get("MAC"))
        # With the brand in front, as identification names it, so a model the table lacks ("A3") does
        # not look like a different machine at every poll.
        reading.wire_model = with_brand("SealMiner", to_str(stats.get("Model")))
        return reading

    @staticmethod
    def _boards(stats: dict[str, Any]) -> list[Board]:
        boards: list[Board] = []
        for slot in range(MAX_SLOTS):
            if f"{slot} Chip Count" not in stats and f"{slot} MHS(Sample)" not in stats:
                continue
            online = to_bool(stats.get(f"{slot} Online"))
            rate = to_float(stats.get(f"{slot} MHS(Sample)"))
            temps = [temperature(stats.get(f"{slot} Temp {k}")) for k in range(8)]
            known = [t for t in temps if t is not None]
            chips = to_int(stats.get(f"{slot} Chip Count"))
            boards.append(
                Board(
                    index=len(boards),
                    hashrate_ths=round(rate * MHS_TO_THS, 9) if rate is not None else None,
                    temp_c=max(known) if known else None,
                    chips=0 if online is False else chips,
                )
            )
        return boards

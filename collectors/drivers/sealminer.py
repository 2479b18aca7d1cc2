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
from collectors.wire import Checks, first, section, to_bool, to_int, to_str

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
        checks = reading.checks
        hashrate = checks.first_rate(stats, ("MHS(1m)", "MHS(Sample)", "MHS(Avg)"), MHS_TO_THS)
        if hashrate is None:
            hashrate = checks.first_rate(summary, ("MHS 1m", "MHS av", "MHS 5s"), MHS_TO_THS)
        reading.hashrate_ths = hashrate
        rated = checks.first_rate(stats, ("MHS(Rated)", "MHS(Ideal)"), MHS_TO_THS)
        reading.expected_hashrate_ths = rated or None
        reading.uptime_s = to_int(stats.get("Elapsed")) or to_int(summary.get("Elapsed"))
        reading.boards = self._boards(stats, checks)
        fan_count = to_int(stats.get("Fan Count"))
        slots = range(min(fan_count, MAX_SLOTS)) if fan_count is not None else range(MAX_SLOTS)
        fans = [checks.rpm(stats.get(f"{i} Speed"), f"{i} Speed") for i in slots if f"{i} Speed" in stats]
        reading.fans_rpm = [f for f in fans if f is not None]
        reading.power_w = checks.watts(stats.get("PSU Input Power"), "PSU Input Power")
        reading.serial = to_str(stats.get("Ctrl Board SN"))
        reading.mac = to_str(stats.get("MAC"))
        # With the brand in front, as identification names it, so a model the table lacks ("A3") does
        # not look like a different machine at every poll.
        reading.wire_model = with_brand("SealMiner", to_str(stats.get("Model")))
        return reading

    @staticmethod
    def _boards(stats: dict[str, Any], checks: Checks) -> list[Board]:
        boards: list[Board] = []
        for slot in range(MAX_SLOTS):
            if f"{slot} Chip Count" not in stats and f"{slot} MHS(Sample)" not in stats:
                continue
            online = to_bool(stats.get(f"{slot} Online"))
            rate = checks.rate(stats.get(f"{slot} MHS(Sample)"), f"{slot} MHS(Sample)", MHS_TO_THS)
            temps = [checks.temperature(stats.get(f"{slot} Temp {k}"), f"{slot} Temp {k}") for k in range(8)]
            known = [t for t in temps if t is not None]
            chips = to_int(stats.get(f"{slot} Chip Count"))
            boards.append(
                Board(
                    index=len(boards),
                    hashrate_ths=rate,
                    temp_c=max(known) if known else None,
                    chips=0 if online is False else chips,
                )
            )
        return boards

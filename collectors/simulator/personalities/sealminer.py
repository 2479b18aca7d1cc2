"""Bitdeer SealMiner on BDMiner 4.11 (a cgminer fork): version, summary, stats and pools on 4028.

Every reply is a patched copy of the SealMiner A2 captures (sealminer/a2_*.json): MH/s everywhere,
one flat `stats` record whose keys are sorted and numbered per board (`0 Chip Count`, `0 MHS(Sample)`,
`0 Temp 0`..`0 Temp 3`, `0 SN`, `0 Online`) and per fan (`0 Speed`, `0 PWM`; `Fan Count` of them),
the machine's `Model` ("A2"), `Ctrl Board SN` and `MAC`, the PSU's `PSU Input Power`. The firmware
names itself in every STATUS Description ("bdminer 4.11.1") and in VERSION (`BDMiner`). It answers
multi-commands part by part, as cgminer does. There is no `devdetails` capture, so it is refused as an
invalid command, as the capture set answers it.
"""

from __future__ import annotations

from collectors.simulator.device import SimDevice, SimState
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.antminer import Handler, StockAntminer
from collectors.simulator.personalities.base import HttpRequest, HttpResponse
from collectors.simulator.personalities.http_reply import landing_page
from collectors.simulator.personalities.template_store import fill, first, stamp, template

Json = cg.Json


class SealMinerPersonality(StockAntminer):
    """BDMiner firmware on a SealMiner."""

    accepts_multi = True
    glue_stats = False
    denied: frozenset[str] = frozenset()

    def describe(self, dev: SimDevice) -> str:
        """STATUS Description: "bdminer 4.11.1"."""
        return f"bdminer {dev.firmware_version}"

    def handlers(self) -> dict[str, Handler]:
        """Command name -> reply builder."""
        return {"version": self.version, "summary": self.summary, "stats": self.stats, "pools": self.pools}

    def version(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`version`: API 3.7 and `BDMiner`."""
        reply = template("sealminer/a2_version.json")
        first(reply, "VERSION")["BDMiner"] = dev.firmware_version
        return stamp(reply, self.describe(dev), now)

    def summary(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`summary` in MH/s."""
        reply = template("sealminer/a2_summary.json")
        mhs = dev.hashrate_ths * 1e6 if dev.mining else 0.0
        accepted = sum(p.accepted for p in dev.pools)
        rejected = sum(p.rejected for p in dev.pools)
        elapsed = dev.uptime_s(now)
        first(reply, "SUMMARY").update(
            {
                "Accepted": accepted,
                "Rejected": rejected,
                "Elapsed": elapsed,
                "Hardware Errors": sum(b.hw_errors for b in dev.boards),
                "Last getwork": int(now),
                "MHS 5s": round(mhs, 2),
                "MHS 1m": round(mhs, 2),
                "MHS 5m": round(mhs, 2),
                "MHS 15m": round(mhs, 2),
                "MHS av": round(mhs, 2),
                "Total MH": round(mhs * elapsed, 1),
            }
        )
        return stamp(reply, self.describe(dev), now)

    def stats(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`stats`: the capture's machine-wide keys, with the per-board and per-fan keys rebuilt."""
        reply = template("sealminer/a2_stats.json")
        record = first(reply, "STATS")
        flat = {k: v for k, v in record.items() if not k[:1].isdigit()}
        mining = dev.mining
        mhs = dev.hashrate_ths * 1e6 if mining else 0.0
        rated = dev.spec.nominal_ths * 1e6
        for b in dev.boards:
            n = b.index
            share = rated * b.share
            pcb = round(b.temp_pcb_c)
            flat.update(
                {
                    f"{n} Bad Chip Count": 0,
                    f"{n} Chip Count": b.chips,
                    f"{n} Freq": 346 if b.alive else 0,
                    f"{n} MHS(Ideal)": round(share),
                    f"{n} MHS(Sample)": round(b.hashrate_ths * 1e6, 6),
                    f"{n} Online": b.alive,
                    f"{n} SN": f"S1246{dev.serial[5:]}{n}"[:16],
                    f"{n} Temp 0": pcb - 14,
                    f"{n} Temp 1": pcb - 17,
                    f"{n} Temp 2": pcb,
                    f"{n} Temp 3": pcb - 1,
                    f"{n} Tune Status": "Fine Tuning Done" if mining else "Stopped",
                }
            )
        for i, rpm in enumerate(dev.fans_rpm):
            flat.update({f"{i} PWM": 112, f"{i} Speed": rpm})
        flat.update(
            {
                "Board Count": len(dev.boards),
                "Chip Count": sum(b.chips for b in dev.boards),
                "Ctrl Board SN": dev.serial,
                "Elapsed": dev.uptime_s(now),
                "Fan Count": len(dev.fans_rpm),
                "IP": dev.ip,
                "MAC": dev.mac.lower(),
                "Model": dev.spec.wire_type,
                "PM State": "Running" if mining else "Stopped",
                "PSU Input Power": int(dev.power_w),
                "Software Version": f"{dev.firmware_version}-08690-gd309fbe0",
                "System Uptime": dev.uptime_s(now) + 262,
                "Temp": max((round(b.temp_pcb_c) for b in dev.boards), default=0),
            }
        )
        for key in ("MHS(15m)", "MHS(1m)", "MHS(2m)", "MHS(30m)", "MHS(30s)", "MHS(5m)", "MHS(Sample)"):
            flat[key] = round(mhs, 6)
        flat["MHS(Avg)"] = round(mhs, 6)
        flat["MHS(Ideal)"] = round(rated * 0.96)
        flat["MHS(Rated)"] = round(rated, 5)
        reply["STATS"] = [dict(sorted(flat.items()))]
        return stamp(reply, self.describe(dev), now)

    def pools(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`pools` in the capture's shape."""
        reply = template("sealminer/a2_pools.json")
        items: list[Json] = []
        for index, pool in enumerate(dev.pools):
            active = pool.active and pool.alive
            items.append(
                {
                    "Accepted": pool.accepted,
                    "POOL": index,
                    "Priority": pool.priority,
                    "Rejected": pool.rejected,
                    "Status": "Alive" if pool.alive else "Dead",
                    "Stratum Active": active,
                    "Stratum URL": pool.url.split("://", 1)[-1].rsplit(":", 1)[0] if active else "",
                    "URL": pool.url,
                    "User": pool.user,
                }
            )
        count = fill(reply, "POOLS", items)
        return stamp(reply, self.describe(dev), now, f"{count} Pool(s)")

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """The web UI's page shell (an AmazeUI page, the marker asic-rs looks for)."""
        state = "sleeping" if dev.state is SimState.SLEEPING else "running"
        return landing_page(
            request,
            "<!doctype html><html><head><title>SEALMINER</title>"
            "<link rel='stylesheet' href='/css/amazeui.min.css'></head>"
            f"<body><div id='app' data-state='{state}'></div></body></html>",
        )

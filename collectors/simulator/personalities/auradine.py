"""Auradine Teraflux on GCMiner / FluxOS: the cgminer-style API on 4028 plus Auradine's own commands.

Every reply is a patched copy of the GCMiner captures (auradine/gcminer_*.json): MH/s in `summary` and
`devs` (one ASICBoard per hashboard, IDs from 1), `temperature` with the control board (ID 0) and one
record per hash board holding `BoardTemp` (5 sensors) and `ChipTemp` (3) arrays, `fan` with
`Speed`/`Target`/`Max`, `psu` with values written with their unit (`"PowerIn": "58.94W"`), `mode` with
`Sleep` "on"/"off". The firmware names itself in VERSION (`GCMiner`) and in the STATUS Descriptions.
`devdetails` has no capture; it answers cgminer's standard DEVDETAILS with the `Model` ("AT1500") where
pyasic 0.79 and asic-rs both read an Auradine's model. Multi-commands are answered part by part.
"""

from __future__ import annotations

from collectors.simulator.device import BoardState, SimDevice, SimState
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.antminer import Handler, StockAntminer
from collectors.simulator.personalities.base import HttpRequest, HttpResponse
from collectors.simulator.personalities.http_reply import landing_page
from collectors.simulator.personalities.template_store import fill, first, stamp, template

Json = cg.Json
FAN_MAX_RPM = 7700


class AuradinePersonality(StockAntminer):
    """GCMiner/FluxOS firmware on an Auradine Teraflux."""

    accepts_multi = True
    glue_stats = False
    denied: frozenset[str] = frozenset()

    def describe(self, dev: SimDevice) -> str:
        """STATUS Description: "GCMiner-2023-05.24-0ce5e7cc"."""
        return f"GCMiner-{dev.firmware_version}"

    def handlers(self) -> dict[str, Handler]:
        """Command name -> reply builder."""
        return {
            "version": self.version,
            "devdetails": self.devdetails,
            "summary": self.summary,
            "devs": self.devs,
            "pools": self.pools,
            "fan": self.fan,
            "temperature": self.temperature,
            "psu": self.psu,
            "mode": self.mode,
        }

    def version(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`version`: API 1.0 and `GCMiner`."""
        reply = template("auradine/gcminer_version.json")
        first(reply, "VERSION")["GCMiner"] = dev.firmware_version
        return stamp(reply, self.describe(dev), now)

    def devdetails(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devdetails` (no capture; cgminer's standard fields, the model in `Model`)."""
        items = [cg.devdetails_item(b.index, "ASICBoard", dev.spec.wire_type) for b in dev.boards]
        return cg.envelope("DEVDETAILS", items, cg.CODE_DEVDETAILS, "Device Details", self.describe(dev), now)

    def summary(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`summary` in MH/s."""
        reply = template("auradine/gcminer_summary.json")
        mhs = dev.hashrate_ths * 1e6 if dev.mining else 0.0
        elapsed = dev.uptime_s(now)
        first(reply, "SUMMARY").update(
            {
                "Accepted": sum(p.accepted for p in dev.pools),
                "Rejected": sum(p.rejected for p in dev.pools),
                "Elapsed": elapsed,
                "Hardware Errors": sum(b.hw_errors for b in dev.boards),
                "MHS 5s": mhs,
                "MHS 1m": mhs,
                "MHS 5m": mhs,
                "MHS 15m": mhs,
                "MHS av": mhs,
                "Total MH": round(mhs * elapsed),
            }
        )
        return stamp(reply, self.describe(dev), now)

    def devs(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devs`: one ASICBoard per hashboard, IDs from 1."""
        reply = template("auradine/gcminer_devs.json")
        count = fill(reply, "DEVS", (self._board(b) for b in dev.boards))
        return stamp(reply, self.describe(dev), now, f"{count} Dev(s)")

    @staticmethod
    def _board(b: BoardState) -> Json:
        return {
            "DEV": b.index + 1,
            "ID": b.index + 1,
            "MHS 5s": round(b.hashrate_ths * 1e6, 1),
            "Status": "Alive" if b.alive else "Dead",
            "Temperature": round(b.temp_pcb_c - 15.0, 2),
        }

    def pools(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`pools` in the capture's shape."""
        reply = template("auradine/gcminer_pools.json")
        items: list[Json] = [
            {
                "Accepted": pool.accepted,
                "POOL": index,
                "Priority": pool.priority,
                "Rejected": pool.rejected,
                "Status": "Alive" if pool.alive else "Dead",
                "Stratum Active": pool.active and pool.alive,
                "URL": pool.url,
                "User": pool.user,
            }
            for index, pool in enumerate(dev.pools)
        ]
        count = fill(reply, "POOLS", items)
        return stamp(reply, self.describe(dev), now, f"{count} Pool(s)")

    def fan(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`fan`: one record per chassis fan."""
        reply = template("auradine/gcminer_fan.json")
        target = 7000 if dev.state is SimState.OVERHEATING else 4200
        items = [
            {"ID": i + 1, "Max": FAN_MAX_RPM, "Speed": rpm, "Target": target}
            for i, rpm in enumerate(dev.fans_rpm)
        ]
        reply["Fan"] = items
        return stamp(reply, self.describe(dev), now, f"Total fans: {len(items)}")

    def temperature(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`temperature`: the control board, then each hash board's board and chip sensors."""
        reply = template("auradine/gcminer_temperature.json")
        items: list[Json] = [
            {
                "BoardTemp": [{"ID": 0, "Temperature": round(dev.env_temp_c + 1.0, 4)}],
                "ChipTemp": None,
                "ID": 0,
                "Name": "Control Board",
            }
        ]
        for b in dev.boards:
            pcb, cold = round(b.temp_pcb_c, 2), round(dev.env_temp_c - 2.0, 2)
            items.append(
                {
                    "BoardTemp": [
                        {"ID": i, "Temperature": t}
                        for i, t in enumerate((cold, cold - 1, cold + 1, pcb, pcb - 1))
                    ],
                    "ChipTemp": [{"ID": i, "Temperature": round(b.temp_chip_c - i, 6)} for i in range(3)],
                    "ID": b.index + 1,
                    "Name": f"Hash Board {b.index + 1}",
                }
            )
        reply["Temperature"] = items
        return stamp(reply, self.describe(dev), now)

    def psu(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`psu`: values written with their units, as GCMiner prints them."""
        reply = template("auradine/gcminer_psu.json")
        watts_in = dev.power_w
        watts_out = watts_in * 0.95 if dev.mining else 0.0
        first(reply, "PSU").update(
            {
                "Iin": f"{watts_in / 245.0:.2f}A",
                "Iout": f"{watts_out / 11.53:.2f}A",
                "PowerIn": f"{watts_in:.2f}W",
                "PowerOut": f"{watts_out:.2f}W",
            }
        )
        return stamp(reply, self.describe(dev), now)

    def mode(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`mode`: the operating target and whether the machine sleeps."""
        reply = template("auradine/gcminer_mode.json")
        sleeping = dev.state is SimState.SLEEPING
        first(reply, "Mode").update(
            {
                "Mode": "normal",
                "Power": int(dev.spec.power_w),
                "Sleep": "on" if sleeping else "off",
                "Ths": int(dev.spec.nominal_ths),
            }
        )
        msg = f"Operating mode: 'normal', sleep: '{'true' if sleeping else 'false'}'"
        return stamp(reply, self.describe(dev), now, msg)

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """FluxOS's web UI page shell."""
        return landing_page(
            request,
            "<!doctype html><html><head><title>FluxOS</title></head>"
            "<body><div id='root'></div></body></html>",
        )

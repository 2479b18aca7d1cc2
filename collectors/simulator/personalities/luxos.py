"""LuxOS (LUXminer) on Antminer hardware: bmminer-compatible API plus LuxOS's own commands.

Every reply is a patched copy of the S19k Pro LuxOS 2025.4.8 captures (luxos/s19kpro_*.json): GH/s in
stats/summary like stock, MH/s per board in devs, the `Long Pool` typo key in pools, `config` with
`MACAddr`/`SerialNumber`/`RedLed`, `power` with `Watts`, `fans` with `FANCTRL`, `temps` with the
four-corner METADATA. Unlike stock, LUXminer accepts multi-commands and answers `devdetails`.
"""

from __future__ import annotations

from collectors.simulator.device import BoardState, SimDevice, SimState
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.antminer import Handler, StockAntminer, chip_string, miner_id
from collectors.simulator.personalities.base import HttpRequest, HttpResponse
from collectors.simulator.personalities.http_reply import landing_page
from collectors.simulator.personalities.template_store import fill, first, stamp, template

Json = cg.Json


class LuxOS(StockAntminer):
    """LUXminer firmware."""

    accepts_multi = True
    glue_stats = False
    denied: frozenset[str] = frozenset()

    def describe(self, dev: SimDevice) -> str:
        """STATUS Description: "LUXminer 2025.4.8.220305-57b389c7"."""
        return f"LUXminer {dev.firmware_version}"

    def handlers(self) -> dict[str, Handler]:
        """Command name -> reply builder: stock's commands, then LuxOS's own."""
        return {
            **super().handlers(),
            "devdetails": self.devdetails,
            "config": self.config,
            "power": self.power,
            "fans": self.fans,
            "temps": self.temps,
            "profiles": self.profiles,
            "events": self.events,
            "groups": self.groups,
            "tempctrl": self.tempctrl,
        }

    def _miner(self, dev: SimDevice) -> str:
        return dev.firmware_version.split("-", 1)[0]

    def version(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`version` with `LUXminer` and `Type`."""
        reply = template("luxos/s19kpro_version.json")
        first(reply, "VERSION").update(
            {"LUXminer": dev.firmware_version, "Miner": self._miner(dev), "Type": dev.spec.wire_type}
        )
        return stamp(reply, self.describe(dev), now)

    def stats(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`stats`: stock's chain table with LuxOS's float temps and freqs."""
        reply = template("luxos/s19kpro_stats.json")
        head, body = reply["STATS"] if isinstance(reply["STATS"], list) else ([], [])
        assert isinstance(head, dict) and isinstance(body, dict)
        head.update({"Miner": self._miner(dev), "Type": dev.spec.wire_type})
        stock = self.stats_body(dev, now)
        for key in list(body):
            if key in stock:
                value = stock[key]
                template_value = body[key]
                body[key] = (
                    float(value) if isinstance(template_value, float) and isinstance(value, int) else value
                )
        for b in dev.boards:
            n = b.index + 1
            temp = float(round(b.temp_pcb_c))
            body[f"temp{n}"] = temp
            body[f"temp2_{n}"] = temp
            body[f"chain_acs{n}"] = chip_string(b.chips, "o" if dev.mining else "x")
            if b.alive:  # LuxOS's four sensors: exhaust, intake, intake, exhaust ("47-34-34-47")
                cold = round(dev.env_temp_c + 8)
                for key in ("temp_chip", "temp_pcb", "temp_pic"):
                    body[f"{key}{n}"] = f"{int(temp)}-{cold}-{cold}-{int(temp)}"
        body["temp_max"] = max((float(round(b.temp_pcb_c)) for b in dev.boards), default=0.0)
        for slot in range(1, 5):  # LuxOS writes "0" where stock leaves an empty slot's rate ""
            if body.get(f"chain_rate{slot}") == "":
                body[f"chain_rate{slot}"] = "0"
        body["total_acn"] = sum(1 for b in dev.boards if b.alive) + 1
        body["miner_id"] = miner_id(dev)[:12]
        body["miner_version"] = self._miner(dev)
        return stamp(reply, self.describe(dev), now)

    def summary(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`summary` in GH/s with LuxOS's extra windows."""
        reply = template("luxos/s19kpro_summary.json")
        s = first(reply, "SUMMARY")
        stock = self.summary_body(dev, now)
        ghs = float(stock["GHS 5s"]) if isinstance(stock["GHS 5s"], float) else 0.0
        avg = float(stock["GHS av"]) if isinstance(stock["GHS av"], float) else 0.0
        accepted = int(stock["Accepted"]) if isinstance(stock["Accepted"], int) else 0
        diff = dev.pools[0].difficulty if dev.pools else 32768.0
        s.update(
            {
                "Accepted": accepted,
                "Rejected": stock["Rejected"],
                "Elapsed": stock["Elapsed"],
                "GHS 5s": ghs,
                "GHS 1m": round(ghs * 1.002, 2),
                "GHS 5m": avg,
                "GHS 15m": avg,
                "GHS 30m": avg,
                "GHS 24h": round(avg * min(1.0, dev.uptime_s(now) / 86_400.0), 2),
                "GHS av": avg,
                "Hardware Errors": stock["Hardware Errors"],
                "Difficulty Accepted": int(accepted * diff),
                "Last getwork": int(now),
                "Total MH": avg * 1000.0 * dev.uptime_s(now),
            }
        )
        return stamp(reply, self.describe(dev), now)

    def pools(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`pools` with LuxOS's `Long Pool` typo and `GROUP`."""
        reply = template("luxos/s19kpro_pools.json")
        count = fill(reply, "POOLS", (self._pool(dev, i) for i in range(len(dev.pools))))
        return stamp(reply, self.describe(dev), now, f"{count} Pool(s)")

    def _pool(self, dev: SimDevice, index: int) -> Json:
        pool = dev.pools[index]
        active = pool.active and pool.alive
        return {
            "POOL": index,
            "GROUP": 0,
            "URL": pool.url,
            "User": pool.user,
            "Status": "Alive" if pool.alive else "Dead",
            "Priority": pool.priority,
            "Accepted": pool.accepted,
            "Rejected": pool.rejected,
            "Stratum Active": active,
            "Stratum URL": pool.url.split("://", 1)[-1],
            "Difficulty Accepted": int(pool.accepted * pool.difficulty),
            "Diff": f"{pool.difficulty / 1024:.0f}K" if active else "0",
            "Stratum Difficulty": int(pool.difficulty) if active else 0,
            "Work Difficulty": int(pool.difficulty) if active else 0,
            "Last Share Time": "00:00:01" if active else "00:57:33",
        }

    def devs(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devs`: one ASC per board, MH/s, with the board serial."""
        reply = template("luxos/s19kpro_devs.json")
        count = fill(reply, "DEVS", (self._asc(dev, b, now) for b in dev.boards))
        return stamp(reply, self.describe(dev), now, f"{count} ASC(s)")

    def _asc(self, dev: SimDevice, b: BoardState, now: float) -> Json:
        mhs = b.hashrate_ths * 1e6
        return {
            "ASC": b.index,
            "ID": b.index,
            "Connector": f"J{b.index + 7}",
            "Device Elapsed": dev.uptime_s(now),
            "MHS 5s": mhs,
            "MHS 1m": mhs,
            "MHS 5m": mhs,
            "MHS 15m": mhs,
            "MHS 30m": mhs,
            "MHS 60m": mhs,
            "MHS av": mhs,
            "Total MH": mhs,
            "Nominal MHS": dev.spec.nominal_ths * 1e6 * b.share,
            "Status": "Alive" if b.alive else "Dead",
            "Temperature": float(round(b.temp_pcb_c)),
            "SerialNumber": f"{dev.serial[:9]}{b.index}{dev.serial[-7:]}",
            "Last Share Time": int(now),
            "Last Valid Work": int(now),
            "IsUserShutdown": dev.state is SimState.SLEEPING,
        }

    def devdetails(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devdetails` (no capture; cgminer's standard DEVDETAILS fields)."""
        items = [cg.devdetails_item(b.index, "luxminer", dev.spec.wire_type) for b in dev.boards]
        return cg.envelope("DEVDETAILS", items, cg.CODE_DEVDETAILS, "Device Details", self.describe(dev), now)

    def config(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`config`: identity, LEDs, profile."""
        reply = template("luxos/s19kpro_config.json")
        first(reply, "CONFIG").update(
            {
                "ASC Count": len(dev.boards),
                "Hostname": dev.hostname,
                "IPAddr": dev.ip,
                "MACAddr": dev.mac.lower(),
                "Model": dev.spec.wire_type,
                "NameplateTHS": dev.spec.nominal_ths,
                "SerialNumber": dev.serial,
                "Pool Count": len(dev.pools),
                "SystemStatus": "Sleeping" if dev.state is SimState.SLEEPING else "Normal",
            }
        )
        return stamp(reply, self.describe(dev), now)

    def power(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`power`: wall watts."""
        reply = template("luxos/s19kpro_power.json")
        first(reply, "POWER")["Watts"] = int(dev.power_w)
        return stamp(reply, self.describe(dev), now)

    def fans(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`fans`."""
        reply = template("luxos/s19kpro_fans.json")
        speed = 100 if dev.state is SimState.OVERHEATING else 20
        reply["FANS"] = [
            {"FAN": f"FAN{i + 1}", "ID": i, "RPM": rpm, "Speed": speed} for i, rpm in enumerate(dev.fans_rpm)
        ]
        return stamp(reply, self.describe(dev), now, f"{len(dev.fans_rpm)} Fan(s)")

    def temps(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`temps`: four corners per board."""
        reply = template("luxos/s19kpro_temps.json")
        items: list[Json] = []
        for b in dev.boards:
            hot, cold = float(round(b.temp_pcb_c)), float(round(dev.env_temp_c + 8))
            items.append(
                {
                    "BottomLeft": hot,
                    "BottomRight": cold,
                    "ID": b.index,
                    "TEMP": b.index,
                    "TopLeft": hot,
                    "TopRight": cold,
                }
            )
        reply["TEMPS"] = items
        return stamp(reply, self.describe(dev), now, f"{len(items)} Temp(s)")

    def profiles(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`profiles`: the captured ladder, scaled to the model's nominal hashrate and power."""
        reply = template("luxos/s19kpro_profiles.json")
        items = reply["PROFILES"] if isinstance(reply["PROFILES"], list) else []
        scale_h = dev.spec.nominal_ths / 120.0
        scale_w = dev.spec.power_w / 2760.0
        for item in items:
            if isinstance(item, dict):
                h, w = item.get("Hashrate"), item.get("Watts")
                if isinstance(h, float | int):
                    item["Hashrate"] = round(float(h) * scale_h, 1)
                if isinstance(w, int):
                    item["Watts"] = int(w * scale_w)
        return stamp(reply, self.describe(dev), now)

    def events(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`events`: the captured event list while a board is down, else none."""
        reply = template("luxos/s19kpro_events.json")
        if dev.state is not SimState.DEAD_BOARD:
            reply["EVENTS"] = []
        return stamp(reply, self.describe(dev), now)

    def groups(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`groups`: the pool groups (no capture; field names as pyasic reads them)."""
        item: Json = {
            "GROUP": 0,
            "Name": "Default",
            "Quota": 1,
            "Strategy": "Failover",
            "Pools": len(dev.pools),
        }
        return cg.envelope("GROUPS", [item], 355, "Pool groups", self.describe(dev), now)

    def tempctrl(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`tempctrl`: temperature control targets (no capture; field names as pyasic reads them)."""
        item: Json = {"Cutoff": 95.0, "Dangerous": 90.0, "Hot": 80.0, "Mode": "Auto", "Target": 70.0}
        return cg.envelope("TEMPCTRL", [item], 360, "Temperature control", self.describe(dev), now)

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """LuxOS's web UI landing page."""
        return landing_page(
            request,
            "<!doctype html><html><head><title>Luxor Firmware</title></head>"
            "<body><div id='app'>Luxor Firmware - LuxOS</div></body></html>",
        )

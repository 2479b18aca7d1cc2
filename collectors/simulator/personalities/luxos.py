"""LuxOS (LUXminer) on Antminer hardware: bmminer-compatible API plus LuxOS's own commands.

Every reply is a patched copy of the S19k Pro LuxOS 2025.4.8 captures (luxos/s19kpro_*.json): GH/s in
stats/summary like stock, MH/s per board in devs, the `Long Pool` typo key in pools, `config` with
`MACAddr`/`SerialNumber`/`RedLed`, `power` with `Watts`, `fans` with `FANCTRL`, `temps` with the
four-corner METADATA. Unlike stock, LUXminer accepts multi-commands and answers `devdetails`.

Operator actions (issue 19), with the commands and parameters pyasic 0.79's LUXminer client sends:
`session` (the open session's `SessionID`, "" when none) and `logon` (opens one) in a `SESSION` section;
then privileged commands whose first parameter is that session id: `curtail|<id>,sleep` / `,wakeup`,
`ledset|<id>,red,blink|on|off` (shown as `RedLed` in `config`), `rebootdevice|<id>` and
`profileset|<id>,<profile name>` (the profile's watts become the device's power target; `config`'s
`Profile` names it). No capture of these answers exists: they are cgminer `S` envelopes, and a wrong
session an `E` one.
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
            "session": self.session,
            "logon": self.logon,
            "curtail": self.curtail,
            "ledset": self.ledset,
            "rebootdevice": self.rebootdevice,
            "profileset": self.profileset,
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
                "RedLed": "blink" if dev.locate else "auto",
            }
        )
        profile = self._profile_at(dev, dev.power_limit_w) if dev.power_limit_w is not None else None
        if profile is not None:
            first(reply, "CONFIG")["Profile"] = profile
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

    # ---- actions ----------------------------------------------------------------------------------

    def _session_id(self, dev: SimDevice) -> str:
        return f"{(dev.seed * 2654435761) & 0xFFFFFFFF:08x}"

    def session(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`session`: the open session, "" when there is none."""
        item: Json = {"SessionID": dev.session or ""}
        return cg.envelope("SESSION", [item], 300, "Session", self.describe(dev), now)

    def logon(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`logon`: open a session (one at a time)."""
        if dev.session is not None:
            return cg.error(301, "Another session is active", self.describe(dev), now)
        dev.session = self._session_id(dev)
        item: Json = {"SessionID": dev.session}
        return cg.envelope("SESSION", [item], 300, "Session", self.describe(dev), now)

    def _privileged(self, dev: SimDevice, parameter: str | None, now: float) -> tuple[list[str], Json | None]:
        """The parameters after the session id, or the error reply for a wrong session."""
        parts = [p.strip() for p in (parameter or "").split(",")]
        if dev.session is None or parts[0] != dev.session:
            return [], cg.error(302, "Invalid session id", self.describe(dev), now)
        return parts[1:], None

    def _ok(self, dev: SimDevice, msg: str, now: float) -> Json:
        return {"STATUS": [cg.status("S", 303, msg, self.describe(dev), now)], "id": 1}

    def curtail(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`curtail|<id>,sleep|wakeup`."""
        args, error = self._privileged(dev, parameter, now)
        if error is not None:
            return error
        mode = args[0].lower() if args else ""
        if mode not in ("sleep", "wakeup"):
            return cg.error(304, f"Invalid curtail mode '{mode}'", self.describe(dev), now)
        dev.set_asleep(mode == "sleep")
        return self._ok(dev, f"Curtail {mode}", now)

    def ledset(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`ledset|<id>,red,blink|on|off`."""
        args, error = self._privileged(dev, parameter, now)
        if error is not None:
            return error
        if len(args) != 2 or args[0].lower() != "red" or args[1].lower() not in ("blink", "on", "off"):
            return cg.error(305, "Invalid LED parameters", self.describe(dev), now)
        dev.locate = args[1].lower() != "off"
        return self._ok(dev, "LED set", now)

    def rebootdevice(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`rebootdevice|<id>`: answer, then restart."""
        _, error = self._privileged(dev, parameter, now)
        if error is not None:
            return error
        dev.reboot_requested = True
        return self._ok(dev, "Rebooting", now)

    def _profile_watts(self, dev: SimDevice) -> dict[str, int]:
        items = self.profiles(dev, None, 0.0)["PROFILES"]
        found: dict[str, int] = {}
        for item in items if isinstance(items, list) else []:
            name, watts = item.get("Profile Name"), item.get("Watts")
            if isinstance(name, str) and isinstance(watts, int):
                found[name] = watts
        return found

    def _profile_at(self, dev: SimDevice, watts: float) -> str | None:
        return next((n for n, w in self._profile_watts(dev).items() if w == watts), None)

    def profileset(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`profileset|<id>,<profile>`: run at that profile's power."""
        args, error = self._privileged(dev, parameter, now)
        if error is not None:
            return error
        watts = self._profile_watts(dev).get(args[0] if args else "")
        if watts is None:
            return cg.error(306, "Invalid profile", self.describe(dev), now)
        dev.power_limit_w = float(watts)
        return self._ok(dev, f"Profile set to {args[0]}", now)

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """LuxOS's web UI landing page."""
        return landing_page(
            request,
            "<!doctype html><html><head><title>Luxor Firmware</title></head>"
            "<body><div id='app'>Luxor Firmware - LuxOS</div></body></html>",
        )

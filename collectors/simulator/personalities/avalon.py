"""Avalon (Canaan cgminer 4.11.x) on TCP 4028, and its web page.

Shapes, key order, value types and units come from the captures in
`tests/captures/device-responses/avalon/` (provenance in collectors/simulator/SOURCES.md):

- `version`: PROD "AvalonMiner <MODEL>", MODEL from the model table ("15-194", "1246-83"), MAC without
  colons (avalon1566_version.json).
- `stats`/`estats`: STATS[0] carries the `MM ID0` bracket string of `Key[value]` tokens, followed by one
  `POOLn` object per pool (avalon1566_estats.json, avalon1246_stats.json). The A15 line has two fans,
  `WALLPOWER`, `MVavg` and `EEPROM`; the A12/A13 line four fans, `ASICCRCn` and `POW_I2C`, no `WALLPOWER`.
  `litestats` is the same without the per-chip arrays (avalonq_litestats.json).
- `summary`/`devs` in MH/s (`MHS 30s`, `MHS 1m`); devs `Name` "AVA10", `Temperature` -273.0
  (avalon10xx_pools+summary+stats.json, avalon1566_devs.json). `When` counts seconds since boot, as
  both A10 and A15 captures show (the units had no wall clock yet).
- `ascset`: softoff/softon answer `I` 118 "success", led/worklevel/workmode `S` 119 "ASC 0 set OK"
  (avalonq_ascset_*.json). Soft-off puts the device to sleep: `SYSTEMSTATU[Work: In Idle ...]`,
  `SoftOFF[4]`, `MHS 1m` 0. `led,1-1`/`1-0` light the locate LED (`Led[1]` in the MM string, as the
  A9xx stats capture shows the token), `reboot,0` answers then restarts the controller.
"""

from __future__ import annotations

import random
import re

from collectors.simulator.device import BoardState, SimDevice, SimState
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.base import HttpRequest, HttpResponse, RpcRequest

Json = dict[str, object]

CODE_ASC_INFO = 118
CODE_ASC_OK = 119
CODE_ASC_FAILED = 120
DESCRIPTION = "cgminer 4.11.1"
MH_PER_TH = 1_000_000.0
GH_PER_TH = 1_000.0
_LITE_DROP = re.compile(r"^(PVT_T\d+|PVT_V\d+|MW\d+|ASICCRC\d+)$")
_ASC_HELP = (
    "ASC 0 set info: help|voltage|fan-spd|lcd|hash-sn-read|hash-sn-write|volt-tuning|workmode|worklevel|"
    "work_mode_lvl|reboot|softon|softoff|filter-clean|facopts|faclock|activate|solo-allowed|frequency|loop|"
    "password|qr_auth|time|"
)
_SUMMARY_KEYS = (
    "Elapsed", "MHS av", "MHS 30s", "MHS 1m", "MHS 5m", "MHS 15m", "Found Blocks", "Getworks", "Accepted",
    "Rejected", "Hardware Errors", "Utility", "Discarded", "Stale", "Get Failures", "Local Work",
    "Remote Failures", "Network Blocks", "Total MH", "Work Utility", "Difficulty Accepted",
    "Difficulty Rejected", "Difficulty Stale", "Best Share", "Device Hardware%", "Device Rejected%",
    "Pool Rejected%", "Pool Stale%", "Last getwork",
)  # fmt: skip


def is_a15(dev: SimDevice) -> bool:
    """True for the A15 line (MODEL "15-194"), whose MM string differs from the A12/A13 line."""
    return dev.spec.wire_type.startswith("15")


def firmware_tag(dev: SimDevice) -> str:
    """The VERSION string ("24102401_25462b2_9ddf522"), as the model table gives it."""
    return dev.firmware_version


def _board_ghs(dev: SimDevice, board: BoardState) -> tuple[float, float]:
    """(current, average) hashrate of one board in GH/s."""
    if not dev.mining or not board.alive:
        return 0.0, 0.0
    healthy = dev.spec.nominal_ths * board.share
    return board.hashrate_ths * GH_PER_TH, (0.2 * board.hashrate_ths + 0.8 * healthy) * GH_PER_TH


def _dna(dev: SimDevice) -> str:
    return f"0201{random.Random(dev.seed * 31 + 7).getrandbits(48):012x}"


def _mac_bare(dev: SimDevice) -> str:
    return dev.mac.replace(":", "").replace("-", "").lower()


def _nums(values: list[int] | list[float], fmt: str = "{}") -> str:
    return " ".join(fmt.format(v) for v in values)


class AvalonPersonality:
    """Canaan's cgminer 4.11.x. Stateless: every value comes from (and ascset writes to) the SimDevice."""

    def __init__(self, bare_nan: bool = False, leading_comma: bool = False) -> None:
        # Both quirks are real (avalon10xx_pools+summary+stats-2.raw.txt; pyasic's `,"id":1}` repair) but
        # break strict parsers, so they are opt-in per personality instance.
        self.bare_nan = bare_nan
        self.leading_comma = leading_comma

    # ---- port 4028 --------------------------------------------------------------------------------

    def rpc(self, dev: SimDevice, request: RpcRequest, now: float) -> bytes:
        """The full reply to a 4028 request, trailing NUL included."""
        if request.multi:
            parts = {name: self.reply(dev, name, None, now) for name in request.commands}
            return self._finish(cg.render_multi(parts))
        name = request.commands[0].lower() if request.commands else ""
        reply = self.reply(dev, name, request.parameter, now)
        if not request.as_json and isinstance(reply.get("STATUS"), list):
            return cg.finish(cg.render_text(reply))
        return self._finish(cg.dump(reply))

    def _finish(self, text: str) -> bytes:
        if self.bare_nan:
            text = text.replace('"MHS av":0.0,', '"MHS av":nan,')
        if self.leading_comma and text.startswith("{"):
            text = "," + text[1:]
        return cg.finish(text)

    def reply(self, dev: SimDevice, name: str, parameter: str | None, now: float) -> Json:
        """The reply object for one command."""
        when = dev.uptime_s(now)
        if name == "privileged":
            return cg.privileged(dev.api_write_open, DESCRIPTION, when)
        if name == "version":
            return cg.envelope(
                "VERSION", [self.version(dev)], cg.CODE_VERSION, "CGMiner versions", DESCRIPTION, when
            )
        if name in ("stats", "estats"):
            return cg.envelope(
                "STATS", self.stats(dev, now), cg.CODE_STATS, "CGMiner stats", DESCRIPTION, when
            )
        if name == "litestats":
            return cg.envelope(
                "STATS", self.stats(dev, now, lite=True), cg.CODE_STATS, "CGMiner stats", DESCRIPTION, when
            )
        if name == "summary":
            return cg.envelope(
                "SUMMARY", [self.summary(dev, now)], cg.CODE_SUMMARY, "Summary", DESCRIPTION, when
            )
        if name in ("devs", "edevs"):
            return cg.envelope("DEVS", [self.devs(dev, now)], cg.CODE_DEVS, "1 ASC(s)", DESCRIPTION, when)
        if name == "pools":
            pools = self.pools(dev, now)
            return cg.envelope("POOLS", pools, cg.CODE_POOLS, f"{len(pools)} Pool(s)", DESCRIPTION, when)
        if name == "devdetails":
            detail: Json = {
                "DEVDETAILS": 0, "Name": "AVA10", "ID": 0, "Driver": "avalon10", "Kernel": "", "Model": "",
                "Device Path": "",
            }  # fmt: skip
            return cg.envelope(
                "DEVDETAILS", [detail], cg.CODE_DEVDETAILS, "Device Details", DESCRIPTION, when
            )
        if name == "ascset":
            return self.ascset(dev, parameter or "", now)
        if name == "restart":
            return {"STATUS": "RESTART"}
        return cg.error(cg.CODE_INVALID, "Invalid command", DESCRIPTION, when)

    # ---- sections ------------------------------------------------------------------------------------

    def version(self, dev: SimDevice) -> Json:
        """VERSION[0]: PROD/MODEL identify the model; MAC has no colons."""
        return {
            "CGMiner": "4.11.1",
            "API": "3.7",
            "STM8": "20.08.01",
            "PROD": f"AvalonMiner {dev.spec.wire_type}",
            "MODEL": dev.spec.wire_type,
            "HWTYPE": "MM4v2_X3" if is_a15(dev) else "MM3v2_X3",
            "SWTYPE": "MM319" if is_a15(dev) else "MM314",
            "VERSION": firmware_tag(dev),
            "LOADER": "d0d779de.00",
            "DNA": _dna(dev),
            "MAC": _mac_bare(dev),
            "UPAPI": "2",
        }

    def mm_string(self, dev: SimDevice, now: float, lite: bool = False) -> str:
        """The `MM ID0` value: space-separated `Key[value]` tokens in the firmware's order."""
        a15 = is_a15(dev)
        rng = random.Random(dev.seed * 1_000_003 + int(now))
        uptime = dev.uptime_s(now)
        elapsed = max(0, uptime - 11)
        sleeping = dev.state is SimState.SLEEPING
        alive = [b for b in dev.boards if b.alive]
        ghs = [_board_ghs(dev, b) for b in dev.boards]
        spd = sum(g[0] for g in ghs)
        avg = sum(g[1] for g in ghs)
        nominal_ghs = dev.spec.nominal_ths * GH_PER_TH
        power = int(dev.power_w)
        tmax = [int(b.temp_chip_c + 4) if b.alive else 0 for b in dev.boards]
        tavg = [int(b.temp_chip_c - 4) if b.alive else 0 for b in dev.boards]
        fans = dev.fans_rpm or [0]
        fan_pct = min(100, int(max(fans) / 87)) if max(fans) else 0
        freq = 345.94 if a15 else 502.41
        sf = "300 318 339 360" if a15 else "472 492 512 532"
        n = len(dev.boards)
        work = "In Idle" if sleeping else "In Work"
        tokens: list[tuple[str, str]] = [
            ("Ver", f"{dev.spec.wire_type}-{firmware_tag(dev)}"),
            ("DNA", _dna(dev)),
            ("MEMFREE", "1392832.1381104" if a15 else "1201472.0"),
            ("NETFAIL", "0 0 0 0 0 0 0 0"),
            ("SYSTEMSTATU", f"Work: {work}, Hash Board: {len(alive)} "),
            ("Elapsed", str(elapsed)),
            ("BOOTBY", "0x04.00000000" if a15 else "0x08.00000000"),
            ("LW", str(elapsed * 730)),
            ("MH", _nums([0] * n)),
        ]
        if a15:
            tokens.append(("DHW", "0"))
        hw = sum(b.hw_errors for b in dev.boards)
        dh = 1.299 if dev.mining else 0.0
        tokens += [
            ("HW", str(hw)),
            ("DH", f"{dh:.3f}%"),
            ("Temp", str(round(dev.env_temp_c))),
            ("TMax", str(max(tmax, default=0))),
            ("TAvg", str(round(sum(tavg) / len(alive)) if alive else 0)),
        ]
        tokens += [(f"Fan{i + 1}", str(rpm)) for i, rpm in enumerate(fans)]
        tokens += [
            ("FanR", f"{fan_pct}%"),
            ("Vo", "296" if dev.mining else "0"),
            ("PS", _nums([0, 1209, 1187, power // 12, int(power * 0.945), 1188, power])),
        ]
        if a15:
            tokens.append(("WALLPOWER", str(power)))
        tokens += [
            (f"PLL{b.index}", _nums([rng.randrange(1500, 5000) for _ in range(3)] + [13703]))
            for b in dev.boards
        ]
        tokens += [
            ("GHSspd", f"{spd:.2f}"),
            ("DHspd", f"{dh:.3f}%"),
            ("GHSmm", f"{nominal_ghs:.2f}"),  # pyasic reads this as the expected hashrate
            ("GHSavg", f"{avg:.2f}"),
            ("WU", f"{avg * 13.97:.2f}"),
            ("Freq", f"{freq if dev.mining else 0.0:.2f}"),
            ("Led", "1" if dev.locate else "0"),
            ("MGHS", _nums([g[1] for g in ghs], "{:.2f}")),
            ("MTmax", _nums(tmax)),
            ("MTavg", _nums(tavg)),
        ]
        if a15:
            tokens.append(("MVavg", _nums([285.7 if b.alive else 0.0 for b in dev.boards], "{:.1f}")))
        tokens += [
            ("TA", str(dev.spec.chips_per_board * n)),
            ("Core", "A3197S" if a15 else "A3201"),
            ("PING", str(rng.randrange(100, 450))),
            ("POWS", "0"),
        ]
        if a15:
            tokens.append(("EEPROM", _nums([160] * n)))
        tokens += [
            ("HASHS", _nums([0 if b.alive else 1 for b in dev.boards])),
            ("POOLS", "0" if any(p.alive for p in dev.pools) else "1"),
            ("SoftOFF", "4" if sleeping else "0"),
            ("ECHU", _nums([0 if b.alive else 512 for b in dev.boards])),
            ("ECMM", "0"),
        ]
        tokens += [(f"SF{b.index}", sf) for b in dev.boards]
        chips = dev.spec.chips_per_board
        if not lite:
            for b in dev.boards:
                temps = [
                    max(0, int(b.temp_chip_c + rng.uniform(-6, 6))) if b.alive else 0 for _ in range(chips)
                ]
                tokens.append((f"PVT_T{b.index}", " " + _nums(temps, "{:3d}")))
            for b in dev.boards:
                volts = [rng.randrange(276, 296) if b.alive else 0 for _ in range(chips)]
                tokens.append((f"PVT_V{b.index}", _nums(volts)))
        tokens.append(("MW", _nums([elapsed * 244 if b.alive else 0 for b in dev.boards])))
        if not lite:
            for b in dev.boards:
                tokens.append(
                    (f"MW{b.index}", _nums([rng.randrange(10, 35) if b.alive else 0 for _ in range(chips)]))
                )
            if not a15:
                tokens += [(f"ASICCRC{b.index}", _nums([0] * chips)) for b in dev.boards]
        tokens.append(("CRC", _nums([0] * n)))
        if a15:
            tokens.append(("COMCRC", _nums([0] * n)))
        else:
            tokens.append(("POW_I2C", "OK"))
        opts = n if a15 else 2
        tokens += [(f"FACOPTS{i}", "") for i in range(opts)]
        level = 1188 if a15 else 55
        tokens += [
            (
                f"ATAOPTS{i}",
                f"--avalon10-freq {sf.replace(' ', ':')} --avalon10-voltage-level {level} "
                f"--hash-asic {chips}",
            )
            for i in range(opts)
        ]
        mpo = int(dev.spec.power_w * 1.03)
        tokens += [("ADJ", "1"), ("COP", _nums([0] * n)), ("MPO", str(mpo)), ("MVL", "87")]
        tokens += [(f"ATABD{b.index}", sf) for b in dev.boards]
        tokens.append(("WORKMODE", "1"))
        return " ".join(f"{k}[{v}]" for k, v in tokens)

    def stats(self, dev: SimDevice, now: float, lite: bool = False) -> list[Json]:
        """STATS: the AVA100 device object with `MM ID0`, then one object per pool."""
        elapsed = max(0, dev.uptime_s(now) - 11)
        head: Json = {
            "STATS": 0,
            "ID": "AVA100",
            "Elapsed": elapsed,
            "Calls": 0,
            "Wait": 0.0,
            "Max": 0.0,
            "Min": 99999999.0,
            "MM ID0": self.mm_string(dev, now, lite),
            "MM Count": 1,
            "Smart Speed": 1,
            "Voltage Level Offset": 0,
            "Nonce Mask": 25,
        }
        out = [head]
        for i, pool in enumerate(dev.pools):
            used = pool.active and pool.alive
            diff = float(pool.difficulty if used else 0.0)
            sent = pool.accepted + pool.rejected + 3
            out.append(
                {
                    "STATS": i + 1,
                    "ID": f"POOL{i}",
                    "Elapsed": elapsed,
                    "Calls": 0,
                    "Wait": 0.0,
                    "Max": 0.0,
                    "Min": 99999999.0,
                    "Pool Calls": 0,
                    "Pool Attempts": 0,
                    "Pool Wait": 0.0,
                    "Pool Max": 0.0,
                    "Pool Min": 99999999.0,
                    "Pool Av": 0.0,
                    "Work Had Roll Time": False,
                    "Work Can Roll": False,
                    "Work Had Expire": False,
                    "Work Roll Time": 0,
                    "Work Diff": diff,
                    "Min Diff": diff,
                    "Max Diff": diff,
                    "Min Diff Count": 2 if used else 0,
                    "Max Diff Count": pool.accepted if used else 0,
                    "Times Sent": sent,
                    "Bytes Sent": sent * 176,
                    "Times Recv": sent + elapsed // 30,
                    "Bytes Recv": (sent + elapsed // 30) * 347,
                    "Net Bytes Sent": sent * 176,
                    "Net Bytes Recv": (sent + elapsed // 30) * 347,
                }
            )
        return out

    def _rates_mhs(self, dev: SimDevice) -> tuple[float, float, float]:
        ghs = [_board_ghs(dev, b) for b in dev.boards]
        cur = sum(g[0] for g in ghs) * 1000.0
        avg = sum(g[1] for g in ghs) * 1000.0
        return cur, 0.3 * cur + 0.7 * avg, avg

    def summary(self, dev: SimDevice, now: float) -> Json:
        """SUMMARY[0]: cgminer 4.11 counters, hashrates in MH/s."""
        elapsed = max(0, dev.uptime_s(now) - 11)
        cur, one_min, avg = self._rates_mhs(dev)
        accepted = sum(p.accepted for p in dev.pools)
        rejected = sum(p.rejected for p in dev.pools)
        stale = sum(p.stale for p in dev.pools)
        diff = next((p.difficulty for p in dev.pools if p.active), 65536.0)
        values: Json = {
            "Elapsed": elapsed,
            "MHS av": round(avg, 2),
            "MHS 30s": round(cur, 2),
            "MHS 1m": round(one_min, 2),
            "MHS 5m": round((one_min + avg) / 2, 2),
            "MHS 15m": round(avg, 2),
            "Found Blocks": 0,
            "Getworks": elapsed // 12,
            "Accepted": accepted,
            "Rejected": rejected,
            "Hardware Errors": sum(b.hw_errors for b in dev.boards),
            "Utility": round(accepted * 60.0 / elapsed, 2) if elapsed else 0.0,
            "Discarded": elapsed * 23800,
            "Stale": stale,
            "Get Failures": 0,
            "Local Work": elapsed * 11,
            "Remote Failures": 0,
            "Network Blocks": elapsed // 600,
            "Total MH": round(avg * elapsed, 4),
            "Work Utility": round(avg / 72.0, 2),
            "Difficulty Accepted": float(accepted * diff),
            "Difficulty Rejected": float(rejected * diff),
            "Difficulty Stale": float(stale * diff),
            "Best Share": accepted * int(diff) * 2,
            "Device Hardware%": 0.0,
            "Device Rejected%": round(100.0 * rejected / (accepted + rejected), 4)
            if accepted + rejected
            else 0.0,
            "Pool Rejected%": round(100.0 * rejected / (accepted + rejected), 4)
            if accepted + rejected
            else 0.0,
            "Pool Stale%": 0.0,
            "Last getwork": 0,
        }
        return {k: values[k] for k in _SUMMARY_KEYS}

    def devs(self, dev: SimDevice, now: float) -> Json:
        """DEVS[0]: the whole unit as one ASC named AVA10; `Temperature` is the -273.0 sentinel."""
        elapsed = max(0, dev.uptime_s(now) - 11)
        cur, one_min, avg = self._rates_mhs(dev)
        accepted = sum(p.accepted for p in dev.pools)
        rejected = sum(p.rejected for p in dev.pools)
        diff = next((p.difficulty for p in dev.pools if p.active), 65536.0)
        return {
            "ASC": 0,
            "Name": "AVA10",
            "ID": 0,
            "Enabled": "Y",
            "Status": "Alive",
            "Temperature": -273.0,
            "MHS av": round(avg, 2),
            "MHS 30s": round(cur, 2),
            "MHS 1m": round(one_min, 2),
            "MHS 5m": round((one_min + avg) / 2, 2),
            "MHS 15m": round(avg, 2),
            "Accepted": accepted,
            "Rejected": rejected,
            "Hardware Errors": sum(b.hw_errors for b in dev.boards),
            "Utility": round(accepted * 60.0 / elapsed, 2) if elapsed else 0.0,
            "Last Share Pool": 0 if dev.mining else -1,
            "Last Share Time": max(0, elapsed - 3) if dev.mining else 0,
            "Total MH": round(avg * elapsed, 1),
            "Diff1 Work": int(accepted * diff * 1.07),
            "Difficulty Accepted": float(accepted * diff),
            "Difficulty Rejected": float(rejected * diff),
            "Last Share Difficulty": float(diff),
            "Last Valid Work": dev.uptime_s(now),
            "Device Hardware%": 0.0,
            "Device Rejected%": round(100.0 * rejected / (accepted + rejected), 4)
            if accepted + rejected
            else 0.0,
            "Device Elapsed": elapsed,
        }

    def pools(self, dev: SimDevice, now: float) -> list[Json]:
        """POOLS, numbered from 0, with `Has Vmask`."""
        elapsed = max(0, dev.uptime_s(now) - 11)
        out: list[Json] = []
        for i, pool in enumerate(dev.pools):
            used = pool.active and pool.alive
            diff = float(pool.difficulty if used else 0.0)
            host = pool.url.split("://", 1)[-1].rsplit(":", 1)[0]
            total = pool.accepted + pool.rejected
            out.append(
                {
                    "POOL": i,
                    "URL": pool.url,
                    "Status": "Alive" if pool.alive else "Dead",
                    "Priority": pool.priority,
                    "Quota": 1,
                    "Long Poll": "N",
                    "Getworks": elapsed // 36 if used else 1,
                    "Accepted": pool.accepted,
                    "Rejected": pool.rejected,
                    "Works": elapsed * 10 if used else 0,
                    "Discarded": 0,
                    "Stale": pool.stale,
                    "Get Failures": 0,
                    "Remote Failures": 0,
                    "User": pool.user,
                    "Last Share Time": max(0, elapsed - 3) if used else 0,
                    "Diff1 Shares": int(pool.accepted * pool.difficulty * 1.07) if used else 0,
                    "Proxy Type": "",
                    "Proxy": "",
                    "Difficulty Accepted": float(pool.accepted * pool.difficulty),
                    "Difficulty Rejected": float(pool.rejected * pool.difficulty),
                    "Difficulty Stale": float(pool.stale * pool.difficulty),
                    "Last Share Difficulty": diff,
                    "Work Difficulty": diff,
                    "Has Stratum": True,
                    "Stratum Active": used,
                    "Stratum URL": host,
                    "Stratum Difficulty": diff,
                    "Has Vmask": True,
                    "Has GBT": False,
                    "Best Share": pool.accepted * int(pool.difficulty) * 2,
                    "Pool Rejected%": round(100.0 * pool.rejected / total, 4) if total else 0.0,
                    "Pool Stale%": 0.0,
                    "Bad Work": pool.rejected * 2,
                    "Current Block Height": 925_000 + int(now - 1_760_000_000) // 600 if used else 0,
                    "Current Block Version": 536870912,
                }
            )
        return out

    # ---- control ---------------------------------------------------------------------------------------

    def ascset(self, dev: SimDevice, parameter: str, now: float) -> Json:
        """`ascset|0,<option>,<value>`: softoff/softon change the device's state."""
        when = dev.uptime_s(now)
        parts = parameter.split(",", 2)
        option = parts[1].strip().lower() if len(parts) > 1 else ""
        value = parts[2].strip() if len(parts) > 2 else ""
        if option in ("softoff", "softon"):
            stamp = value.split(":", 1)[1] if ":" in value else str(int(now))
            dev.apply_state(SimState.SLEEPING if option == "softoff" else SimState.MINING)
            status = cg.status(
                "I", CODE_ASC_INFO, f"ASC 0 set info: success {option}:{stamp}", DESCRIPTION, when
            )
            return {"STATUS": [status], "id": 1}
        if option == "reboot":
            dev.reboot_requested = True
            return {
                "STATUS": [
                    cg.status("I", CODE_ASC_INFO, "ASC 0 set info: success reboot", DESCRIPTION, when)
                ],
                "id": 1,
            }
        if option == "led":
            if value not in ("1-1", "1-0"):
                failed = f"ASC 0 set failed: invalid led value '{value}'"
                return {"STATUS": [cg.status("E", CODE_ASC_FAILED, failed, DESCRIPTION, when)], "id": 1}
            dev.locate = value == "1-1"
        if option in ("led", "worklevel", "workmode", "work_mode_lvl", "fan-spd", "lcd", "time"):
            return {"STATUS": [cg.status("S", CODE_ASC_OK, "ASC 0 set OK", DESCRIPTION, when)], "id": 1}
        if option in ("help", ""):
            return {"STATUS": [cg.status("I", CODE_ASC_INFO, _ASC_HELP, DESCRIPTION, when)], "id": 1}
        failed = f"ASC 0 set failed: unknown option '{option}'"
        return {"STATUS": [cg.status("E", CODE_ASC_FAILED, failed, DESCRIPTION, when)], "id": 1}

    # ---- port 80 ----------------------------------------------------------------------------------------

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """The login page of Canaan's web UI, which names the product."""
        body = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Avalon Device</title></head>"
            f"<body><h1>AvalonMiner {dev.spec.wire_type}</h1><form action='/login.cgi' method='post'>"
            "<input name='username'><input name='passwd' type='password'></form></body></html>"
        ).encode()
        return HttpResponse(
            status=200,
            reason="OK",
            headers=[("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
            body=body,
        )

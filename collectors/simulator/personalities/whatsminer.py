"""Whatsminer (MicroBT btminer): API v1.x/v2.x on TCP 4028, API v3 on TCP 4433, and the web redirect.

Shapes, key order, value types and units come from the captures in
`tests/captures/device-responses/whatsminer/` (provenance in collectors/simulator/SOURCES.md):

- The cgminer-side commands (`summary`, `pools`, `edevs`/`devs`, `devdetails`) keep cgminer's envelope;
  hashrates are MH/s (`MHS 1m`), except `Factory GHS` (GH/s). `stats` is not served: `E 14 "invalid cmd"`.
- The btminer commands (`get_version`, `get_miner_info`, `get_psu`, `get_error_code`, `status`) answer
  with STATUS as a *string* and an object in `Msg`; the firmware date picks the dialect (see `Dialect`).
- `{"cmd": "pools+summary"}` is rejected by the 2020 builds with `E 24 "Missing JSON 'command'"` and
  served by later ones; `{"command": "a+b"}` is always served as a cgminer multi-command.
- API v3 (firmware built after 2024-11) answers `get.device.info` and `get.miner.status` with TH/s floats.
- Write commands (issue 19; `btminer_write.py` has the token, the AES channel and the v3 signature):
  v2 `reboot`, `power_off`/`power_on`, `set_led`, `adjust_power_limit` (the device restarts to apply it,
  as pyasic documents); v3 `set.system.reboot`, `set.system.led`, `set.miner.service` stop/start,
  `set.miner.power_limit`. No capture holds their answers: v2 answers Code 131 "API command OK" (what
  pyasic checks), v3 `{"code":0,"msg":"ok"}`. The light reads back in v2 `get_miner_info` `ledstat`
  ("auto" when off; "manual" when set, a made-up word: pyasic only compares with "auto") and in v3
  `get.device.info` `system.ledstatus`.

Firmware dates are read from `dev.firmware_version` ("20210109.22.REL"); pyasic picks its V3 backend
from the same date, so every path that reports a version reports this one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from collectors.simulator.device import BoardState, SimDevice, SimState
from collectors.simulator.personalities import btminer_write as wr
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.base import HttpRequest, HttpResponse, RpcRequest

Json = dict[str, object]

CODE_BTMINER_OK = 131
CODE_TOKEN_OK = 134
CODE_COMMAND_ERROR = 132
CODE_MISSING_COMMAND = 24
MH_PER_TH = 1_000_000.0
GH_PER_TH = 1_000.0

# Key order of SUMMARY per dialect, from the wire-order captures. Error keys are inserted where
# "Error Code Count" stands. 2020: m30s-new-firmware_summary.json; 2021: m31s-new-firmware_summary-2.json;
# API 2.x: the key set of m3x-105chip_summary.json (key-sorted source) laid out in the 2021 order.
_SUMMARY_2020 = (
    "Elapsed", "MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m", "Found Blocks", "Getworks", "Accepted",
    "Rejected", "Hardware Errors", "Utility", "Discarded", "Stale", "Get Failures", "Local Work",
    "Remote Failures", "Network Blocks", "Total MH", "Work Utility", "Difficulty Accepted",
    "Difficulty Rejected", "Difficulty Stale", "Best Share", "Temperature", "freq_avg", "Fan Speed In",
    "Fan Speed Out", "Voltage", "Power", "Power_RT", "Device Hardware%", "Device Rejected%",
    "Pool Rejected%", "Pool Stale%", "Last getwork", "Uptime", "Chip Data", "Power Current",
    "Power Fanspeed", "Error Code Count", "Factory Error Code Count", "Security Mode", "Liquid Cooling",
    "Hash Stable", "Hash Stable Cost Seconds", "Hash Deviation%", "Target Freq", "Target MHS", "Env Temp",
    "Power Mode", "Firmware Version", "MAC", "Factory GHS", "Power Limit", "Power Voltage Input",
    "Power Current Input", "Chip Temp Min", "Chip Temp Max", "Chip Temp Avg",
)  # fmt: skip
_SUMMARY_2021 = (
    "Elapsed", "MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m", "HS RT", "Found Blocks", "Getworks",
    "Accepted", "Rejected", "Hardware Errors", "Utility", "Discarded", "Stale", "Get Failures", "Local Work",
    "Remote Failures", "Network Blocks", "Total MH", "Work Utility", "Difficulty Accepted",
    "Difficulty Rejected", "Difficulty Stale", "Best Share", "Temperature", "freq_avg", "Fan Speed In",
    "Fan Speed Out", "Voltage", "Power", "Power_RT", "Power Rate", "Device Hardware%", "Device Rejected%",
    "Pool Rejected%", "Pool Stale%", "Last getwork", "Uptime", "Chip Data", "Power Current",
    "Power Fanspeed", "Error Code Count", "Factory Error Code Count", "Security Mode", "Liquid Cooling",
    "Hash Stable", "Hash Stable Cost Seconds", "Hash Deviation%", "Target Freq", "Target MHS", "Env Temp",
    "Power Mode", "Firmware Version", "CB Platform", "CB Version", "MAC", "Factory GHS", "Power Limit",
    "Power Voltage Input", "Power Current Input", "Chip Temp Min", "Chip Temp Max", "Chip Temp Avg", "Debug",
)  # fmt: skip
_SUMMARY_API2 = tuple(
    k
    for k in _SUMMARY_2021
    if k not in ("Power Rate", "Env Temp", "Power Voltage Input", "Power Current Input", "Debug")
)
# DEVS keys: 2020 m30s-new-firmware_edevs.json; 2021 m31s-new-firmware_edevs-2.json; API 2.x the key
# set of m3x-105chip_devs.json in the same order.
_DEVS_2021 = (
    "ASC", "Name", "ID", "Slot", "Enabled", "Status", "Temperature", "Chip Frequency", "Fan Speed In",
    "Fan Speed Out", "MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m", "Accepted", "Rejected",
    "Hardware Errors", "Utility", "Last Share Pool", "Last Share Time", "Total MH", "Diff1 Work",
    "Difficulty Accepted", "Difficulty Rejected", "Last Share Difficulty", "Last Valid Work",
    "Device Hardware%", "Device Rejected%", "Device Elapsed", "Upfreq Complete", "Effective Chips", "PCB SN",
    "Chip Data", "Chip Temp Min", "Chip Temp Max", "Chip Temp Avg", "chip_vol_diff",
)  # fmt: skip
_DEVS_2020 = tuple(k for k in _DEVS_2021 if k != "Chip Data")
_DEVS_API2 = tuple(k for k in _DEVS_2021 if k not in ("Chip Data", "chip_vol_diff"))


@dataclass(frozen=True)
class Dialect:
    """What changes between btminer builds, as the captures show it."""

    name: str
    description: str  # Description of the cgminer-side replies
    api_ver: str  # get_version Msg.api_ver
    btminer_description: str  # Description of the get_*/status replies
    summary_keys: tuple[str, ...]
    devs_keys: tuple[str, ...]
    pool_base: int  # POOL numbering starts at 0 (2020 builds) or 1
    accepts_cmd_key: bool  # serves {"cmd": "summary"} on cgminer-side commands
    error_times: bool  # "Error N Time" keys beside "Error Code N"
    new_status: bool  # status Msg {mineroff, ...} instead of {btmineroff, "Firmware Version"}
    quote_escape: bool  # Firmware Version sent as "\'...\'" (invalid JSON escape, M20S 2020-09 build)


def firmware_date(version: str) -> int:
    """The build date in a btminer version string ("20210109.22.REL" -> 20210109); 0 if none."""
    head = version[:8]
    return int(head) if head.isdigit() else 0


def dialect_for(dev: SimDevice) -> Dialect:
    """The btminer dialect a device's firmware build speaks."""
    date = firmware_date(dev.firmware_version)
    if date < 20201001:
        return Dialect(
            name="2020",
            description="cgminer 4.9.2",
            api_ver="whatsminer v1.1",
            btminer_description="whatsminer v1.1",
            summary_keys=_SUMMARY_2020,
            devs_keys=_DEVS_2020,
            pool_base=0,
            accepts_cmd_key=False,
            error_times=False,
            new_status=False,
            quote_escape=20200901 <= date < 20201001,
        )
    if date < 20230101:
        api = "whatsminer v1.3" if date < 20210301 else "whatsminer v1.4.0"
        return Dialect(
            name="2021",
            description="btminer",
            api_ver=api,
            btminer_description=api,
            summary_keys=_SUMMARY_2021,
            devs_keys=_DEVS_2021,
            pool_base=1,
            accepts_cmd_key=True,
            error_times=True,
            new_status=False,
            quote_escape=False,
        )
    return Dialect(
        name="api2",
        description="btminer",
        api_ver="2.0.5",
        btminer_description="",
        summary_keys=_SUMMARY_API2,
        devs_keys=_DEVS_API2,
        pool_base=1,
        accepts_cmd_key=True,
        error_times=False,
        new_status=True,
        quote_escape=False,
    )


# ---- values derived from device state -----------------------------------------------------------


def error_codes(dev: SimDevice) -> list[int]:
    """Whatsminer error codes the device currently raises (54N/56N dead slot, 35N slot too hot)."""
    codes: list[int] = []
    for board in dev.boards:
        if not board.alive:
            codes += [540 + board.index, 560 + board.index]
    if dev.state is SimState.OVERHEATING:
        codes += [350 + b.index for b in dev.boards if b.alive]
    return codes


def _board_rates_ths(dev: SimDevice, board: BoardState) -> tuple[float, float, float]:
    """(5 s, 1 m, average) hashrate of a board in TH/s; averages lean on the healthy rate."""
    if not dev.mining or not board.alive:
        return 0.0, 0.0, 0.0
    healthy = dev.spec.nominal_ths * board.share * dev.power_scale  # a power target lowers it
    now = board.hashrate_ths
    return now, 0.3 * now + 0.7 * healthy, 0.1 * now + 0.9 * healthy


def _identity(dev: SimDevice) -> random.Random:
    # Per-device constants (PCB serials, chip lots, salt) must not consume the drift generator.
    return random.Random(dev.seed * 7919 + 17)


def _pcb_serials(dev: SimDevice) -> list[str]:
    rng = _identity(dev)
    return [f"H5M1ES9C{rng.randrange(10**6, 10**7)}X{rng.randrange(10000, 99999)}" for _ in dev.boards]


def _chip_data(dev: SimDevice) -> str:
    rng = _identity(dev)
    return f"HP5A05-{rng.randrange(19000000, 24000000)} BINV02-{rng.randrange(190000, 199999)}B"


def _rated_power_limit(dev: SimDevice) -> int:
    return max(3600, int(dev.spec.power_w // 100 + 2) * 100)


def _power_limit(dev: SimDevice) -> int:
    """The power limit in force: a target set by an operator, else the rated one."""
    return int(dev.power_limit_w) if dev.power_limit_w is not None else _rated_power_limit(dev)


def _fans(dev: SimDevice) -> tuple[int, int]:
    fans = dev.fans_rpm or [0]
    return fans[0], fans[1] if len(fans) > 1 else fans[0]


def _share_totals(dev: SimDevice) -> tuple[int, int, int, float]:
    accepted = sum(p.accepted for p in dev.pools)
    rejected = sum(p.rejected for p in dev.pools)
    stale = sum(p.stale for p in dev.pools)
    difficulty = next(
        (p.difficulty for p in dev.pools if p.active), dev.pools[0].difficulty if dev.pools else 0
    )
    return accepted, rejected, stale, difficulty


def _fw_quoted(dev: SimDevice) -> str:
    return f"'{dev.firmware_version}'"


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


class WhatsminerPersonality:
    """Stock Whatsminer firmware (btminer). Stateless: every value comes from the SimDevice."""

    def __init__(self, trailing_comma: bool = False) -> None:
        # btminer has been seen to send `,}` (pyasic repairs it); no capture here shows it, so it is opt-in.
        self.trailing_comma = trailing_comma

    # ---- port 4028 --------------------------------------------------------------------------------

    def rpc(self, dev: SimDevice, request: RpcRequest, now: float) -> bytes:
        """The full reply to a 4028 request, trailing NUL included."""
        dev.advance(now)
        dialect = dialect_for(dev)
        if request.key == "enc":
            return self._write(dev, dialect, request, now)
        if request.multi:
            if request.key == "cmd" and not dialect.accepts_cmd_key:
                return self._finish(
                    cg.error(CODE_MISSING_COMMAND, "Missing JSON 'command'", dialect.description, now)
                )
            parts = {name: self._cgminer_reply(dev, dialect, name, now) for name in request.commands}
            return cg.finish(self._comma(cg.render_multi(parts)))
        escape = dev.firmware_version if dialect.quote_escape else None
        name = request.commands[0] if request.commands else ""
        lowered = name.lower()
        if lowered in _BTMINER_COMMANDS:
            return self._finish(self._btminer_reply(dev, dialect, lowered, now), escape)
        if request.key == "cmd" and not dialect.accepts_cmd_key:
            return self._finish(
                cg.error(CODE_MISSING_COMMAND, "Missing JSON 'command'", dialect.description, now)
            )
        reply = self._cgminer_reply(dev, dialect, lowered, now)
        if not request.as_json and isinstance(reply.get("STATUS"), list):
            return cg.finish(cg.render_text(reply))
        return self._finish(reply, escape)

    def _finish(self, reply: Json, escape_version: str | None = None) -> bytes:
        text = cg.dump(reply)
        if escape_version is not None:
            # The 2020-09 M20S build escapes the single quotes around its version: invalid JSON.
            text = text.replace(f"\"'{escape_version}'\"", f"\"\\'{escape_version}\\'\"")
        return cg.finish(self._comma(text))

    def _comma(self, text: str) -> str:
        return text[:-1] + ",}" if self.trailing_comma and text.endswith("}") else text

    def _cgminer_reply(self, dev: SimDevice, dialect: Dialect, name: str, now: float) -> Json:
        if name == "summary":
            return cg.envelope(
                "SUMMARY",
                [self.summary(dev, dialect, now)],
                cg.CODE_SUMMARY,
                "Summary",
                dialect.description,
                now,
            )
        if name in ("edevs", "devs"):
            devs = self.devs(dev, dialect, now)
            return cg.envelope("DEVS", devs, cg.CODE_DEVS, f"{len(devs)} ASC(s)", dialect.description, now)
        if name == "pools":
            pools = self.pools(dev, dialect, now)
            return cg.envelope(
                "POOLS", pools, cg.CODE_POOLS, f"{len(pools)} Pool(s)", dialect.description, now
            )
        if name == "devdetails":
            details: list[Json] = [
                {"DEVDETAILS": b.index, "Name": "SM", "ID": b.index, "Driver": "bitmicro", "Kernel": "",
                 "Model": dev.spec.wire_type}
                for b in dev.boards
            ]  # fmt: skip
            return cg.envelope(
                "DEVDETAILS", details, cg.CODE_DEVDETAILS, "Device Details", dialect.description, now
            )
        # `stats`, `version` and anything else: btminer's own wording (btccom/libbtctools#8).
        return {
            "STATUS": "E",
            "When": int(now),
            "Code": cg.CODE_INVALID,
            "Msg": "invalid cmd",
            "Description": dialect.btminer_description or "whatsminer v1.3",
        }

    # ---- cgminer-side sections ----------------------------------------------------------------------

    def summary(self, dev: SimDevice, dialect: Dialect, now: float) -> Json:
        """SUMMARY[0] in the dialect's key order; hashrates in MH/s, `Factory GHS` in GH/s."""
        rates = [_board_rates_ths(dev, b) for b in dev.boards]
        h5s = sum(r[0] for r in rates)
        h1m = sum(r[1] for r in rates)
        hav = sum(r[2] for r in rates)
        uptime = dev.uptime_s(now)
        elapsed = max(0, uptime - 45)
        accepted, rejected, stale, difficulty = _share_totals(dev)
        hw = sum(b.hw_errors for b in dev.boards)
        fan_in, fan_out = _fans(dev)
        alive = [b for b in dev.boards if b.alive]
        chip_temps = [b.temp_chip_c for b in alive] or [0.0]
        power = int(dev.power_w)
        freq = 520 if dev.mining else 0
        values: Json = {
            "Elapsed": elapsed,
            "MHS av": round(hav * MH_PER_TH, 2),
            "MHS 5s": round(h5s * MH_PER_TH, 2),
            "MHS 1m": round(h1m * MH_PER_TH, 2),
            "MHS 5m": round((0.5 * h1m + 0.5 * hav) * MH_PER_TH, 2),
            "MHS 15m": round(hav * MH_PER_TH, 2),
            "HS RT": round(h1m * MH_PER_TH, 2),
            "Found Blocks": 0,
            "Getworks": elapsed // 30,
            "Accepted": accepted,
            "Rejected": rejected,
            "Hardware Errors": hw,
            "Utility": round(accepted * 60.0 / elapsed, 2) if elapsed else 0.0,
            "Discarded": elapsed * 20,
            "Stale": stale,
            "Get Failures": 0,
            "Local Work": elapsed * 7000,
            "Remote Failures": 0,
            "Network Blocks": elapsed // 600,
            "Total MH": round(hav * MH_PER_TH * elapsed, 4),
            "Work Utility": round(hav * 1000.0 * 14.0, 2),
            "Difficulty Accepted": float(accepted * difficulty),
            "Difficulty Rejected": float(rejected * difficulty),
            "Difficulty Stale": float(stale * difficulty),
            "Best Share": accepted * int(difficulty) * 3,
            "Temperature": round(max((b.temp_pcb_c for b in dev.boards), default=0.0), 2),
            "freq_avg": freq,
            "Fan Speed In": fan_in,
            "Fan Speed Out": fan_out,
            "Voltage": 1200 if dev.mining else 0,
            "Power": power,
            "Power_RT": power + 2,
            "Power Rate": round(power / h1m, 2) if h1m else 0.0,
            "Device Hardware%": _pct(hw, hw + accepted * 1000),
            "Device Rejected%": _pct(rejected, accepted + rejected),
            "Pool Rejected%": _pct(rejected, accepted + rejected),
            "Pool Stale%": _pct(stale, accepted + stale),
            "Last getwork": 0,
            "Uptime": uptime,
            "Chip Data": _chip_data(dev),
            "Power Current": round(power / 12.6, 6) if dialect.name == "2021" else int(power / 12.6),
            "Power Fanspeed": 7600 if dev.mining else 2400,
            "Error Code Count": 0,
            "Factory Error Code Count": 0,
            "Security Mode": 0,
            "Liquid Cooling": False,
            "Hash Stable": dev.mining and elapsed > 1800,
            "Hash Stable Cost Seconds": min(elapsed, 1800),
            "Hash Deviation%": round((h1m / dev.spec.nominal_ths - 1.0) * 100.0, 4) if h1m else 0.0,
            "Target Freq": freq,
            # The firmware's target follows a power limit, as `Power Limit` below.
            "Target MHS": int(dev.spec.nominal_ths * MH_PER_TH * 0.97 * dev.power_scale),
            "Env Temp": round(dev.env_temp_c, 2),
            "Power Mode": "Normal",
            "Firmware Version": _fw_quoted(dev),
            "CB Platform": "ALLWINNER_H6OS" if dialect.name == "2021" else "H616",
            "CB Version": "V10",
            "MAC": dev.mac.upper(),
            "Factory GHS": int(dev.spec.nominal_ths * GH_PER_TH),
            "Power Limit": _power_limit(dev),
            "Power Voltage Input": 229.5,
            "Power Current Input": round(power / 229.5, 2),
            "Chip Temp Min": round(min(chip_temps) - 14.0 if alive else 0.0, 2),
            "Chip Temp Max": round(max(chip_temps) + 8.0 if alive else 0.0, 2),
            "Chip Temp Avg": round(sum(chip_temps) / len(chip_temps), 2),
            "Debug": f"{h1m:.1f}/{dev.spec.nominal_ths:.1f}T_{power / h1m if h1m else 0:.1f}W",
        }
        out: Json = {}
        codes = error_codes(dev)
        for key in dialect.summary_keys:
            if key == "Error Code Count":
                for i, code in enumerate(codes):
                    out[f"Error Code {i}"] = code
                    if dialect.error_times:
                        out[f"Error {i} Time"] = ""
                out[key] = len(codes)
                continue
            out[key] = values[key]
        return out

    def devs(self, dev: SimDevice, dialect: Dialect, now: float) -> list[Json]:
        """DEVS, one object per hashboard; a board without chips is `Dead` with `Effective Chips` 0."""
        serials = _pcb_serials(dev)
        elapsed = max(0, dev.uptime_s(now) - 45)
        fan_in, fan_out = _fans(dev)
        _, _, _, difficulty = _share_totals(dev)
        accepted_total = sum(p.accepted for p in dev.pools)
        out: list[Json] = []
        for board in dev.boards:
            h5s, h1m, hav = _board_rates_ths(dev, board)
            live = board.alive
            hashing = live and dev.mining
            accepted = int(accepted_total * board.share) if hashing else 0
            values: Json = {
                "ASC": board.index,
                "Name": "SM",
                "ID": board.index,
                "Slot": board.index,
                "Enabled": "Y",
                "Status": "Alive" if live else "Dead",
                "Temperature": round(board.temp_pcb_c, 2),
                "Chip Frequency": 520 if hashing else 0,
                "Fan Speed In": fan_in,
                "Fan Speed Out": fan_out,
                "MHS av": round(hav * MH_PER_TH, 2),
                "MHS 5s": round(h5s * MH_PER_TH, 2),
                "MHS 1m": round(h1m * MH_PER_TH, 2),
                "MHS 5m": round((h1m + hav) / 2 * MH_PER_TH, 2),
                "MHS 15m": round(hav * MH_PER_TH, 2),
                "Accepted": accepted,
                "Rejected": 0,
                "Hardware Errors": board.hw_errors,
                "Utility": round(accepted * 60.0 / elapsed, 2) if elapsed else 0.0,
                "Last Share Pool": 0 if hashing else -1,
                "Last Share Time": int(now) - 7 if hashing else 0,
                "Total MH": round(hav * MH_PER_TH * elapsed, 4),
                "Diff1 Work": accepted * 4,
                "Difficulty Accepted": float(accepted * difficulty),
                "Difficulty Rejected": 0.0,
                "Last Share Difficulty": float(difficulty if hashing else 0),
                "Last Valid Work": int(now),
                "Device Hardware%": _pct(board.hw_errors, board.hw_errors + accepted * 1000),
                "Device Rejected%": 0.0,
                "Device Elapsed": elapsed,
                "Upfreq Complete": 1 if hashing else 0,
                "Effective Chips": board.chips,
                "PCB SN": serials[board.index % len(serials)],
                "Chip Data": _chip_data(dev),
                "Chip Temp Min": round(board.temp_chip_c - 14.0, 2) if live else 0.0,
                "Chip Temp Max": round(board.temp_chip_c + 8.0, 2) if live else 0.0,
                "Chip Temp Avg": round(board.temp_chip_c, 2) if live else 0.0,
                "chip_vol_diff": 11 + board.index,
            }
            out.append({key: values[key] for key in dialect.devs_keys})
        return out

    def pools(self, dev: SimDevice, dialect: Dialect, now: float) -> list[Json]:
        """POOLS with the device's counters; a pool that is down reports `Dead`."""
        elapsed = max(0, dev.uptime_s(now) - 45)
        out: list[Json] = []
        for i, pool in enumerate(dev.pools):
            used = pool.active and pool.alive
            diff = float(pool.difficulty if used else 0.0)
            host = pool.url.split("://", 1)[-1].rsplit(":", 1)[0]
            out.append(
                {
                    "POOL": i + dialect.pool_base,
                    "URL": pool.url,
                    "Status": "Alive" if pool.alive else "Dead",
                    "Priority": pool.priority,
                    "Quota": 1,
                    "Long Poll": "N",
                    "Getworks": elapsed // 30 if used else 0,
                    "Accepted": pool.accepted,
                    "Rejected": pool.rejected,
                    "Works": elapsed * 27000 if used else 0,
                    "Discarded": elapsed * 20 if used else 0,
                    "Stale": pool.stale,
                    "Get Failures": 0,
                    "Remote Failures": 0,
                    "User": pool.user,
                    "Last Share Time": int(now) - 5 if used else 0,
                    "Diff1 Shares": pool.accepted * 4 if used else 0,
                    "Proxy Type": "",
                    "Proxy": "",
                    "Difficulty Accepted": float(pool.accepted * pool.difficulty),
                    "Difficulty Rejected": float(pool.rejected * pool.difficulty),
                    "Difficulty Stale": float(pool.stale * pool.difficulty),
                    "Last Share Difficulty": diff,
                    "Work Difficulty": 0.0,
                    "Has Stratum": True,
                    "Stratum Active": used,
                    "Stratum URL": host if used else "",
                    "Stratum Difficulty": diff,
                    "Has GBT": False,
                    "Best Share": pool.accepted * int(pool.difficulty) * 3,
                    "Pool Rejected%": _pct(pool.rejected, pool.accepted + pool.rejected),
                    "Pool Stale%": _pct(pool.stale, pool.accepted + pool.stale),
                    "Bad Work": pool.rejected * 3,
                    "Current Block Height": 925_000 + int(now - 1_760_000_000) // 600 if used else 0,
                    "Current Block Version": 536870912,
                }
            )
        return out

    # ---- btminer-side commands (STATUS as a string) ---------------------------------------------

    def _btminer_reply(self, dev: SimDevice, dialect: Dialect, name: str, now: float) -> Json:
        msg: object
        if name == "get_version":
            msg = {"api_ver": dialect.api_ver, "fw_ver": dev.firmware_version}
            if dialect.new_status:
                msg["platform"] = "H616"
        elif name == "status":
            msg = self.status(dev, dialect, now)
        elif name == "get_miner_info":
            # apiv2.0.5_get_miner_info.json: hostname, ledstat, mac; pyasic also reads minersn.
            led = "manual" if dev.locate else "auto"
            msg = {"hostname": dev.hostname, "ledstat": led, "mac": dev.mac.upper(), "minersn": dev.serial}
        elif name == "get_psu":
            # m3x-105chip_get_psu.json; API 2.x adds fan_speed (protocols.md 2.2), which pyasic reads.
            msg = {"name": "P21", "model": "P21-12-3600-E", "hw_version": "", "sw_version": "102220.009"}
            if dialect.new_status:
                msg["fan_speed"] = "7600" if dev.mining else "2400"
        elif name == "get_error_code":
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dev.boot_time + 30))
            msg = {"error_code": [{str(code): stamp} for code in error_codes(dev)]}
        elif name == "get_token" and wr.v2_writes_open(dev):
            return {
                "STATUS": "S",
                "When": int(now),
                "Code": CODE_TOKEN_OK,
                "Msg": wr.issue_token(dev, now),
                "Description": dialect.btminer_description,
            }
        else:  # get_token while the admin password is the factory one
            return {
                "STATUS": "E",
                "When": int(now),
                "Code": cg.CODE_ACCESS_DENIED,
                "Msg": "can't access write cmd",
                "Description": dialect.btminer_description,
            }
        return {
            "STATUS": "S",
            "When": int(now),
            "Code": CODE_BTMINER_OK,
            "Msg": msg,
            "Description": dialect.btminer_description,
        }

    # ---- write commands over the encrypted channel (API v2) ---------------------------------------

    def _write(self, dev: SimDevice, dialect: Dialect, request: RpcRequest, now: float) -> bytes:
        body = request.body or {}
        try:
            command = wr.open_write(dev, body.get("data"), now)
        except wr.WriteRefused as exc:  # answered in clear: the device could not read the request
            return self._finish(self._plain("E", exc.code, exc.msg, dialect, now))
        reply = self._run_write(dev, dialect, command, now)
        return cg.finish(cg.dump(wr.seal(dev, reply)))

    @staticmethod
    def _plain(letter: str, code: int, msg: str, dialect: Dialect, now: float) -> Json:
        return {"STATUS": letter, "When": int(now), "Code": code, "Msg": msg,
                "Description": dialect.btminer_description}  # fmt: skip

    def _run_write(self, dev: SimDevice, dialect: Dialect, command: Json, now: float) -> Json:
        """Apply one decrypted write command to the device; its (clear) reply."""
        name = command.get("cmd")
        ok = self._plain("S", CODE_BTMINER_OK, "API command OK", dialect, now)
        bad = self._plain("E", CODE_COMMAND_ERROR, "command error", dialect, now)
        if name == "reboot":
            dev.reboot_requested = True
        elif name in ("power_off", "power_on"):
            dev.set_asleep(name == "power_off")
        elif name == "set_led":
            if command.get("param") == "auto":
                dev.locate = False
            elif command.get("color") in ("red", "green") and all(
                _whole(command.get(k)) is not None for k in ("period", "duration", "start")
            ):
                dev.locate = True
            else:
                return bad
        elif name == "adjust_power_limit":
            watts = _whole(command.get("power_limit"))
            if watts is None or not 0 < watts <= dev.spec.power_w:  # not above its ordinary power
                return bad
            dev.power_limit_w = float(watts)
            dev.reboot_requested = True  # btminer restarts to apply a new limit
        else:
            return self._plain("E", cg.CODE_INVALID, "invalid cmd", dialect, now)
        return ok

    def status(self, dev: SimDevice, dialect: Dialect, now: float) -> Json:
        """`status` Msg: mineroff/btmineroff is the string "true" while the device sleeps."""
        off = "true" if dev.state is SimState.SLEEPING else "false"
        if dialect.new_status:
            return {
                "mineroff": off,
                "mineroff_reason": "user" if off == "true" else "",
                "mineroff_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dev.boot_time + 60))
                if off == "true"
                else "",
                "FirmwareVersion": dev.firmware_version,
                "power_mode": "normal",
                "power_limit_set": str(_power_limit(dev)),
                "hash_percent": "0",
            }
        return {"btmineroff": off, "Firmware Version": _fw_quoted(dev)}

    # ---- port 80 ------------------------------------------------------------------------------------

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """LuCI sits behind https: plain http gets a 307 to https, naming /cgi-bin/luci in the page."""
        host = request.headers.get("host", dev.ip)
        location = f"https://{host}/cgi-bin/luci"
        body = (
            "<html><head><title>307 Temporary Redirect</title></head><body>"
            f'<a href="{location}">/cgi-bin/luci</a></body></html>'
        ).encode()
        return HttpResponse(
            status=307,
            reason="Temporary Redirect",
            headers=[
                ("Location", location),
                ("Content-Type", "text/html"),
                ("Content-Length", str(len(body))),
            ],
            body=body,
        )

    # ---- port 4433 (API v3) ----------------------------------------------------------------------

    def v3(self, dev: SimDevice, request: dict[str, object], now: float) -> dict[str, object]:
        """One API v3 reply object (the server adds the 4-byte length prefix)."""
        dev.advance(now)
        cmd = request.get("cmd")
        param = request.get("param")
        if not isinstance(cmd, str):
            return {"code": -1, "when": int(now), "msg": "invalid cmd", "desc": ""}
        if cmd == "get.device.info":
            return {"code": 0, "when": int(now), "msg": self.device_info(dev), "desc": cmd}
        if cmd == "get.miner.status" and param in ("summary", "edevs", "pools"):
            section: object
            if param == "summary":
                section = self.v3_summary(dev, now)
            elif param == "edevs":
                section = self.v3_edevs(dev)
            else:
                # "id" is not in the asic-rs capture (hand-made values) but pyasic's config reader sorts
                # the v3 pools by it, so the firmware it was written against sends it.
                section = [
                    {
                        "id": i,
                        "account": p.user,
                        "pool-priority": p.priority,
                        "status": "alive" if p.alive else "dead",
                        "stratum-active": p.active and p.alive,
                        "url": p.url,
                    }
                    for i, p in enumerate(dev.pools)
                ]
            return {"code": 0, "when": int(now), "msg": {str(param): section}, "desc": cmd}
        if cmd.startswith("set."):
            return self._v3_set(dev, cmd, param, request, now)
        if cmd == "get.miner.setting":
            # No capture; pyasic reads only msg["power-mode"] (MiningModeConfig.from_btminer_v3).
            setting: Json = {"power-mode": "normal", "power-limit": _power_limit(dev)}
            return {"code": 0, "when": int(now), "msg": setting, "desc": cmd}
        return {"code": -1, "when": int(now), "msg": "invalid cmd", "desc": cmd}

    def _v3_set(
        self, dev: SimDevice, cmd: str, param: object, request: dict[str, object], now: float
    ) -> dict[str, object]:
        """A signed `set.*` command; code -2 when its signature is not the device's."""
        if not wr.v3_signed(dev, request, wr.device_salt(dev)):
            return {"code": -2, "when": int(now), "msg": "token error", "desc": cmd}
        bad: dict[str, object] = {"code": -1, "when": int(now), "msg": "invalid param", "desc": cmd}
        if cmd == "set.system.reboot":
            dev.reboot_requested = True
        elif cmd == "set.system.led":
            if param == "auto":
                dev.locate = False
            elif (
                isinstance(param, list)
                and param
                and all(isinstance(x, dict) and x.get("color") for x in param)
            ):
                dev.locate = True
            else:
                return bad
        elif cmd == "set.miner.service":
            if param in ("stop", "start"):
                dev.set_asleep(param == "stop")
            elif param != "restart":
                return bad
        elif cmd == "set.miner.power_limit":
            watts = _whole(param)
            if watts is None or not 0 < watts <= dev.spec.power_w:  # not above its ordinary power
                return bad
            dev.power_limit_w = float(watts)
        else:
            return {"code": -1, "when": int(now), "msg": "invalid cmd", "desc": cmd}
        return {"code": 0, "when": int(now), "msg": "ok", "desc": cmd}

    def device_info(self, dev: SimDevice) -> Json:
        """`get.device.info` msg: miner, network, power, salt, system (+ error-code when raised)."""
        rng = _identity(dev)
        serials = _pcb_serials(dev)
        miner: Json = {
            "board-num": str(len(dev.boards)),
            **{
                f"chipdata{b.index}": f"K8EC{rng.randrange(100, 999)}-2426 BINVE6-197806A" for b in dev.boards
            },
            "detect-hash-rate": ":".join(
                str(int(dev.spec.nominal_ths * b.share * GH_PER_TH)) for b in dev.boards
            ),
            "fast-boot": "disable",
            "hash-board": dev.spec.wire_type.rsplit("_", 1)[-1][-3:],
            "hash-percent": "0",
            "miner-sn": dev.serial,
            **{f"pcbsn{b.index}": serials[b.index] for b in dev.boards},
            "pool-strategy": "FAILOVER",
            "type": dev.spec.wire_type,
            "working": "true" if dev.mining else "false",
        }
        info: Json = {}
        codes = error_codes(dev)
        if codes:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(dev.boot_time + 30))
            info["error-code"] = [{str(c): stamp, "reason": _REASONS.get(c // 10, "error")} for c in codes]
        info["miner"] = miner
        info["network"] = {
            "dns": dev.ip.rsplit(".", 1)[0] + ".1",
            "gateway": dev.ip.rsplit(".", 1)[0] + ".1",
            "hostname": dev.hostname,
            "ip": dev.ip,
            "mac": dev.mac.upper(),
            "netmask": "255.255.255.0",
            "proto": "dhcp",
        }
        info["power"] = {
            "fanspeed": 6300 if dev.mining else 2400,
            "hwversion": "RT0159",
            "mode": "1",
            "model": "P221B",
            "sn": f"1436B{rng.randrange(10**9, 10**10)}",
            "swversion": "230224.220429",
            "type": "P221B",
            "vendor": "1",
        }
        info["salt"] = wr.device_salt(dev)
        info["system"] = {
            "api": "3.0.2",
            "apiswitch": "1",
            "control-board-version": "CB6V10",
            "fwversion": dev.firmware_version,
            "ledstatus": "manual" if dev.locate else "auto",
            "platform": "H616",
        }
        return info

    def v3_summary(self, dev: SimDevice, now: float) -> Json:
        """`get.miner.status` summary: hashrates in TH/s floats, power in W."""
        rates = [_board_rates_ths(dev, b) for b in dev.boards]
        alive = [b for b in dev.boards if b.alive]
        chip = [b.temp_chip_c for b in alive] or [0.0]
        fan_in, fan_out = _fans(dev)
        h1m = sum(r[1] for r in rates)
        power = round(dev.power_w, 1)
        return {
            "Debug": "",
            "board-temperature": [round(b.temp_pcb_c, 1) for b in dev.boards],
            "bootup-time": dev.uptime_s(now),
            "chip-temp-avg": round(sum(chip) / len(chip), 1),
            "chip-temp-max": round(max(chip) + 6.0, 1) if alive else 0.0,
            "chip-temp-min": round(min(chip) - 7.0, 1) if alive else 0.0,
            "elapsed": max(0, dev.uptime_s(now) - 45),
            "environment-temperature": round(dev.env_temp_c, 1),
            "factory-hash": round(dev.spec.nominal_ths, 3),
            "fan-speed-in": fan_in,
            "fan-speed-out": fan_out,
            "freq-avg": 625 if dev.mining else 0,
            "hash-15min": round(sum(r[2] for r in rates), 3),
            "hash-1min": round(h1m, 3),
            "hash-average": round(sum(r[2] for r in rates), 3),
            "hash-realtime": round(sum(r[0] for r in rates), 3),
            "power-5min": power,
            "power-limit": _power_limit(dev),
            "power-rate": round(power / h1m, 1) if h1m else 0.0,
            "power-realtime": power,
            "up-freq-finish": 1 if dev.mining else 0,
        }

    def v3_edevs(self, dev: SimDevice) -> list[Json]:
        """`get.miner.status` edevs: one object per board, TH/s."""
        out: list[Json] = []
        for board in dev.boards:
            h5s, _, hav = _board_rates_ths(dev, board)
            live = board.alive
            out.append(
                {
                    "chip-temp-avg": round(board.temp_chip_c, 1) if live else 0.0,
                    "chip-temp-max": round(board.temp_chip_c + 6.0, 1) if live else 0.0,
                    "chip-temp-min": round(board.temp_chip_c - 6.0, 1) if live else 0.0,
                    "effective-chips": board.chips,
                    "factory-hash": round(dev.spec.nominal_ths * board.share, 2),
                    "freq": 625.0 if live and dev.mining else 0.0,
                    "hash-average": round(hav, 2),
                    "hash-realtime": round(h5s, 2),
                    "id": board.index,
                    "status": "alive" if live else "dead",
                }
            )
        return out


def _whole(value: object) -> int | None:
    """A whole number sent as a number or as digits (btminer's parameters are often strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


_BTMINER_COMMANDS = frozenset(
    {"get_version", "status", "get_miner_info", "get_psu", "get_error_code", "get_token"}
)
# v3 error reasons by code family (code // 10), worded after the capture's style.
_REASONS = {
    54: "Slot error reading chip id.",
    56: "Slot loss of balance error.",
    35: "Slot temperature protecting.",
}

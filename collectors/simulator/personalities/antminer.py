"""Stock Antminer X19/X21 firmware: bmminer's API on 4028 ("cgminer 1.0.0") and the digest-auth web CGI.

Shapes, key order, value types and units follow the captures in tests/captures/device-responses/
antminer/: s19pro_* (2022 firmware, asic-rs), s19-sleeping/-overheating/-really-cold (2020 firmware,
foreman-apps) and s21_web_get_system_info. Quirks kept on purpose:
- STATS elements are glued with `}{` (no comma), as bmminer-family firmware prints them.
- `chain_rateN` and the `temp_pcbN`/`temp_chipN`/`temp_picN` dash lists are strings; an empty slot has
  `chain_acnN` 0, `chain_acsN` "" and `chain_rateN` "".
- typo keys: devs `Tenperature`, pools `Pool Stale%%`.
- a multi-command (`summary+pools`) is refused with `Invalid command` (X19 bmminer treats the whole
  string as one command name; pyasic then falls back to one connection per command).
- `devdetails` and `config` answer `Access denied` (Code 45).
Sleeping keeps Mode 2 with GHS 5s 0.0 and every chip shown `x`; a dead board has no chips and no temps.
Where the overheating capture shows a board already cut (GHS 5s 0.0), the simulator instead keeps
hashing hot (the moment before protection trips), so a client sees temps of 93-97 with a live hashrate.

The web pages (stats.cgi, summary.cgi, get_miner_conf.cgi, get_blink_status.cgi) have no capture in
the reference set; their field names are the ones pyasic 0.79 reads (`chain[].rate_real` in GH,
`asic_num`, `temp_pcb[]`, `temp_chip[]`, `sn`; `SUMMARY[0].status[]`; `bitmain-work-mode`; `blink`).

Operator actions (issue 19), with the paths and bodies pyasic 0.79's modern Antminer web API sends (no
capture of their answers exists; the codes B000/B100/M000 are the ones pyasic checks):
- `POST /cgi-bin/blink.cgi {"blink": "true"|"false"}` (a JSON boolean is taken too): the locate light,
  readable on `get_blink_status.cgi`.
- `POST /cgi-bin/set_miner_conf.cgi` with the whole configuration: `miner-mode` 1 sleeps, 0 mines; the
  `pools` sent replace the device's, so a client that drops them loses them, as on the device.
- `GET|POST /cgi-bin/reboot.cgi`: answers, then the controller restarts (the server takes it down).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import cache

from collectors.simulator.device import BoardState, PoolState, SimDevice, SimState
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.base import HttpRequest, HttpResponse, RpcRequest
from collectors.simulator.personalities.http_reply import (
    digest_challenge,
    digest_ok,
    html_response,
    json_body,
    json_response,
    not_found,
)

Json = cg.Json
Handler = Callable[[SimDevice, str | None, float], Json]

REALM = "antMiner Configuration"
WEB_USER, WEB_PASSWORD = "root", "root"
SLOTS = 4  # X19/X21 firmware always reports four chain slots


@cache  # strptime is slow and a fleet has a handful of firmware versions
def compile_time(firmware_version: str) -> str:
    """bmminer's CompileTime for a "YYYYMMDD" firmware build date: "Tue Dec  6 16:12:30 CST 2022"."""
    try:
        t = time.strptime(firmware_version[:8], "%Y%m%d")
    except ValueError:
        t = time.strptime("20221206", "%Y%m%d")
    return time.strftime("%a %b ", t) + f"{t.tm_mday:2d}" + time.strftime(" 16:12:30 CST %Y", t)


@cache  # a few (chips, mark) pairs per fleet, rendered on every stats reply
def chip_string(chips: int, mark: str) -> str:
    """`chain_acsN`: one character per chip in space-separated groups (" ooo ooo ...")."""
    if chips <= 0:
        return ""
    group = max(1, math.ceil(chips / 38))
    out = []
    for start in range(0, chips, group):
        out.append(" " + mark * min(group, chips - start))
    return "".join(out)


def _dashes(values: list[int]) -> str:
    return "-".join(map(str, values))


def board_temps(dev: SimDevice, board: BoardState) -> tuple[list[int], list[int], list[int]]:
    """Four-sensor pcb, chip and pic readings for one board, in the captures' relation (chip = pcb + 5)."""
    if dev.state is SimState.OVERHEATING and board.alive:
        chip_max = int(min(97, max(93, round(board.temp_chip_c - 10))))
        pcb_max = chip_max - 5
    else:
        pcb_max = round(board.temp_pcb_c)
        chip_max = pcb_max + 5
    pcb = [pcb_max, round(pcb_max * 0.62) + board.index * 2, pcb_max - 9, pcb_max - 8]
    chip = [v + 5 for v in pcb]
    pic = [v - 10 for v in pcb]
    chip[0] = chip_max
    return pcb, chip, pic


def average_ghs(dev: SimDevice) -> float:
    """Average hashrate since boot (GH/s): nominal with a device-specific offset under 1%."""
    if not dev.mining:
        return 0.0
    factor = sum(b.share for b in dev.boards if b.alive)
    offset = ((dev.seed % 201) - 100) / 12_000.0
    return round(dev.spec.nominal_ths * 1000.0 * factor * (1.0 + offset), 2)


def miner_id(dev: SimDevice) -> str:
    """bmminer's 16-hex-digit miner_id, stable per device."""
    return f"{(dev.seed * 0x9E3779B1) & 0xFFFFFFFFFFFFFFFF:016x}"


class StockAntminer:
    """Bitmain's own firmware on an X19/X21 machine."""

    description = "cgminer 1.0.0"
    accepts_multi = False
    glue_stats = True
    denied: frozenset[str] = frozenset({"devdetails", "config"})

    # ---- RPC ------------------------------------------------------------------------------------

    def describe(self, dev: SimDevice) -> str:
        """The STATUS Description naming the firmware."""
        return self.description

    def handlers(self) -> dict[str, Handler]:
        """Command name -> reply builder."""
        return {
            "version": self.version,
            "stats": self.stats,
            "summary": self.summary,
            "pools": self.pools,
            "devs": self.devs,
        }

    def rpc(self, dev: SimDevice, request: RpcRequest, now: float) -> bytes:
        """Reply to one 4028 request, trailing NUL included."""
        dev.advance(now)
        if request.multi and not self.accepts_multi:
            reply = cg.error(cg.CODE_INVALID, "Invalid command", self.describe(dev), now)
            return self._render(reply, request.as_json)
        if request.multi:
            parts = {name: self.reply(dev, name, request.parameter, now) for name in request.commands}
            if not request.as_json:
                return cg.finish("".join(cg.render_text(p) for p in parts.values()))
            return cg.finish(cg.render_multi(parts, self._glue()))
        return self._render(self.reply(dev, request.commands[0], request.parameter, now), request.as_json)

    def reply(self, dev: SimDevice, command: str, parameter: str | None, now: float) -> Json:
        """The reply object for one command."""
        name = command.lower()
        if name == "privileged":
            return cg.privileged(dev.api_write_open, self.describe(dev), now)
        if name in self.denied:
            return cg.error(
                cg.CODE_ACCESS_DENIED, f"Access denied to '{name}' command", self.describe(dev), now
            )
        handler = self.handlers().get(name)
        if handler is None:
            return cg.error(cg.CODE_INVALID, "Invalid command", self.describe(dev), now)
        return handler(dev, parameter, now)

    def _glue(self) -> tuple[str, ...]:
        return ("STATS",) if self.glue_stats else ()

    def _render(self, reply: Json, as_json: bool) -> bytes:
        if as_json:
            return cg.finish(cg.render_json(reply, self._glue()))
        return cg.finish(cg.render_text(reply))

    def type_string(self, dev: SimDevice) -> str:
        """The `Type` the firmware reports."""
        return dev.spec.wire_type

    def version_block(self, dev: SimDevice) -> Json:
        """The block `version` and `stats[0]` share."""
        return {
            "BMMiner": "1.0.0",
            "Miner": "49.0.1.3",
            "CompileTime": compile_time(dev.firmware_version),
            "Type": self.type_string(dev),
        }

    def version(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`version`: VERSION[0] with API 3.1."""
        block = self.version_block(dev)
        item: Json = {"BMMiner": block["BMMiner"], "API": "3.1"}
        item.update({k: v for k, v in block.items() if k != "BMMiner"})
        return cg.envelope("VERSION", [item], cg.CODE_VERSION, "CGMiner versions", self.describe(dev), now)

    def stats_body(self, dev: SimDevice, now: float) -> Json:
        """STATS[1]: the chain table, in the foreman captures' key order."""
        mining = dev.mining
        ghs_5s = round(dev.hashrate_ths * 1000.0, 2) if mining else 0.0
        ghs_av = average_ghs(dev)
        alive = [b for b in dev.boards if b.alive]
        freq = 525 if dev.spec.nominal_ths < 150 else 490
        body: Json = {
            "STATS": 0,
            "ID": "BTM_SOC0",
            "Elapsed": dev.uptime_s(now),
            "Calls": 0,
            "Wait": 0,
            "Max": 0,
            "Min": 99999999,
            "GHS 5s": float(ghs_5s),
            "GHS av": float(ghs_av),
            "rate_30m": float(round(ghs_av * (1.0 + dev.rng.uniform(-0.002, 0.002)), 2) if mining else 0.0),
            "Mode": 2,
            "miner_count": len(alive),
            "frequency": freq,
            "fan_num": len(dev.fans_rpm),
        }
        for i, rpm in enumerate(dev.fans_rpm, start=1):
            body[f"fan{i}"] = int(rpm // 60 * 60)
        body["temp_num"] = len(alive)
        temps = {b.index: board_temps(dev, b) for b in dev.boards}
        for b in alive:
            pcb, chip, _ = temps[b.index]
            body[f"temp{b.index + 1}"] = max(pcb)
            body[f"temp2_{b.index + 1}"] = max(chip)
        by_slot = {b.index: b for b in dev.boards}
        for key, pick in (("temp_pcb", 0), ("temp_chip", 1), ("temp_pic", 2)):
            for slot in range(SLOTS):
                board = by_slot.get(slot)
                values = temps[slot][pick] if board is not None and board.alive else [0, 0, 0, 0]
                body[f"{key}{slot + 1}"] = _dashes(values)
        body["total_rateideal"] = float(dev.spec.nominal_ths * 1000.0)
        body["rate_unit"] = "GH"
        body["total_freqavg"] = freq
        body["total_acn"] = sum(b.chips for b in dev.boards)
        body["total rate"] = float(ghs_av)
        body["temp_max"] = 0
        body["no_matching_work"] = sum(b.hw_errors for b in dev.boards)
        mark = "o" if mining else "x"
        for slot in range(SLOTS):
            board = by_slot.get(slot)
            body[f"chain_acn{slot + 1}"] = board.chips if board is not None else 0
        for slot in range(SLOTS):
            board = by_slot.get(slot)
            body[f"chain_acs{slot + 1}"] = chip_string(board.chips, mark) if board is not None else ""
        for slot in range(SLOTS):
            board = by_slot.get(slot)
            body[f"chain_hw{slot + 1}"] = board.hw_errors if board is not None else 0
        for slot in range(SLOTS):
            board = by_slot.get(slot)
            if board is None or not board.alive:
                body[f"chain_rate{slot + 1}"] = ""
            else:
                body[f"chain_rate{slot + 1}"] = f"{board.hashrate_ths * 1000.0:.2f}"
        for slot in range(SLOTS):
            board = by_slot.get(slot)
            body[f"freq{slot + 1}"] = freq if board is not None and board.alive else 0
        body["miner_version"] = "49.0.1.3"
        body["miner_id"] = miner_id(dev)
        return body

    def stats(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`stats`: the version block, then the chain table."""
        items = [self.version_block(dev), self.stats_body(dev, now)]
        return cg.envelope("STATS", items, cg.CODE_STATS, "CGMiner stats", self.describe(dev), now)

    def summary_body(self, dev: SimDevice, now: float) -> Json:
        """SUMMARY[0] with the GHS fields (s19pro_summary.json)."""
        elapsed = dev.uptime_s(now)
        ghs_av = average_ghs(dev)
        accepted = sum(p.accepted for p in dev.pools)
        rejected = sum(p.rejected for p in dev.pools)
        diff = dev.pools[0].difficulty if dev.pools else 65536.0
        hw = sum(b.hw_errors for b in dev.boards)
        return {
            "Elapsed": elapsed,
            "GHS 5s": float(round(dev.hashrate_ths * 1000.0, 2) if dev.mining else 0.0),
            "GHS av": float(ghs_av),
            "GHS 30m": float(round(ghs_av * 1.0004, 2)),
            "Found Blocks": 0,
            "Getwork": elapsed // 12 + 3,
            "Accepted": accepted,
            "Rejected": rejected,
            "Hardware Errors": hw,
            "Utility": round(accepted / max(elapsed, 1) * 60.0, 2),
            "Discarded": elapsed * 90,
            "Stale": accepted // 4000,
            "Get Failures": 1 if dev.state is SimState.POOL_DOWN else 0,
            "Local Work": elapsed * 90 + 3978,
            "Remote Failures": 0,
            "Network Blocks": elapsed // 600,
            "Total MH": round(ghs_av * 1000.0 * elapsed, 1),
            "Work Utility": round(ghs_av * 13.9, 2),
            "Difficulty Accepted": float(accepted * diff),
            "Difficulty Rejected": float(rejected * diff),
            "Difficulty Stale": 0.0,
            "Best Share": int(diff * 24_000) if accepted else 0,
            "Device Hardware%": 0.0,
            "Device Rejected%": round(100.0 * rejected / max(accepted + rejected, 1), 4),
            "Pool Rejected%": round(100.0 * rejected / max(accepted + rejected, 1), 4),
            "Pool Stale%": 0.0,
            "Last getwork": int(now),
        }

    def summary(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`summary`."""
        body = self.summary_body(dev, now)
        return cg.envelope("SUMMARY", [body], cg.CODE_SUMMARY, "Summary", self.describe(dev), now)

    def pool_item(self, dev: SimDevice, index: int, now: float) -> Json:
        """One POOLS element (s19pro_pools.json), typo key `Pool Stale%%` included."""
        pool = dev.pools[index]
        active = pool.active and pool.alive
        url_host = pool.url.split("://", 1)[-1].rsplit(":", 1)[0]
        diff = pool.difficulty
        return {
            "POOL": index,
            "URL": pool.url,
            "Status": "Alive" if pool.alive else "Dead",
            "Priority": pool.priority,
            "Quota": 1,
            "Long Poll": "N",
            "Getworks": dev.uptime_s(now) // 12 + 3 if active else 3,
            "Accepted": pool.accepted,
            "Rejected": pool.rejected,
            "Discarded": dev.uptime_s(now) * 90 if active else 0,
            "Stale": pool.stale,
            "Get Failures": 0 if pool.alive else 1,
            "Remote Failures": 0,
            "User": pool.user,
            "Last Share Time": "0:00:03" if active and pool.accepted else "0",
            "Diff": f"{diff / 1024:.0f}K" if active else "",
            "Diff1 Shares": 0,
            "Proxy Type": "",
            "Proxy": "",
            "Difficulty Accepted": float(pool.accepted * diff),
            "Difficulty Rejected": float(pool.rejected * diff),
            "Difficulty Stale": 0.0,
            "Last Share Difficulty": float(diff) if active else 0.0,
            "Has Stratum": True,
            "Stratum Active": active,
            "Stratum URL": url_host if active else "",
            "Has GBT": False,
            "Best Share": float(diff * 24_000) if pool.accepted else 0.0,
            "Pool Rejected%": round(100.0 * pool.rejected / max(pool.accepted + pool.rejected, 1), 4),
            "Pool Stale%%": 0.0,
        }

    def pools(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`pools`."""
        items = [self.pool_item(dev, i, now) for i in range(len(dev.pools))]
        return cg.envelope("POOLS", items, cg.CODE_POOLS, f"{len(items)} Pool(s)", self.describe(dev), now)

    def devs(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devs`: X19 shows one near-empty BTM_SOC entry with the `Tenperature` typo."""
        accepted = sum(p.accepted for p in dev.pools)
        rejected = sum(p.rejected for p in dev.pools)
        diff = dev.pools[0].difficulty if dev.pools else 65536.0
        item: Json = {
            "ASC": 0,
            "Name": "BTM_SOC",
            "ID": 0,
            "Enabled": "Y",
            "Status": "Alive",
            "Tenperature": 0.0,
            "MHS av": 0.0,
            "MHS 5s": 0.0,
            "Accepted": accepted,
            "Rejected": rejected,
            "Hardware Errors": 0,
            "Utility": 0.0,
            "Last Share Pool": 0,
            "Last Share Time": int(now),
            "Total MH": 0.0,
            "Diff1 Work": 0,
            "Difficulty Accepted": int(accepted * diff),
            "Difficulty Rejected": int(rejected * diff),
            "Last Share Difficulty": int(now),
            "Last Valid Work": int(now),
            "Device Hardware%": 0.0,
            "Device Rejected%": 0.0,
            "Device Elapsed": dev.uptime_s(now),
        }
        return cg.envelope("DEVS", [item], cg.CODE_DEVS, "1 ASC(s)", self.describe(dev), now)

    # ---- web --------------------------------------------------------------------------------------

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """lighttpd with digest auth in front of every page, as on the real controller."""
        dev.advance(now)
        if not digest_ok(request, REALM, WEB_USER, dev.web_password or WEB_PASSWORD):
            return digest_challenge(REALM, f"{int(now):x}{dev.seed & 0xFFFFFF:06x}")
        path = request.path
        if path in ("/", "/index.html"):
            return html_response(
                f"<html><head><title>{dev.spec.wire_type}</title></head>"
                "<body><div id='app'>Antminer</div></body></html>"
            )
        pages: dict[str, Callable[[SimDevice, float], Json]] = {
            "/cgi-bin/get_system_info.cgi": self.web_system_info,
            "/cgi-bin/stats.cgi": self.web_stats,
            "/cgi-bin/summary.cgi": self.web_summary,
            "/cgi-bin/get_miner_conf.cgi": self.web_miner_conf,
            "/cgi-bin/get_blink_status.cgi": self.web_blink,
            "/cgi-bin/get_network_info.cgi": self.web_network_info,
        }
        actions: dict[str, Callable[[SimDevice, bytes], Json | None]] = {
            "/cgi-bin/blink.cgi": self.web_set_blink,
            "/cgi-bin/set_miner_conf.cgi": self.web_set_miner_conf,
            "/cgi-bin/reboot.cgi": self.web_reboot,
        }
        action = actions.get(path)
        if action is not None:
            answer = action(dev, request.body)
            if answer is None:
                return json_response(
                    {"stats": "error", "code": "E000", "msg": "bad request"}, 400, "Bad Request"
                )
            return json_response(answer)
        page = pages.get(path)
        if page is None:
            return not_found()
        return json_response(page(dev, now))

    # ---- actions ----------------------------------------------------------------------------------

    def web_set_blink(self, dev: SimDevice, body: bytes) -> Json | None:
        """blink.cgi: `{"blink": "true"|"false"}` turns the locate light on or off."""
        value = json_body(body).get("blink")
        if value in ("true", True):
            dev.locate = True
            return {"code": "B000", "msg": "blink on"}
        if value in ("false", False):
            dev.locate = False
            return {"code": "B100", "msg": "blink off"}
        return None

    def web_set_miner_conf(self, dev: SimDevice, body: bytes) -> Json | None:
        """set_miner_conf.cgi: `miner-mode` 1 sleeps, 0 mines; `pools` replace the device's."""
        conf = json_body(body)
        mode = conf.get("miner-mode")
        if mode not in (0, 1, "0", "1"):
            return None
        pools = conf.get("pools")
        kept = list(dev.pools)
        dev.pools = []  # the whole configuration is replaced: pools not sent are gone
        sent = pools if isinstance(pools, list) else []
        for i, item in enumerate(p for p in sent if isinstance(p, dict) and p.get("url")):
            url = str(item["url"])
            old = next((k for k in kept if k.url == url), None)
            dev.pools.append(old or PoolState(url=url, user=str(item.get("user", "")), priority=i))
        dev.set_asleep(mode in (1, "1"))
        return {"stats": "success", "code": "M000", "msg": "OK!"}

    def web_reboot(self, dev: SimDevice, body: bytes) -> Json | None:
        """reboot.cgi: answer, then restart."""
        dev.reboot_requested = True
        return {"stats": "success", "code": "R000", "msg": "rebooting"}

    def web_system_info(self, dev: SimDevice, now: float) -> Json:
        """get_system_info.cgi (s21_web_get_system_info.json)."""
        return {
            "minertype": dev.spec.wire_type,
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": dev.mac,
            "hostname": dev.hostname,
            "ipaddress": dev.ip,
            "netmask": "255.255.0.0",
            "gateway": "",
            "dnsservers": "",
            "system_mode": "GNU/Linux",
            "system_kernel_version": "Linux 4.9.113 #1 SMP PREEMPT " + compile_time(dev.firmware_version),
            "system_filesystem_version": _filesystem_version(dev),
            "firmware_type": "Release",
            "serinum": dev.serial,
        }

    def web_network_info(self, dev: SimDevice, now: float) -> Json:
        """get_network_info.cgi."""
        return {
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": dev.mac,
            "ipaddress": dev.ip,
            "netmask": "255.255.0.0",
            "conf_nettype": "DHCP",
            "conf_hostname": dev.hostname,
            "conf_ipaddress": "",
            "conf_netmask": "",
            "conf_gateway": "",
            "conf_dnsservers": "",
        }

    def _web_status(self, now: float, msg: str) -> Json:
        return {"STATUS": "S", "when": int(now), "Msg": msg, "api_version": "1.0.0"}

    def _web_info(self, dev: SimDevice) -> Json:
        return {
            "miner_version": "49.0.1.3",
            "CompileTime": compile_time(dev.firmware_version),
            "type": dev.spec.wire_type,
        }

    def _web_rates(self, dev: SimDevice, now: float) -> Json:
        """The uptime and hashrate figures (GH/s) stats.cgi and summary.cgi both open with."""
        return {
            "elapsed": dev.uptime_s(now),
            "rate_5s": round(dev.hashrate_ths * 1000.0, 2) if dev.mining else 0.0,
            "rate_30m": average_ghs(dev),
            "rate_avg": average_ghs(dev),
            "rate_ideal": dev.spec.nominal_ths * 1000.0,
            "rate_unit": "GH",
        }

    def web_stats(self, dev: SimDevice, now: float) -> Json:
        """stats.cgi: per-chain figures, hashrates in GH/s."""
        chains: list[Json] = []
        for b in dev.boards:
            pcb, chip, pic = board_temps(dev, b)
            if not b.alive:
                pcb = chip = pic = [0, 0, 0, 0]
            chains.append(
                {
                    "index": b.index,
                    "freq_avg": 525 if b.alive else 0,
                    "rate_ideal": round(dev.spec.nominal_ths * 1000.0 * b.share, 2),
                    "rate_real": round(b.hashrate_ths * 1000.0, 2),
                    "asic_num": b.chips,
                    "asic": chip_string(b.chips, "o" if dev.mining else "x").replace(" ", ""),
                    "temp_pic": pic,
                    "temp_pcb": pcb,
                    "temp_chip": chip,
                    "hw": b.hw_errors,
                    "eeprom_loaded": True,
                    "sn": f"{dev.serial[:6]}B{b.index}{dev.serial[-8:]}",
                    "hwp": 0.0,
                }
            )
        body: Json = {
            **self._web_rates(dev, now),
            "chain_num": sum(1 for b in dev.boards if b.alive),
            "fan_num": len(dev.fans_rpm),
            "fan": [int(r // 60 * 60) for r in dev.fans_rpm],
            "hwp_total": 0.0,
            "miner-mode": 1 if dev.state is SimState.SLEEPING else 0,
            "freq-level": 100,
            "chain": chains,
        }
        return {"STATUS": self._web_status(now, "stats"), "INFO": self._web_info(dev), "STATS": [body]}

    def web_summary(self, dev: SimDevice, now: float) -> Json:
        """summary.cgi: the status lights the web UI shows (`s` ok, `w` warning, `e` error)."""
        dead = any(not b.alive for b in dev.boards)
        checks = [
            ("rate", "w" if dead else "s", "chain lost" if dead else ""),
            ("network", "e" if dev.state is SimState.POOL_DOWN else "s", "pool connection failed"),
            ("fans", "s", ""),
            ("temp", "e" if dev.state is SimState.OVERHEATING else "s", "temperature too high"),
        ]
        status = [{"type": t, "status": s, "code": 0, "msg": m if s != "s" else ""} for t, s, m in checks]
        body: Json = {
            **self._web_rates(dev, now),
            "hw_all": sum(b.hw_errors for b in dev.boards),
            "bestshare": 0,
            "status": status,
        }
        return {"STATUS": self._web_status(now, "summary"), "INFO": self._web_info(dev), "SUMMARY": [body]}

    def web_miner_conf(self, dev: SimDevice, now: float) -> Json:
        """get_miner_conf.cgi: pools and `bitmain-work-mode` ("1" while sleeping)."""
        return {
            "pools": [{"url": p.url, "user": p.user, "pass": "x"} for p in dev.pools],
            "api-listen": True,
            "api-network": True,
            "api-groups": "A:stats:pools:devs:summary:version",
            "api-allow": "A:0/0,W:*",
            "bitmain-fan-ctrl": False,
            "bitmain-fan-pwm": "100",
            "bitmain-use-vil": True,
            "bitmain-freq": "525",
            "bitmain-voltage": "1360",
            "bitmain-ccdelay": "0",
            "bitmain-pwth": "0",
            "bitmain-work-mode": "1" if dev.state is SimState.SLEEPING else "0",
            "bitmain-freq-level": "100",
        }

    def web_blink(self, dev: SimDevice, now: float) -> Json:
        """get_blink_status.cgi."""
        return {"blink": dev.locate}


def _filesystem_version(dev: SimDevice) -> str:
    build = dev.firmware_version[2:8] if len(dev.firmware_version) >= 8 else "221206"
    family = dev.spec.wire_type.replace("Antminer ", "").split(" ")[0]
    return f"FR-1.12({build}-{family})"

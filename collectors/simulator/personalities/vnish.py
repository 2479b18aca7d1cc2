"""VNish (AnthillOS web UI) on Antminer X19/X21 hardware.

There is no capture of VNish 1.x replies over RPC. They are derived from stock X19 bmminer (same
board table, GH/s) with what the VNish 3.8.6 capture (antminer/s9-nicehash-vnish3.8.6_stats.raw.txt)
and pyasic issues #379/#272 show VNish changes: `Type` carries the firmware ("Antminer S21 (Vnish
1.2.6)"), STATS elements are glued `}{`, and multi-commands are accepted (cgminer 4.x API). The web
API (`/api/v1/unlock` -> token, `/api/v1/summary`, `/api/v1/settings`, `/api/v1/info`) has the field
paths pyasic 0.79 reads; its landing page says "AnthillOS".

Operator actions (issue 19), as pyasic 0.79 sends them (POST, token in `Authorization`): `mining/pause`
and `mining/resume` (sleep, wake), `mining/restart`, `system/reboot`, and `find-miner`, which toggles the
locate light and answers `{"on": <new state>}`. No capture of their answers exists; the others answer an
empty body, which pyasic takes for success.
"""

from __future__ import annotations

import hashlib

from collectors.simulator.device import SimDevice, SimState
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.antminer import StockAntminer, average_ghs
from collectors.simulator.personalities.base import HttpRequest, HttpResponse
from collectors.simulator.personalities.http_reply import html_response, json_body, json_response, not_found

Json = cg.Json
WEB_PASSWORD = "admin"
_ACTIONS = frozenset({"find-miner", "mining/pause", "mining/resume", "mining/restart", "system/reboot"})


class VNish(StockAntminer):
    """VNish firmware."""

    accepts_multi = True
    glue_stats = True
    denied: frozenset[str] = frozenset({"config"})

    def type_string(self, dev: SimDevice) -> str:
        """`Type` with the firmware in brackets."""
        return f"{dev.spec.wire_type} (Vnish {dev.firmware_version})"

    def token(self, dev: SimDevice) -> str:
        """The session token `/api/v1/unlock` hands out (stable per device)."""
        return hashlib.sha256(f"vnish-{dev.serial}".encode()).hexdigest()[:32]

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """AnthillOS: the landing page and the token-protected JSON API."""
        dev.advance(now)
        path = request.path
        if path in ("/", "/index.html"):
            return html_response(
                "<!doctype html><html><head><title>AnthillOS</title></head>"
                "<body><div id='app'>AnthillOS</div></body></html>"
            )
        if path == "/api/v1/unlock" and request.method == "POST":
            if json_body(request.body).get("pw") == (dev.web_password or WEB_PASSWORD):
                return json_response({"token": self.token(dev)})
            return json_response({"err": "Wrong password"}, 401, "Unauthorized")
        if not path.startswith("/api/v1/"):
            return not_found()
        auth = request.headers.get("authorization", "").removeprefix("Bearer ")
        if auth != self.token(dev):
            return json_response({"err": "Unauthorized"}, 401, "Unauthorized")
        name = path.removeprefix("/api/v1/")
        if request.method == "POST" and name in _ACTIONS:
            return self.web_action(dev, name)
        pages = {"summary": self.web_vnish_summary, "settings": self.web_settings, "info": self.web_info}
        page = pages.get(name)
        if page is None:
            return not_found()
        return json_response(page(dev, now))

    def web_action(self, dev: SimDevice, name: str) -> HttpResponse:
        """One of the POST actions (see the module docstring)."""
        if name == "find-miner":
            dev.locate = not dev.locate
            return json_response({"on": dev.locate})
        if name in ("mining/pause", "mining/resume"):
            dev.set_asleep(name == "mining/pause")
        elif name in ("system/reboot", "mining/restart"):
            dev.reboot_requested = name == "system/reboot"
        return HttpResponse(status=200, reason="OK", headers=[("Content-Type", "application/json")])

    def _network(self, dev: SimDevice) -> Json:
        return {"mac": dev.mac, "hostname": dev.hostname, "ip": dev.ip, "dhcp": True}

    def web_vnish_summary(self, dev: SimDevice, now: float) -> Json:
        """`/api/v1/summary`."""
        state = {
            SimState.SLEEPING: "stopped",
            SimState.POOL_DOWN: "failure",
        }.get(dev.state, "mining")
        chains: list[Json] = [
            {
                "id": b.index + 1,
                "status": {"state": "mining" if b.alive and dev.mining else "stopped"},
                "hashrate_rt": round(b.hashrate_ths * 1000.0, 2),
                "hashrate_ideal": round(dev.spec.nominal_ths * 1000.0 * b.share, 2),
                "chips": b.chips,
                "pcb_temp": {"min": round(b.temp_pcb_c) - 8, "max": round(b.temp_pcb_c)},
                "chip_temp": {"min": round(b.temp_chip_c) - 8, "max": round(b.temp_chip_c)},
                "hw_errors": b.hw_errors,
            }
            for b in dev.boards
        ]
        return {
            "miner": {
                "miner_type": self.type_string(dev),
                "miner_status": {"miner_state": state, "miner_state_time": dev.uptime_s(now)},
                "average_hashrate": average_ghs(dev),
                "instant_hashrate": round(dev.hashrate_ths * 1000.0, 2) if dev.mining else 0.0,
                "hr_nominal": dev.spec.nominal_ths * 1000.0,
                "power_usage": int(dev.power_w),
                "power_efficiency": round(dev.power_w / max(dev.hashrate_ths, 0.001), 1),
                "hw_errors_percent": 0.0,
                "chains": chains,
                "cooling": {"fans": [{"id": i, "rpm": r} for i, r in enumerate(dev.fans_rpm)]},
            },
            "system": {
                "os": "GNU/Linux",
                "uptime": str(dev.uptime_s(now)),
                "network_status": self._network(dev),
            },
        }

    def web_settings(self, dev: SimDevice, now: float) -> Json:
        """`/api/v1/settings`: the overclock preset is the power target in watts."""
        return {"miner": {"overclock": {"preset": str(int(dev.spec.power_w)), "globals": {"freq": 525}}}}

    def web_info(self, dev: SimDevice, now: float) -> Json:
        """`/api/v1/info`."""
        return {
            "miner": self.type_string(dev),
            "model": dev.spec.wire_type.removeprefix("Antminer "),
            "fw_name": "Vnish",
            "fw_version": dev.firmware_version,
            "serial": dev.serial,
            "system": {"network_status": self._network(dev)},
        }

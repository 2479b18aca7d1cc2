"""Operator actions per firmware dialect: one class per dialect, one method per action.

Each class declares what it `supports` and, for the rest, why not (`reasons`); `collectors.actions`
refuses an unsupported action before anything is sent. What goes on the wire (the facts come from
pyasic 0.79's backends and our captures; see docs/actions.md):

- stock Antminer, web CGI with digest auth: `GET /cgi-bin/reboot.cgi`; `POST /cgi-bin/blink.cgi
  {"blink": "true"|"false"}` (answers code B000 / B100), read back on `get_blink_status.cgi`; sleep and
  wake by reading `get_miner_conf.cgi` and posting the same configuration to `set_miner_conf.cgi` with
  `miner-mode` 1 or 0 (the pools and fan settings are sent back unchanged: the CGI replaces the whole
  configuration). No watts setting on stock firmware.
- VNish, web API with its token: `POST /api/v1/system/reboot`, `/mining/pause`, `/mining/resume`, and
  `/find-miner`, a toggle answering `{"on": <state>}` (pressed again when it lands on the wrong state).
- LuxOS, port 4028: `session` (or `logon` when none is open) gives the session id that privileged
  commands take as first parameter: `curtail|<id>,sleep|wakeup`, `ledset|<id>,red,blink|off`,
  `rebootdevice|<id>`, and `profileset|<id>,<profile>` with the highest-watt profile of `profiles` at
  or under the target. The light is read back from `config` `RedLed`.
- Avalon (Canaan cgminer), port 4028: `ascset|0,softoff,1:<unix time>` / `softon`, `ascset|0,led,1-1`
  / `1-0` (read back from the `Led[n]` token of `stats`), `ascset|0,reboot,0`. Its `worklevel` is a
  preset level, not watts: no power target.
- Braiins OS, Whatsminer (API v2's AES-encrypted admin commands, API v3's signed ones), Auradine and
  SealMiner: no action yet; each says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from collectors.client import MinerClient
from collectors.connection import Limits, Timeouts
from collectors.drivers.avalon import modules
from collectors.errors import MinerError, MinerProtocolError
from collectors.framing import Reply
from collectors.identify import Dialect, Identity
from collectors.web import DeviceWeb, WebCredentials
from collectors.wire import first, section, to_float, to_str


class Action(StrEnum):
    """What an operator can ask a miner to do."""

    REBOOT = "reboot"
    LOCATE_ON = "locate_on"
    LOCATE_OFF = "locate_off"
    SLEEP = "sleep"
    WAKE = "wake"
    POWER_TARGET = "power_target"


class UnsupportedActionError(MinerError):
    """The firmware cannot do this action (or not over a protocol we speak); nothing was sent."""

    code = "unsupported_action"

    def __init__(self, dialect: Dialect, action: str, reason: str) -> None:
        super().__init__(f"{dialect}: {action} is not supported: {reason}")
        self.dialect = dialect
        self.action = action
        self.reason = reason


class ActionRefusedError(MinerError):
    """The firmware can do the action, but not as asked (e.g. no power profile at or under the target)."""

    code = "action_refused"


@dataclass(frozen=True, slots=True)
class Link:
    """How to reach one device for an action: its API and web ports, deadlines and web login state."""

    host: str
    api_port: int
    web_port: int
    timeouts: Timeouts
    limits: Limits
    web: DeviceWeb

    def api(self) -> MinerClient:
        """A client for the device's port-4028 API."""
        return MinerClient(self.host, self.api_port, self.timeouts, self.limits)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the device confirmed (see ActionResult)."""

    detail: str
    locate: bool | None = None
    power_target_w: float | None = None


class Control:
    """Base: supports nothing; subclasses override the methods of the actions they support."""

    supports: ClassVar[frozenset[Action]] = frozenset()
    reasons: ClassVar[dict[Action, str]] = {}
    default_reason: ClassVar[str] = "no action is implemented for this firmware"
    reads_locate: ClassVar[bool] = False

    def why_not(self, action: Action) -> str:
        """Why `action` is not supported."""
        return self.reasons.get(action, self.default_reason)

    def why_not_read(self) -> str:
        """Why the locate light cannot be read back."""
        return "the firmware does not report its locate light over a protocol we speak"

    def missing_credentials(
        self, antminer: WebCredentials | None, vnish: WebCredentials | None
    ) -> str | None:
        """Why the action cannot run with these credentials (None: it can)."""
        return None

    async def reboot(self, link: Link) -> Outcome:
        """Restart the controller."""
        raise NotImplementedError

    async def locate(self, link: Link, on: bool) -> Outcome:
        """Turn the locate light on or off."""
        raise NotImplementedError

    async def sleep(self, link: Link) -> Outcome:
        """Stop hashing."""
        raise NotImplementedError

    async def wake(self, link: Link) -> Outcome:
        """Resume hashing."""
        raise NotImplementedError

    async def power_target(self, link: Link, watts: float) -> Outcome:
        """Run at no more than `watts`."""
        raise NotImplementedError

    async def read_locate(self, link: Link) -> bool:
        """The locate light's state now."""
        raise NotImplementedError


def _remaining(link: Link, deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


# ---- stock Antminer: web CGI ----------------------------------------------------------------------

BLINK_ON, BLINK_OFF = "B000", "B100"
CONF_KEPT = ("bitmain-fan-ctrl", "bitmain-fan-pwm")


class AntminerCGIControl(Control):
    """Bitmain's own firmware: the digest-auth CGI of the web UI."""

    supports = frozenset({Action.REBOOT, Action.LOCATE_ON, Action.LOCATE_OFF, Action.SLEEP, Action.WAKE})
    reasons: ClassVar[dict[Action, str]] = {
        Action.POWER_TARGET: "stock Antminer firmware has work modes, not a watts setting"
    }
    reads_locate = True

    def missing_credentials(
        self, antminer: WebCredentials | None, vnish: WebCredentials | None
    ) -> str | None:
        return None if antminer is not None else "no Antminer web credential profile is configured"

    async def _cgi(self, link: Link, path: str, body: dict[str, object] | None, deadline: float) -> Reply:
        return await link.web.antminer_cgi(
            link.host, path, body=body, timeout=_remaining(link, deadline), port=link.web_port
        )

    async def reboot(self, link: Link) -> Outcome:
        answer = await self._cgi(link, "/cgi-bin/reboot.cgi", None, time.monotonic() + link.timeouts.device)
        _refuse_failure(link, "reboot.cgi", answer)
        return Outcome(detail=_words(answer) or "reboot requested")

    async def locate(self, link: Link, on: bool) -> Outcome:
        body: dict[str, object] = {"blink": "true" if on else "false"}
        answer = await self._cgi(link, "/cgi-bin/blink.cgi", body, time.monotonic() + link.timeouts.device)
        code = to_str(answer.get("code"))
        expected = BLINK_ON if on else BLINK_OFF
        if code is not None and code != expected:
            raise MinerProtocolError(f"{link.host}: blink.cgi answered code {code!r}, not {expected}")
        return Outcome(detail=_words(answer) or f"blink {'on' if on else 'off'}", locate=on)

    async def sleep(self, link: Link) -> Outcome:
        return await self._set_mode(link, 1)

    async def wake(self, link: Link) -> Outcome:
        return await self._set_mode(link, 0)

    async def _set_mode(self, link: Link, mode: int) -> Outcome:
        deadline = time.monotonic() + link.timeouts.device
        conf = await self._cgi(link, "/cgi-bin/get_miner_conf.cgi", None, deadline)
        pools = conf.get("pools")
        if not isinstance(pools, list):
            raise MinerProtocolError(f"{link.host}: get_miner_conf.cgi has no pools list; not rewriting it")
        body: dict[str, object] = {key: conf[key] for key in CONF_KEPT if key in conf}
        body["freq-level"] = to_str(conf.get("bitmain-freq-level")) or "100"
        body["miner-mode"] = mode
        body["pools"] = [
            {"url": p.get("url", ""), "user": p.get("user", ""), "pass": p.get("pass", "")}
            for p in pools
            if isinstance(p, dict)
        ]
        answer = await self._cgi(link, "/cgi-bin/set_miner_conf.cgi", body, deadline)
        _refuse_failure(link, "set_miner_conf.cgi", answer)
        return Outcome(detail=_words(answer) or f"miner-mode {mode}")

    async def read_locate(self, link: Link) -> bool:
        answer = await self._cgi(
            link, "/cgi-bin/get_blink_status.cgi", None, time.monotonic() + link.timeouts.device
        )
        value = answer.get("blink", answer.get("isBlinking"))
        if value in (True, "true"):
            return True
        if value in (False, "false"):
            return False
        raise MinerProtocolError(f"{link.host}: get_blink_status.cgi has no blink state")


def _refuse_failure(link: Link, page: str, answer: Reply) -> None:
    """A CGI that says it failed (`stats` error, or a code starting with E) is a MinerProtocolError."""
    stats, code = to_str(answer.get("stats")), to_str(answer.get("code"))
    if (stats is not None and stats.lower() in ("error", "fail", "failed")) or (code or "").startswith("E"):
        raise MinerProtocolError(f"{link.host}: {page} reported failure: {_words(answer)}")


def _words(answer: Reply) -> str:
    return " ".join(str(answer[k]) for k in ("code", "msg", "Msg") if isinstance(answer.get(k), str))


# ---- VNish: web API with token ---------------------------------------------------------------------


class VNishControl(Control):
    """VNish (AnthillOS) firmware's web API."""

    supports = frozenset({Action.REBOOT, Action.LOCATE_ON, Action.LOCATE_OFF, Action.SLEEP, Action.WAKE})
    reasons: ClassVar[dict[Action, str]] = {
        Action.POWER_TARGET: "VNish only takes the watts of a tuned preset, which collectors do not list yet"
    }

    def missing_credentials(
        self, antminer: WebCredentials | None, vnish: WebCredentials | None
    ) -> str | None:
        return None if vnish is not None else "no VNish web credential profile is configured"

    async def _post(self, link: Link, path: str, deadline: float) -> Reply:
        return await link.web.vnish_post(
            link.host, path, timeout=_remaining(link, deadline), port=link.web_port
        )

    async def reboot(self, link: Link) -> Outcome:
        await self._post(link, "system/reboot", time.monotonic() + link.timeouts.device)
        return Outcome(detail="reboot requested")

    async def sleep(self, link: Link) -> Outcome:
        await self._post(link, "mining/pause", time.monotonic() + link.timeouts.device)
        return Outcome(detail="mining paused")

    async def wake(self, link: Link) -> Outcome:
        await self._post(link, "mining/resume", time.monotonic() + link.timeouts.device)
        return Outcome(detail="mining resumed")

    async def locate(self, link: Link, on: bool) -> Outcome:
        deadline = time.monotonic() + link.timeouts.device
        for _ in range(2):  # a toggle: the second press corrects a light that was already in the state
            state = (await self._post(link, "find-miner", deadline)).get("on")
            if not isinstance(state, bool):
                raise MinerProtocolError(f"{link.host}: find-miner answered without its `on` state")
            if state is on:
                return Outcome(detail=f"find-miner {'on' if on else 'off'}", locate=on)
        raise MinerProtocolError(f"{link.host}: find-miner did not reach the asked state")


# ---- LuxOS: API with a session ---------------------------------------------------------------------


class LuxOSControl(Control):
    """LuxOS (LUXminer): privileged API commands under a session."""

    supports = frozenset(Action)
    reads_locate = True

    async def _session(self, client: MinerClient) -> str:
        current = first(await client.command("session"), "SESSION")
        session_id = to_str(current.get("SessionID"))
        if session_id:
            return session_id
        opened = to_str(first(await client.command("logon"), "SESSION").get("SessionID"))
        if not opened:
            raise MinerProtocolError(f"{client.host}: LuxOS logon answered without a SessionID")
        return opened

    async def _privileged(self, link: Link, command: str, *args: str) -> Reply:
        client = link.api()
        session_id = await self._session(client)
        return await client.command(command, ",".join((session_id, *args)))

    async def reboot(self, link: Link) -> Outcome:
        return Outcome(detail=_status_msg(await self._privileged(link, "rebootdevice")))

    async def sleep(self, link: Link) -> Outcome:
        return Outcome(detail=_status_msg(await self._privileged(link, "curtail", "sleep")))

    async def wake(self, link: Link) -> Outcome:
        return Outcome(detail=_status_msg(await self._privileged(link, "curtail", "wakeup")))

    async def locate(self, link: Link, on: bool) -> Outcome:
        reply = await self._privileged(link, "ledset", "red", "blink" if on else "off")
        return Outcome(detail=_status_msg(reply), locate=on)

    async def power_target(self, link: Link, watts: float) -> Outcome:
        client = link.api()
        profiles: list[tuple[float, str]] = []
        for item in section(await client.command("profiles"), "PROFILES"):
            name, power = to_str(item.get("Profile Name")), to_float(item.get("Watts"))
            if name and power:
                profiles.append((power, name))
        fitting = [p for p in profiles if p[0] <= watts]
        if not fitting:
            lowest = min((p[0] for p in profiles), default=None)
            raise ActionRefusedError(
                f"{link.host}: no LuxOS profile at or under {watts:g} W (lowest: {lowest} W)"
            )
        power, name = max(fitting)
        reply = await self._privileged(link, "profileset", name)
        return Outcome(detail=_status_msg(reply) or f"profile {name}", power_target_w=power)

    async def read_locate(self, link: Link) -> bool:
        led = to_str(first(await link.api().command("config"), "CONFIG").get("RedLed"))
        if led is None:
            raise MinerProtocolError(f"{link.host}: LuxOS config has no RedLed")
        return led.lower() in ("on", "blink")


def _status_msg(reply: Reply) -> str:
    status = reply.get("STATUS")
    if isinstance(status, list) and status and isinstance(status[0], dict):
        return str(status[0].get("Msg", ""))
    return ""


# ---- Avalon: ascset --------------------------------------------------------------------------------


class AvalonControl(Control):
    """Canaan's cgminer: `ascset` options."""

    supports = frozenset({Action.REBOOT, Action.LOCATE_ON, Action.LOCATE_OFF, Action.SLEEP, Action.WAKE})
    reasons: ClassVar[dict[Action, str]] = {
        Action.POWER_TARGET: "Avalon's worklevel is a preset level, not a watts setting"
    }
    reads_locate = True

    async def _ascset(self, link: Link, option: str, expect: str) -> Outcome:
        msg = _status_msg(await link.api().command("ascset", f"0,{option}"))
        if expect not in msg:
            raise MinerProtocolError(f"{link.host}: ascset {option} answered {msg!r}")
        return Outcome(detail=msg)

    async def reboot(self, link: Link) -> Outcome:
        return await self._ascset(link, "reboot,0", "success")

    async def sleep(self, link: Link) -> Outcome:
        return await self._ascset(link, f"softoff,1:{int(time.time())}", "success")

    async def wake(self, link: Link) -> Outcome:
        return await self._ascset(link, f"softon,1:{int(time.time())}", "success")

    async def locate(self, link: Link, on: bool) -> Outcome:
        outcome = await self._ascset(link, "led,1-1" if on else "led,1-0", "set OK")
        return Outcome(detail=outcome.detail, locate=on)

    async def read_locate(self, link: Link) -> bool:
        leds = [mm.get("Led") for mm in modules(await link.api().command("stats"))]
        values = [to_float(v) for v in leds if isinstance(v, str)]
        known = [v for v in values if v is not None]
        if not known:
            raise MinerProtocolError(f"{link.host}: Avalon stats carry no Led token")
        return any(v > 0 for v in known)


# ---- firmware without actions yet ------------------------------------------------------------------


class BraiinsControl(Control):
    """Braiins OS: its actions go over gRPC (BOSer) or SSH (BOSminer), which collectors do not speak."""

    default_reason = "Braiins OS takes these commands over its gRPC API or SSH, not supported yet"


class WhatsminerControl(Control):
    """Whatsminer: API v2's admin commands are AES-encrypted with a token from the admin password."""

    default_reason = "Whatsminer admin commands need API v2's encrypted channel, not implemented yet"


class WhatsminerV3Control(Control):
    """Whatsminer API v3: its set commands are signed with the account's salt and token."""

    default_reason = "Whatsminer API v3 set commands need its signed login, not implemented yet"


class OtherAntminerControl(Control):
    """Aftermarket Antminer firmware other than VNish and LuxOS (Hiveon, MaraFW, ...)."""

    default_reason = "this aftermarket Antminer firmware's control API is not implemented"


class NoControl(Control):
    """A device of unknown make, Auradine, SealMiner."""


_CONTROLS: dict[Dialect, Control] = {
    Dialect.LUXOS: LuxOSControl(),
    Dialect.AVALON: AvalonControl(),
    Dialect.BRAIINS: BraiinsControl(),
    Dialect.WHATSMINER: WhatsminerControl(),
    Dialect.WHATSMINER_V3: WhatsminerV3Control(),
}
_ANTMINER_FIRMWARE: dict[str | None, Control] = {"stock": AntminerCGIControl(), "vnish": VNishControl()}
_OTHER_ANTMINER = OtherAntminerControl()
_NONE = NoControl()


def control_for(target: Identity) -> Control:
    """The control for a device's dialect (and, on the Antminer API, its firmware vendor)."""
    if target.dialect is Dialect.ANTMINER:
        return _ANTMINER_FIRMWARE.get(target.firmware_vendor, _OTHER_ANTMINER)
    return _CONTROLS.get(target.dialect, _NONE)

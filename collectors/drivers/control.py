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
- Whatsminer API v2, port 4028 (collectors/btminer_auth.py has the token and the AES channel):
  `get_token`, then encrypted `reboot`, `power_off` (`respbefore` "true") / `power_on`, `set_led`
  (`{"color":"red","period":200,"duration":100,"start":0}` on, `"param":"auto"` off; read back from
  `get_miner_info` `ledstat`, "auto" when off), `adjust_power_limit` (`power_limit` in watts; the firmware
  restarts mining to apply it). Every answer is Code 131 "API command OK"; Code 23/135 mean the key or
  token was refused (a wrong password).
- Whatsminer API v3, port 4433: `get.device.info` for the salt, then signed `set.system.reboot`,
  `set.system.led` (`[{"color":"red","period":200,"duration":100,"start":0}]` / `"auto"`, read back from
  `get.device.info` `system.ledstatus`), `set.miner.service` `stop` / `start`, `set.miner.power_limit`
  (watts). Answers `{"code": 0, "msg": "ok"}`.
- Braiins OS+ (BOSer), gRPC on port 50051 (collectors/grpc_client.py, collectors/protobuf.py):
  `AuthenticationService/Login` for a token, then `ActionsService` `Reboot`, `Stop` / `Start`,
  `SetLocateDeviceStatus` / `GetLocateDeviceStatus`, and `PerformanceService/SetPowerTarget` (watts,
  saved and applied). BOSminer without BOSer has no gRPC API: the connect is refused at once.
- Auradine and SealMiner: no action yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from collectors import protobuf
from collectors.btminer_auth import v2_decrypt, v2_encrypt, v2_token, v3_token
from collectors.client import MinerClient, WhatsminerV3Client, check_status, decode
from collectors.connection import Limits, Timeouts
from collectors.drivers.antminer import red_led_lit
from collectors.drivers.avalon import module_light, modules
from collectors.drivers.whatsminer import led_lit
from collectors.errors import MinerAPIError, MinerAuthError, MinerError, MinerProtocolError
from collectors.framing import Reply
from collectors.grpc_client import GRPC_PORT, GrpcConnection
from collectors.identify import Dialect, Identity
from collectors.web import DeviceWeb, WebCredentials
from collectors.wire import as_mapping, first, section, status_record, to_float, to_str


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
class ActionCredentials:
    """Credential profiles an action may need: the stock Antminer CGI's digest login, the VNish web API
    password, and the Whatsminer API's admin password (v2; the `super` account's for v3, whose account
    is the profile's username), and Braiins OS's gRPC login (factory: root with an empty password).
    LuxOS and Avalon need none."""

    antminer: WebCredentials | None = None
    vnish: WebCredentials | None = None
    whatsminer: WebCredentials | None = None
    braiins: WebCredentials | None = None

    def __repr__(self) -> str:
        profiles = [
            c.profile for c in (self.antminer, self.vnish, self.whatsminer, self.braiins) if c is not None
        ]
        return f"ActionCredentials(profiles={profiles!r})"


@dataclass(frozen=True, slots=True)
class Link:
    """How to reach one device for an action: its API and web ports, deadlines and web login state."""

    host: str
    api_port: int
    web_port: int
    timeouts: Timeouts
    limits: Limits
    web: DeviceWeb
    whatsminer: WebCredentials | None = None
    braiins: WebCredentials | None = None
    grpc_port: int = GRPC_PORT

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

    def missing_credentials(self, credentials: ActionCredentials) -> str | None:
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


def _remaining(deadline: float) -> float:
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

    def missing_credentials(self, credentials: ActionCredentials) -> str | None:
        if credentials.antminer is None:
            return "no Antminer web credential profile is configured"
        return None

    async def _cgi(self, link: Link, path: str, body: dict[str, object] | None, deadline: float) -> Reply:
        return await link.web.antminer_cgi(
            link.host, path, body=body, timeout=_remaining(deadline), port=link.web_port
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

    def missing_credentials(self, credentials: ActionCredentials) -> str | None:
        return None if credentials.vnish is not None else "no VNish web credential profile is configured"

    async def _post(self, link: Link, path: str, deadline: float) -> Reply:
        return await link.web.vnish_post(link.host, path, timeout=_remaining(deadline), port=link.web_port)

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
        lit = red_led_lit(first(await link.api().command("config"), "CONFIG").get("RedLed"))
        if lit is None:
            raise MinerProtocolError(f"{link.host}: LuxOS config has no RedLed")
        return lit


def _status_msg(reply: Reply) -> str:
    record = status_record(reply)
    return str(record.get("Msg", "")) if record is not None else ""


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
        lit = module_light(modules(await link.api().command("stats")))
        if lit is None:
            raise MinerProtocolError(f"{link.host}: Avalon stats carry no Led token")
        return lit


# ---- Whatsminer API v2: token and AES channel ---------------------------------------------------

WM_OK = 131
WM_KEY_REFUSED = frozenset({23, 135})  # "enc json load err" (wrong key), "check token error"
LED_ON: dict[str, object] = {"color": "red", "period": 200, "duration": 100, "start": 0}
NO_WHATSMINER_PROFILE = "no Whatsminer credential profile is configured"


def _whatsminer_profile(link: Link) -> WebCredentials:
    if link.whatsminer is None:  # missing_credentials refused this before anything was sent
        raise MinerAuthError(f"{link.host}: no Whatsminer credential profile")
    return link.whatsminer


class WhatsminerControl(Control):
    """Whatsminer (btminer) API v2: write commands over the encrypted channel of `get_token`."""

    supports = frozenset(Action)
    reads_locate = True

    def missing_credentials(self, credentials: ActionCredentials) -> str | None:
        return None if credentials.whatsminer is not None else NO_WHATSMINER_PROFILE

    async def _write(self, link: Link, command: dict[str, object]) -> Outcome:
        """Send one write command; the decrypted answer must be Code 131."""
        profile = _whatsminer_profile(link)
        client = link.api()
        msg = as_mapping((await client.command("get_token")).get("Msg"))
        parts = [to_str(msg.get(k)) for k in ("time", "salt", "newsalt")]
        if not all(parts):
            raise MinerProtocolError(f"{link.host}: get_token answered without time, salt and newsalt")
        when, salt, newsalt = (str(p) for p in parts)
        token = v2_token(profile.password.get_secret_value(), when, salt, newsalt)
        name = str(command["cmd"])
        reply = await decode(await client.send(v2_encrypt(token, command)))
        enc = reply.get("enc")
        if isinstance(enc, str):
            reply = v2_decrypt(token, enc)
        status = reply.get("STATUS")
        code = reply.get("Code")
        if isinstance(status, str) and status.upper() in ("E", "F") and code in WM_KEY_REFUSED:
            raise MinerAuthError(
                f"{link.host}: Whatsminer refused {name} signed with credential profile "
                f"{profile.profile!r} ({reply.get('Msg')}): wrong admin password?"
            )
        check_status(name, reply)
        if not isinstance(enc, str):
            raise MinerProtocolError(f"{link.host}: Whatsminer answered {name} without encryption")
        if code != WM_OK:
            raise MinerProtocolError(f"{link.host}: Whatsminer answered {name} with code {code!r}")
        return Outcome(detail=str(reply.get("Msg") or "API command OK"))

    async def reboot(self, link: Link) -> Outcome:
        return await self._write(link, {"cmd": "reboot"})

    async def sleep(self, link: Link) -> Outcome:
        return await self._write(link, {"cmd": "power_off", "respbefore": "true"})

    async def wake(self, link: Link) -> Outcome:
        return await self._write(link, {"cmd": "power_on"})

    async def locate(self, link: Link, on: bool) -> Outcome:
        command: dict[str, object] = {"cmd": "set_led"}
        command.update(LED_ON if on else {"param": "auto"})
        outcome = await self._write(link, command)
        return Outcome(detail=outcome.detail, locate=on)

    async def power_target(self, link: Link, watts: float) -> Outcome:
        limit = int(watts)  # whole watts, at or under the target
        outcome = await self._write(link, {"cmd": "adjust_power_limit", "power_limit": str(limit)})
        return Outcome(detail=outcome.detail, power_target_w=float(limit))

    async def read_locate(self, link: Link) -> bool:
        info = as_mapping((await link.api().command("get_miner_info")).get("Msg"))
        lit = led_lit(info.get("ledstat"))
        if lit is None:
            raise MinerProtocolError(f"{link.host}: get_miner_info has no ledstat")
        return lit


# ---- Whatsminer API v3: signed set commands ---------------------------------------------------------


class WhatsminerV3Control(Control):
    """Whatsminer API v3 (port 4433): `set.*` commands signed with the account's password and salt."""

    supports = frozenset(Action)
    reads_locate = True

    def missing_credentials(self, credentials: ActionCredentials) -> str | None:
        return None if credentials.whatsminer is not None else NO_WHATSMINER_PROFILE

    def _client(self, link: Link) -> WhatsminerV3Client:
        return WhatsminerV3Client(link.host, link.api_port, link.timeouts, link.limits)

    async def _set(self, link: Link, cmd: str, param: object) -> Outcome:
        profile = _whatsminer_profile(link)
        client = self._client(link)
        salt = to_str(as_mapping((await client.command("get.device.info", "salt")).get("msg")).get("salt"))
        if not salt:
            raise MinerProtocolError(f"{link.host}: get.device.info answered without a salt")
        ts = int(time.time())
        token = v3_token(cmd, profile.password.get_secret_value(), salt, ts)
        try:
            reply = await client.send(
                {"cmd": cmd, "param": param, "ts": ts, "account": profile.username, "token": token}
            )
        except MinerAPIError as exc:
            raise MinerAPIError(
                cmd, exc.status_code, f"{exc.msg} (signed with credential profile {profile.profile!r})"
            ) from exc
        return Outcome(detail=str(reply.get("msg") or "ok"))

    async def reboot(self, link: Link) -> Outcome:
        return await self._set(link, "set.system.reboot", None)

    async def sleep(self, link: Link) -> Outcome:
        return await self._set(link, "set.miner.service", "stop")

    async def wake(self, link: Link) -> Outcome:
        return await self._set(link, "set.miner.service", "start")

    async def locate(self, link: Link, on: bool) -> Outcome:
        outcome = await self._set(link, "set.system.led", [LED_ON] if on else "auto")
        return Outcome(detail=outcome.detail, locate=on)

    async def power_target(self, link: Link, watts: float) -> Outcome:
        limit = int(watts)
        outcome = await self._set(link, "set.miner.power_limit", limit)
        return Outcome(detail=outcome.detail, power_target_w=float(limit))

    async def read_locate(self, link: Link) -> bool:
        info = as_mapping((await self._client(link).command("get.device.info")).get("msg"))
        lit = led_lit(as_mapping(info.get("system")).get("ledstatus"))
        if lit is None:
            raise MinerProtocolError(f"{link.host}: get.device.info has no system.ledstatus")
        return lit


# ---- Braiins OS+ (BOSer): gRPC on 50051 -------------------------------------------------------------

BOS_API = "/braiins.bos.v1."
SAVE_AND_APPLY = 2  # braiins.bos.v1.SaveAction.SAVE_ACTION_SAVE_AND_APPLY
NO_BRAIINS_PROFILE = "no Braiins OS credential profile is configured"
MINER_STATUS_NOT_STARTED = 1  # braiins.bos.v1.MinerStatus


async def boser_calls(
    host: str, port: int, timeouts: Timeouts, profile: WebCredentials, calls: tuple[tuple[str, bytes], ...]
) -> list[protobuf.Fields]:
    """Log in to BOSer's gRPC API with `profile`, then make `calls` ((Service/Method, encoded request)
    pairs) on the same connection; their decoded answers. A refused login is MinerAuthError naming the
    profile (never the password)."""
    login = protobuf.encode(
        (n, v) for n, v in ((1, profile.username), (2, profile.password.get_secret_value())) if v
    )
    answers: list[protobuf.Fields] = []
    async with GrpcConnection(host, port, timeouts) as conn:
        try:
            reply = await conn.call(BOS_API + "AuthenticationService/Login", login)
        except (MinerAuthError, MinerAPIError) as exc:
            raise MinerAuthError(
                f"{host}: Braiins OS refused the login of credential profile {profile.profile!r}"
            ) from exc
        token = reply.headers.get("authorization")
        if not token:
            raise MinerProtocolError(f"{host}: Braiins OS Login answered without a token")
        for path, request in calls:
            answer = await conn.call(BOS_API + path, request, (("authorization", token),))
            try:
                answers.append(protobuf.decode(answer.message))
            except protobuf.ProtobufError as exc:
                raise MinerProtocolError(f"{host}: {path}: {exc}", data=answer.message) from exc
    return answers


async def bosminer_stopped(host: str, port: int, timeouts: Timeouts, profile: WebCredentials) -> bool:
    """Whether BOSer says bosminer (the mining daemon, which serves the 4028 API) is not running:
    `MinerService/GetMinerDetails` status NOT_STARTED (1) or bosminer_uptime_s 0."""
    details = (await boser_calls(host, port, timeouts, profile, (("MinerService/GetMinerDetails", b""),)))[0]
    return protobuf.number(details, 12) == MINER_STATUS_NOT_STARTED or protobuf.number(details, 10) == 0


class BraiinsControl(Control):
    """Braiins OS+ (BOSer): its public gRPC API (braiins/bos-plus-api, proto/bos/v1) on port 50051.

    `AuthenticationService/Login` {1: username, 2: password} answers an empty message whose
    `authorization` response header is the token the other calls send as `authorization` metadata.
    `ActionsService`: `Reboot`, `Stop` / `Start` (bosminer, the mining daemon, stops and starts; the
    controller and this API stay up), `SetLocateDeviceStatus` {1: enable} and `GetLocateDeviceStatus`
    answering {1: enabled}. `PerformanceService/SetPowerTarget` {1: save_action, 2: Power {1: watt}}
    answers {1: Power}. BOSminer without BOSer has no gRPC API: the connection is refused, fast."""

    supports = frozenset(Action)
    reads_locate = True

    def missing_credentials(self, credentials: ActionCredentials) -> str | None:
        return None if credentials.braiins is not None else NO_BRAIINS_PROFILE

    async def _calls(self, link: Link, calls: tuple[tuple[str, bytes], ...]) -> list[protobuf.Fields]:
        if link.braiins is None:  # missing_credentials refused this before anything was sent
            raise MinerAuthError(f"{link.host}: {NO_BRAIINS_PROFILE}")
        return await boser_calls(link.host, link.grpc_port, link.timeouts, link.braiins, calls)

    async def _call(self, link: Link, path: str, request: bytes = b"") -> protobuf.Fields:
        return (await self._calls(link, ((path, request),)))[0]

    async def reboot(self, link: Link) -> Outcome:
        await self._call(link, "ActionsService/Reboot")
        return Outcome(detail="reboot requested")

    async def sleep(self, link: Link) -> Outcome:
        already = protobuf.number(await self._call(link, "ActionsService/Stop"), 1)
        return Outcome(detail="bosminer was already stopped" if already else "bosminer stopped")

    async def wake(self, link: Link) -> Outcome:
        already = protobuf.number(await self._call(link, "ActionsService/Start"), 1)
        return Outcome(detail="bosminer was already running" if already else "bosminer started")

    async def locate(self, link: Link, on: bool) -> Outcome:
        request = protobuf.encode([(1, True)] if on else [])
        enabled = bool(
            protobuf.number(await self._call(link, "ActionsService/SetLocateDeviceStatus", request), 1)
        )
        if enabled is not on:
            raise MinerProtocolError(
                f"{link.host}: SetLocateDeviceStatus left the light {'on' if enabled else 'off'}"
            )
        return Outcome(detail=f"locate {'on' if on else 'off'}", locate=enabled)

    async def power_target(self, link: Link, watts: float) -> Outcome:
        watt = int(watts)  # whole watts, at or under the target
        request = protobuf.encode([(1, SAVE_AND_APPLY), (2, protobuf.encode([(1, watt)]))])
        answer = await self._call(link, "PerformanceService/SetPowerTarget", request)
        now = protobuf.number(protobuf.message(answer, 1), 1, watt)
        return Outcome(detail=f"power target {now} W", power_target_w=float(now))

    async def read_locate(self, link: Link) -> bool:
        return bool(protobuf.number(await self._call(link, "ActionsService/GetLocateDeviceStatus"), 1))


# ---- firmware without actions yet ------------------------------------------------------------------


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

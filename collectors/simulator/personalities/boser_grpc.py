"""Braiins OS+ (BOSer) gRPC API on port 50051, as the simulator answers it (issue 19).

Service and method names, field numbers and types follow braiins/bos-plus-api (proto/bos/v1):
`AuthenticationService/Login` {1: username, 2: password} answers an empty LoginResponse with the token
in its `authorization` response header; every other method wants that token as `authorization`
metadata (UNAUTHENTICATED otherwise). `ActionsService`: `Start` {1: already_running}, `Stop`
{1: already_stopped}, `Reboot` {}, `SetLocateDeviceStatus` {1: enable} / `GetLocateDeviceStatus`, both
answering {1: enabled}. `PerformanceService/SetPowerTarget` {1: save_action, 2: Power {1: watt}}
answers {1: Power}. `MinerService/GetMinerDetails` answers its `status` (field 12: 2 NORMAL, 1
NOT_STARTED) and `bosminer_uptime_s` (field 10, 0 while bosminer is stopped).

How the device acts: `Stop` stops bosminer, the mining daemon that also serves the CGMiner API on 4028,
so that port stops answering while gRPC and the web UI stay up (the server resets 4028 connections);
`Start` brings it back. A reboot starts bosminer again. The login is the web UI's: `root` with the
device's web password, empty at the factory. The wording of error messages is the simulator's own.

This module's protobuf codec is the simulator's own (it shares no code with collectors/).
"""

from __future__ import annotations

import secrets

from collectors.simulator.device import SimDevice, SimState

OK, INVALID_ARGUMENT, UNIMPLEMENTED, UNAUTHENTICATED = 0, 3, 12, 16
SAVE_ACTIONS = (1, 2, 3)  # SAVE, SAVE_AND_APPLY, SAVE_AND_FORCE_APPLY
USERNAME = "root"
MAX_TOKENS = 16

GrpcAnswer = tuple[int, str, bytes, list[tuple[str, str]]]  # status, message, reply, response headers


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def pb(*fields: tuple[int, int | bytes]) -> bytes:
    """Encode (field, value) pairs: int as a varint, bytes length-delimited."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            out += _varint(number << 3) + _varint(value)
        else:
            out += _varint(number << 3 | 2) + _varint(len(value)) + value
    return bytes(out)


def unpb(data: bytes) -> dict[int, int | bytes]:
    """Decode a flat message (last value wins); raises ValueError on bytes that do not parse."""
    fields: dict[int, int | bytes] = {}
    pos = 0

    def read_varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ValueError("bad varint")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    while pos < len(data):
        key = read_varint()
        if key & 7 == 0:
            fields[key >> 3] = read_varint()
        elif key & 7 == 2:
            size = read_varint()
            if pos + size > len(data):
                raise ValueError("short field")
            fields[key >> 3] = data[pos : pos + size]
            pos += size
        else:
            raise ValueError("unexpected wire type")
    return fields


def _ok(reply: bytes = b"", headers: list[tuple[str, str]] | None = None) -> GrpcAnswer:
    return OK, "", reply, headers or []


def answer(dev: SimDevice, path: str, metadata: dict[str, str], message: bytes, now: float) -> GrpcAnswer:
    """The answer to one unary call on the device's gRPC port."""
    try:
        request = unpb(message)
    except ValueError:
        return INVALID_ARGUMENT, "request does not decode", b"", []
    if path == "/braiins.bos.v1.AuthenticationService/Login":
        return _login(dev, request)
    if metadata.get("authorization") not in dev.bos_tokens:
        return UNAUTHENTICATED, "missing or invalid authorization token", b"", []
    match path:
        case "/braiins.bos.v1.ActionsService/Stop":
            already = dev.bosminer_stopped
            if not already:
                dev.bosminer_stopped = True
                dev.apply_state(SimState.SLEEPING)
            return _ok(pb((1, int(already))) if already else b"")
        case "/braiins.bos.v1.ActionsService/Start":
            already = not dev.bosminer_stopped
            if not already:
                dev.bosminer_stopped = False
                dev.apply_state(SimState.MINING)
                dev.bosminer_started = now
            return _ok(pb((1, 1)) if already else b"")
        case "/braiins.bos.v1.ActionsService/Reboot":
            dev.reboot_requested = True
            return _ok()
        case "/braiins.bos.v1.ActionsService/SetLocateDeviceStatus":
            dev.locate = bool(request.get(1, 0))
            return _ok(pb((1, 1)) if dev.locate else b"")
        case "/braiins.bos.v1.ActionsService/GetLocateDeviceStatus":
            return _ok(pb((1, 1)) if dev.locate else b"")
        case "/braiins.bos.v1.PerformanceService/SetPowerTarget":
            return _set_power_target(dev, request)
        case "/braiins.bos.v1.MinerService/GetMinerDetails":
            uptime = (
                0 if dev.bosminer_stopped else int(max(0.0, now - max(dev.boot_time, dev.bosminer_started)))
            )
            status = 1 if dev.bosminer_stopped else 2  # MINER_STATUS_NOT_STARTED / NORMAL
            return _ok(pb((6, dev.hostname.encode()), (10, uptime), (12, status)))
    return UNIMPLEMENTED, f"unknown method {path}", b"", []


def _login(dev: SimDevice, request: dict[int, int | bytes]) -> GrpcAnswer:
    username, password = request.get(1, b""), request.get(2, b"")
    expected = (dev.web_password or "").encode()
    if username != USERNAME.encode() or not secrets.compare_digest(
        password if isinstance(password, bytes) else b"", expected
    ):
        return UNAUTHENTICATED, "invalid username or password", b"", []
    token = secrets.token_hex(16)
    dev.bos_tokens = [*dev.bos_tokens[-(MAX_TOKENS - 1) :], token]
    return _ok(b"", [("authorization", token)])


def _set_power_target(dev: SimDevice, request: dict[int, int | bytes]) -> GrpcAnswer:
    power = request.get(2, b"")
    watt = unpb(power).get(1, 0) if isinstance(power, bytes) else 0
    if request.get(1, 0) not in SAVE_ACTIONS:
        return INVALID_ARGUMENT, "save_action is required", b"", []
    if not isinstance(watt, int) or watt <= 0:
        return INVALID_ARGUMENT, "power_target.watt must be positive", b"", []
    if request.get(1) != 1:  # SAVE only stores it for the next start
        dev.power_limit_w = float(watt)
    return _ok(pb((1, pb((1, watt)))))

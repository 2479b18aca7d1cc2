"""The simulator's server over real sockets: how requests are framed on each port, web keep-alive, and
who closes a connection when. What the replies say is tested with the personalities."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest

from collectors.simulator import server as server_module
from collectors.simulator.device import Fault, Firmware
from collectors.simulator.fleet import build_fleet
from collectors.simulator.server import (
    WEB_KEEPALIVE_REQUESTS,
    FleetServer,
    ListenMode,
    ServerTimings,
)

FAST = ServerTimings(read_timeout_s=2.0, hold_s=30.0, drip_interval_s=0.05, drip_bytes=64)


def free_ports(count: int) -> tuple[int, int, int]:
    """Ports nothing listens on right now (bound to port 0 on every address, then released)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("0.0.0.0", 0))
        rpc, web, v3 = (sock.getsockname()[1] for sock in socks)
        return rpc, web, v3
    finally:
        for sock in socks:
            sock.close()


@contextlib.asynccontextmanager
async def serving(
    mix: str, *, subnet: str, devices: int = 1, v3: bool = False, timings: ServerTimings = FAST
) -> AsyncIterator[FleetServer]:
    """A shared-mode fleet on free high ports (a shared listener binds 0.0.0.0, so real ports could
    collide with another simulator on this machine)."""
    fleet = build_fleet(devices, mix=mix, subnet=subnet, seed=4)
    for item in fleet:
        item.device.fault = None
        item.device.whatsminer_api_v3 = v3
    server = FleetServer(
        [f.device for f in fleet], mode=ListenMode.SHARED, timings=timings, ports=free_ports(3)
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def first_ip(server: FleetServer) -> str:
    return next(iter(server.devices))


async def read_response(
    reader: asyncio.StreamReader, *, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response: status, headers (lower-cased names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers["content-length"])
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return int(lines[0].split(" ")[1]), headers, body


def get(
    path: str, *, host: str = "miner", extra: str = "", version: str = "HTTP/1.1", method: str = "GET"
) -> bytes:
    return f"{method} {path} {version}\r\nHost: {host}\r\n{extra}\r\n".encode()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes (FIN) within `within` seconds without sending anything more."""
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except TimeoutError:
        return False


# ---- port 4028 ---------------------------------------------------------------------------------


async def test_rpc_json_request_split_across_writes_is_answered_once_complete() -> None:
    async with serving("antminer:1", subnet="127.35.0.0/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.rpc_port)
        writer.write(b'{"command":')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b'"version"}')
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert raw.endswith(b"\x00") and json.loads(raw[:-1])["VERSION"]


async def test_rpc_unparseable_json_gets_cgminer_invalid_json_envelope() -> None:
    async with serving("antminer:1", subnet="127.35.0.8/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.rpc_port)
        writer.write(b'{"command":"version"')
        writer.write_eof()  # the object never completes
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert raw.endswith(b"\x00")
    status = json.loads(raw[:-1])["STATUS"][0]
    assert (status["STATUS"], status["Code"], status["Msg"]) == ("E", 23, "Invalid JSON")


async def test_rpc_client_that_sends_nothing_and_closes_gets_nothing() -> None:
    async with serving("antminer:1", subnet="127.35.0.16/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.rpc_port)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_device_without_a_personality_resets() -> None:
    async with serving("whatsminer:1", subnet="127.35.0.24/29") as server:
        dev = next(iter(server.devices.values()))
        dev.firmware = Firmware.BRAIINS  # only simulated on Antminer hardware
        reader, writer = await asyncio.open_connection(dev.ip, server.rpc_port)
        writer.write(b'{"command":"version"}')
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
        writer.close()


# ---- port 80 -----------------------------------------------------------------------------------


async def test_web_keeps_the_connection_between_requests() -> None:
    async with serving("braiins:1", subnet="127.35.1.0/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        writer.write(get("/"))
        status, headers, body = await read_response(reader)
        assert (status, headers["connection"]) == (200, "keep-alive") and b"Braiins OS" in body
        writer.write(get("/missing"))
        status, headers, _ = await read_response(reader)
        assert (status, headers["connection"]) == (404, "keep-alive")
        writer.close()


async def test_web_pipelined_requests_are_answered_in_order() -> None:
    async with serving("braiins:1", subnet="127.35.1.8/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        writer.write(get("/missing") + get("/") + get("/gone", extra="Connection: close\r\n"))
        statuses = [(await read_response(reader))[0] for _ in range(3)]
        assert statuses == [404, 200, 404]
        assert await closed_by_server(reader, 2)
        writer.close()


async def test_web_closes_after_the_last_keepalive_request() -> None:
    async with serving("braiins:1", subnet="127.35.1.16/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        connections = []
        for _ in range(WEB_KEEPALIVE_REQUESTS):
            writer.write(get("/"))
            connections.append((await read_response(reader))[1]["connection"])
        assert connections == ["keep-alive"] * (WEB_KEEPALIVE_REQUESTS - 1) + ["close"]
        assert await closed_by_server(reader, 2)
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [get("/", extra="Connection: close\r\n"), get("/", version="HTTP/1.0")],
    ids=["connection-close", "http-1.0"],
)
async def test_web_request_can_end_keepalive(request_bytes: bytes) -> None:
    async with serving("braiins:1", subnet="127.35.1.24/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        writer.write(request_bytes)
        status, headers, _ = await read_response(reader)
        assert (status, headers["connection"]) == (200, "close")
        assert await closed_by_server(reader, 2)
        writer.close()


async def test_web_idle_keepalive_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "WEB_KEEPALIVE_IDLE_S", 0.3)
    async with serving("braiins:1", subnet="127.35.1.32/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        writer.write(get("/"))
        await read_response(reader)
        assert await closed_by_server(reader, 1.5)  # read_timeout_s is 2 s: the idle limit applied
        writer.close()


async def test_web_client_that_sends_nothing_is_dropped_after_read_timeout() -> None:
    timings = ServerTimings(read_timeout_s=0.5, hold_s=30.0)
    async with serving("braiins:1", subnet="127.35.1.40/29", timings=timings) as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        assert await closed_by_server(reader, 3)
        writer.close()


async def test_web_body_is_consumed_before_the_next_request() -> None:
    async with serving("braiins:1", subnet="127.35.1.48/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        body = b"username=root&passwd=root"
        post = get("/login", method="POST", extra=f"Content-Length: {len(body)}\r\n").rstrip(b"\r\n")
        writer.write(post + b"\r\n\r\n")
        await asyncio.sleep(0.1)
        writer.write(body[:5])
        await asyncio.sleep(0.1)
        writer.write(body[5:] + get("/"))
        assert (await read_response(reader))[0] == 404
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_web_head_gets_headers_without_a_body() -> None:
    async with serving("braiins:1", subnet="127.35.1.56/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        writer.write(get("/", method="HEAD") + get("/missing"))
        status, headers, _ = await read_response(reader, head_only=True)
        assert status == 200 and int(headers["content-length"]) > 0
        assert (await read_response(reader))[0] == 404  # no stray body between the two
        writer.close()


async def test_web_malformed_request_line_is_closed_without_an_answer() -> None:
    async with serving("braiins:1", subnet="127.35.1.64/29") as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.web_port)
        writer.write(b"HELLO\r\n\r\n")
        assert await closed_by_server(reader, 2)
        writer.close()


async def test_faulty_device_misbehaves_on_its_first_web_request() -> None:
    async with serving("braiins:1", subnet="127.35.1.72/29", devices=3) as server:
        hang, garbage, no_close = server.devices.values()
        hang.fault, garbage.fault, no_close.fault = Fault.HANG, Fault.GARBAGE, Fault.NO_CLOSE

        reader, writer = await asyncio.open_connection(hang.ip, server.web_port)
        writer.write(get("/"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.5)
        writer.close()

        reader, writer = await asyncio.open_connection(garbage.ip, server.web_port)
        writer.write(get("/"))
        raw = await asyncio.wait_for(reader.read(), 5)
        assert 64 <= len(raw) <= 2048 and not raw.startswith(b"HTTP/1.1 200")
        writer.close()

        reader, writer = await asyncio.open_connection(no_close.ip, server.web_port)
        writer.write(get("/"))
        status, headers, _ = await read_response(reader)
        assert (status, headers["connection"]) == (200, "close")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.5)
        writer.close()


async def test_web_port_taken_leaves_the_api_served() -> None:
    rpc, web, v3 = free_ports(3)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("0.0.0.0", web))
    squatter.listen()
    fleet = build_fleet(1, mix="antminer:1", subnet="127.35.2.0/29", seed=4)
    fleet[0].device.fault = None
    server = FleetServer([fleet[0].device], mode=ListenMode.SHARED, timings=FAST, ports=(rpc, web, v3))
    try:
        await server.start()
        assert not server.web_enabled and server.listener_count == 1
        reader, writer = await asyncio.open_connection(fleet[0].device.ip, rpc)
        writer.write(b'{"command":"version"}')
        assert json.loads((await asyncio.wait_for(reader.read(), 5))[:-1])["VERSION"]
        writer.close()
    finally:
        await server.close()
        squatter.close()


# ---- port 4433 ---------------------------------------------------------------------------------


async def exchange(ip: str, port: int, frame: bytes) -> bytes:
    """Send `frame`, read until the server closes."""
    reader, writer = await asyncio.open_connection(ip, port)
    writer.write(frame)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def v3_frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "little") + body


async def test_v3_request_gets_a_length_prefixed_json_reply() -> None:
    async with serving("whatsminer:1", subnet="127.35.3.0/29", v3=True) as server:
        assert server.listener_count == 3
        raw = await exchange(first_ip(server), server.v3_port, v3_frame(b'{"cmd":"get.device.info"}'))
    assert int.from_bytes(raw[:4], "little") == len(raw) - 4
    reply = json.loads(raw[4:])
    assert reply["code"] == 0 and reply["msg"]


async def test_v3_unparseable_request_gets_code_minus_one() -> None:
    async with serving("whatsminer:1", subnet="127.35.3.8/29", v3=True) as server:
        raw = await exchange(first_ip(server), server.v3_port, v3_frame(b'{"cmd":'))
    reply = json.loads(raw[4:])
    assert (reply["code"], reply["msg"]) == (-1, "invalid json")


@pytest.mark.parametrize("length", [0, server_module.MAX_REQUEST + 1])
async def test_v3_bad_length_is_reset(length: int) -> None:
    async with serving("whatsminer:1", subnet="127.35.3.16/29", v3=True) as server:
        with pytest.raises(ConnectionResetError):
            await exchange(first_ip(server), server.v3_port, length.to_bytes(4, "little") + b"{}")


async def test_v3_port_resets_a_device_without_api_v3() -> None:
    async with serving("whatsminer:2", subnet="127.35.3.24/29", devices=2, v3=True) as server:
        plain = list(server.devices.values())[1]
        plain.whatsminer_api_v3 = False
        with pytest.raises(ConnectionResetError):
            await exchange(plain.ip, server.v3_port, v3_frame(b'{"cmd":"get.device.info"}'))


async def test_v3_split_frame_is_assembled() -> None:
    async with serving("whatsminer:1", subnet="127.35.3.32/29", v3=True) as server:
        reader, writer = await asyncio.open_connection(first_ip(server), server.v3_port)
        frame = v3_frame(b'{"cmd":"get.device.info"}')
        for piece in (frame[:2], frame[2:7], frame[7:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert json.loads(raw[4:])["code"] == 0


# ---- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.NO_CLOSE, None])
async def test_close_drops_open_connections(fault: Fault | None) -> None:
    async with serving("antminer:1", subnet="127.35.4.0/29") as server:
        dev = next(iter(server.devices.values()))
        dev.fault = fault
        reader, writer = await asyncio.open_connection(dev.ip, server.rpc_port)
        if fault is not None:
            writer.write(b'{"command":"version"}')
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        await server.close()
        assert asyncio.get_running_loop().time() - started < 1.0
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 1.0)  # the server's end is gone: EOF or reset
        writer.close()


# ---- faults under flow control -----------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.OVERSIZED, Fault.SLOW_DRIP, Fault.RESET, Fault.NO_CLOSE])
async def test_slow_reader_gets_the_whole_faulty_reply_without_loop_errors(fault: Fault) -> None:
    """The client lets the server's buffers fill before reading: the reply still arrives whole (cut, for
    RESET), and nothing goes wrong inside the event loop's transports on the way."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    timings = ServerTimings(read_timeout_s=2.0, hold_s=1.0, drip_interval_s=0.01, drip_bytes=256)
    try:
        async with serving("antminer:1", subnet="127.35.5.0/29", timings=timings) as server:
            dev = next(iter(server.devices.values()))
            dev.fault = fault
            reader, writer = await asyncio.open_connection(dev.ip, server.rpc_port)
            writer.write(b'{"command":"stats"}')
            await asyncio.sleep(0.5)
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := await asyncio.wait_for(reader.read(1 << 16), 10):
                    data += chunk
            writer.close()
    finally:
        loop.set_exception_handler(None)
    assert not errors
    if fault is Fault.RESET:
        assert not data.endswith(b"\x00")  # Linux drops what the client had not read yet on the RST
    else:
        assert data.endswith(b"\x00")
        assert (len(data) > server_module.OVERSIZED_BYTES) == (fault is Fault.OVERSIZED)

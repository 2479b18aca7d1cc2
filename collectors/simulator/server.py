"""Asyncio servers that put a fleet of SimDevices on loopback, each on its own 127.x.y.z.

Ports are the real ones: 4028 (CGMiner API), 80 (web, HTTP/1.1, one request per connection) and
4433 (Whatsminer API v3: 4-byte little-endian length + JSON, both ways). Every connection gets one
reply and is then closed, as on the real firmwares.

Two listening modes:
- per-device: one listening socket per (device, port). Exact semantics: a REFUSED device has no
  listener, so the kernel refuses the connection.
- shared: one listener per port on 0.0.0.0 with SO_BINDTODEVICE "lo" (nothing off the machine can
  reach it), dispatching on the accepted socket's local address. Connections to addresses that are
  not devices, or are REFUSED devices, are reset (SO_LINGER 0), the closest a shared socket gets to a
  refusal. Needed because 10,000 devices x 2-3 ports exceed the 20,000 file-descriptor hard limit.
`auto` picks per-device when the sockets fit under RLIMIT_NOFILE with a reserve, else shared.

Faults (device.Fault) apply to whatever the port would have sent. Who closes: the server closes every
connection it accepted, including hung ones, after `hold_s`; an idle client that never sends a
request is dropped after `read_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import resource
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from collectors.simulator.device import Fault, Make, SimDevice
from collectors.simulator.personalities.base import BadRequest, HttpRequest, HttpResponse, parse_rpc_request
from collectors.simulator.personalities.registry import PersonalityMissing, personality_for

log = logging.getLogger(__name__)

RPC_PORT, WEB_PORT, V3_PORT = 4028, 80, 4433
FD_RESERVE = 1024  # descriptors kept free for accepted connections, logs, the client in tests
MAX_REQUEST = 65_536
WEB_KEEPALIVE_REQUESTS = 16  # like lighttpd's server.max-keep-alive-requests (its older default)
WEB_KEEPALIVE_IDLE_S = 5.0  # lighttpd: server.max-keep-alive-idle
OVERSIZED_BYTES = 8 * 1024 * 1024
_PAD = b'{"STATS":0,"pad":"' + b"x" * 65_000 + b'"},'  # shared by every oversized reply


class ListenMode(StrEnum):
    """How the fleet's listening sockets are laid out."""

    AUTO = "auto"
    PER_DEVICE = "per-device"
    SHARED = "shared"


@runtime_checkable
class V3Personality(Protocol):
    """A personality that also speaks Whatsminer API v3."""

    def v3(self, dev: SimDevice, request: dict[str, object], now: float) -> dict[str, object]:
        """The reply object for one v3 request."""
        ...


@dataclass(frozen=True)
class ServerTimings:
    """Server-side deadlines, seconds."""

    read_timeout_s: float = 10.0  # a client must send its request within this
    hold_s: float = 120.0  # HANG and NO_CLOSE connections are dropped after this
    drip_interval_s: float = 0.25  # SLOW_DRIP sends `drip_bytes` this often
    drip_bytes: int = 8


def _raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FleetServer:
    """Serves a list of devices on their addresses until closed."""

    def __init__(
        self,
        devices: Iterable[SimDevice],
        mode: ListenMode = ListenMode.AUTO,
        timings: ServerTimings | None = None,
        ports: tuple[int, int, int] = (RPC_PORT, WEB_PORT, V3_PORT),
    ) -> None:
        self.devices: dict[str, SimDevice] = {d.ip: d for d in devices}
        self.requested_mode = mode
        self.mode: ListenMode | None = None
        self.timings = timings or ServerTimings()
        self.rpc_port, self.web_port, self.v3_port = ports
        self.web_enabled = True
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle ---------------------------------------------------------------------------

    def _v3_devices(self) -> list[SimDevice]:
        return [d for d in self.devices.values() if d.spec.make is Make.WHATSMINER and d.whatsminer_api_v3]

    def choose_mode(self) -> ListenMode:
        """The mode `auto` resolves to here (raises the soft fd limit to the hard one first)."""
        if self.requested_mode is not ListenMode.AUTO:
            _raise_fd_limit()
            return self.requested_mode
        soft = _raise_fd_limit()
        listening = [d for d in self.devices.values() if d.fault is not Fault.REFUSED]
        needed = 2 * len(listening) + len(self._v3_devices()) + FD_RESERVE
        return ListenMode.PER_DEVICE if needed <= soft else ListenMode.SHARED

    async def start(self) -> None:
        """Bind every listener; returns when all devices accept connections."""
        self.mode = self.choose_mode()
        try:
            if self.mode is ListenMode.SHARED:
                await self._start_shared()
            else:
                await self._start_per_device()
        except BaseException:
            await self.close()
            raise
        log.info("serving %d devices (%s mode, web %s)", len(self.devices), self.mode, self.web_enabled)

    async def _start_shared(self) -> None:
        for port, handler in self._port_handlers():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
                sock.bind(("0.0.0.0", port))
                sock.listen(4096)
            except OSError as exc:
                sock.close()
                if port == self.web_port:
                    self._web_unavailable(exc)
                    continue
                raise
            sock.setblocking(False)
            self._servers.append(await asyncio.start_server(handler, sock=sock, backlog=4096))

    async def _start_per_device(self) -> None:
        v3 = {d.ip for d in self._v3_devices()}
        for port, handler in self._port_handlers():
            for dev in self.devices.values():
                if dev.fault is Fault.REFUSED or (port == self.v3_port and dev.ip not in v3):
                    continue
                try:
                    server = await asyncio.start_server(handler, host=dev.ip, port=port, backlog=64)
                except OSError as exc:
                    if port == self.web_port:
                        self._web_unavailable(exc)
                        break
                    raise
                self._servers.append(server)

    def _web_unavailable(self, exc: OSError) -> None:
        self.web_enabled = False
        log.warning("cannot bind the web port %d (%s); continuing without the web server", self.web_port, exc)
        for server in [
            s for s in self._servers if s.sockets and s.sockets[0].getsockname()[1] == self.web_port
        ]:
            server.close()
            self._servers.remove(server)

    def _port_handlers(
        self,
    ) -> list[tuple[int, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]]]:
        handlers: list[
            tuple[int, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]]
        ] = [
            (self.rpc_port, self._on_rpc),
            (self.web_port, self._on_web),
        ]
        if self._v3_devices():
            handlers.append((self.v3_port, self._on_v3))
        return handlers

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    @property
    def listener_count(self) -> int:
        """How many listening sockets are open."""
        return sum(len(s.sockets) for s in self._servers)

    # ---- connection handling -------------------------------------------------------------------

    def _device_for(self, writer: asyncio.StreamWriter, port: int) -> SimDevice | None:
        sockname = writer.get_extra_info("sockname")
        dev = self.devices.get(sockname[0]) if sockname else None
        if dev is None or dev.fault is Fault.REFUSED:
            return None
        if port == self.v3_port and not (dev.spec.make is Make.WHATSMINER and dev.whatsminer_api_v3):
            return None
        return dev

    async def _guard(self, writer: asyncio.StreamWriter, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await work
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception:
            log.exception("simulator connection failed")
        finally:
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _on_rpc(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dev = self._device_for(writer, self.rpc_port)
        if dev is None:
            _reset(writer)
            return
        await self._guard(writer, self._rpc(dev, reader, writer))

    async def _on_web(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dev = self._device_for(writer, self.web_port)
        if dev is None:
            _reset(writer)
            return
        await self._guard(writer, self._web(dev, reader, writer))

    async def _on_v3(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dev = self._device_for(writer, self.v3_port)
        if dev is None:
            _reset(writer)
            return
        await self._guard(writer, self._v3(dev, reader, writer))

    async def _rpc(self, dev: SimDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = await asyncio.wait_for(_read_rpc_request(reader), self.timings.read_timeout_s)
        if not raw:
            return
        try:
            request = parse_rpc_request(raw)
        except BadRequest:
            # cgminer answers an unparseable JSON request with its own error envelope.
            payload = (
                b'{"STATUS":[{"STATUS":"E","When":%d,"Code":23,"Msg":"Invalid JSON",'
                b'"Description":"cgminer"}],"id":1}\x00' % int(time.time())
            )
        else:
            try:
                payload = personality_for(dev).rpc(dev, request, time.time())
            except PersonalityMissing:
                _reset(writer)
                return
        await self._deliver(dev, reader, writer, payload)

    async def _web(self, dev: SimDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The miners' lighttpd speaks HTTP/1.1 with keep-alive: the digest 401 and the authorized retry
        # usually travel on one connection. A healthy device keeps the connection for up to
        # WEB_KEEPALIVE_REQUESTS requests while the client does not ask to close and is not idle longer
        # than the read timeout; a faulty one misbehaves on the first request as on 4028.
        for served in range(1, WEB_KEEPALIVE_REQUESTS + 1):
            timeout = self.timings.read_timeout_s if served == 1 else WEB_KEEPALIVE_IDLE_S
            try:
                request = await asyncio.wait_for(_read_http_request(reader), timeout)
            except (TimeoutError, asyncio.IncompleteReadError):
                if served == 1:
                    raise
                return  # the client went away or idled out between requests
            if request is None:
                return
            try:
                response = personality_for(dev).http(dev, request, time.time())
            except PersonalityMissing:
                _reset(writer)
                return
            keep = (
                dev.fault is None
                and served < WEB_KEEPALIVE_REQUESTS
                and request.headers.get("connection", "").lower() != "close"
                and request.version == "HTTP/1.1"
            )
            payload = _http_bytes(response, request.method == "HEAD", keep_alive=keep)
            if not keep:
                await self._deliver(dev, reader, writer, payload)
                return
            writer.write(payload)
            await writer.drain()

    async def _v3(self, dev: SimDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await asyncio.wait_for(reader.readexactly(4), self.timings.read_timeout_s)
        length = int.from_bytes(header, "little")
        if length <= 0 or length > MAX_REQUEST:
            _reset(writer)
            return
        body = await asyncio.wait_for(reader.readexactly(length), self.timings.read_timeout_s)
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        personality = personality_for(dev)
        if not isinstance(request, dict) or not isinstance(personality, V3Personality):
            reply: dict[str, object] = {
                "code": -1,
                "when": int(time.time()),
                "msg": "invalid json",
                "desc": "",
            }
        else:
            reply = personality.v3(dev, request, time.time())
        data = json.dumps(reply, separators=(",", ":")).encode()
        await self._deliver(dev, reader, writer, len(data).to_bytes(4, "little") + data)

    async def _deliver(
        self, dev: SimDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
    ) -> None:
        """Send `payload` the way the device's fault says, then close."""
        fault = dev.fault
        t = self.timings
        if fault is Fault.HANG:
            await _wait_client_close(reader, t.hold_s)
            return
        if fault is Fault.SLOW_DRIP:
            for start in range(0, len(payload), t.drip_bytes):
                writer.write(payload[start : start + t.drip_bytes])
                await writer.drain()
                await asyncio.sleep(t.drip_interval_s)
            return
        if fault is Fault.RESET:
            writer.write(payload[: max(1, len(payload) // 2)])
            await writer.drain()
            _reset(writer)
            return
        if fault is Fault.GARBAGE:
            rng = random.Random(dev.seed ^ int(time.time()))
            writer.write(rng.randbytes(rng.randint(64, 2048)))
            await writer.drain()
            return
        if fault is Fault.OVERSIZED:
            await _send_oversized(writer, payload)
            return
        writer.write(payload)
        await writer.drain()
        if fault is Fault.NO_CLOSE:
            await _wait_client_close(reader, t.hold_s)


async def _wait_client_close(reader: asyncio.StreamReader, hold_s: float) -> None:
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(reader.read(), hold_s)


async def _send_oversized(writer: asyncio.StreamWriter, payload: bytes) -> None:
    """The real reply's envelope around megabytes of padding, streamed from one shared buffer."""
    head = (
        b'{"STATUS":[{"STATUS":"S","When":%d,"Code":70,"Msg":"CGMiner stats",'
        b'"Description":"cgminer 1.0.0"}],"STATS":[' % int(time.time())
    )
    writer.write(head)
    sent = len(head)
    while sent < OVERSIZED_BYTES:
        writer.write(_PAD)
        sent += len(_PAD)
        await writer.drain()
    writer.write(b'{"STATS":1}],"id":1}\x00')
    await writer.drain()


async def _read_rpc_request(reader: asyncio.StreamReader) -> bytes:
    """One request: a complete JSON object, or the first chunk of a plain-text command."""
    data = await reader.read(MAX_REQUEST)
    if not data.lstrip().startswith(b"{"):
        return data
    while len(data) < MAX_REQUEST:
        try:
            json.loads(data.rstrip(b"\x00\r\n "))
            return data
        except ValueError:
            pass
        more = await reader.read(MAX_REQUEST)
        if not more:
            return data
        data += more
    return data


async def _read_http_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or "0")
    body = await reader.readexactly(min(length, MAX_REQUEST)) if length > 0 else b""
    path, _, query = parts[1].partition("?")
    version = parts[2] if len(parts) > 2 else "HTTP/1.0"
    return HttpRequest(
        method=parts[0].upper(), path=path, query=query, headers=headers, body=body, version=version
    )


_REASONS = {200: "OK", 307: "Temporary Redirect", 401: "Unauthorized", 404: "Not Found"}


def _http_bytes(response: HttpResponse, head_only: bool, *, keep_alive: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {response.reason or _REASONS.get(response.status, '')}"]
    names = {name.lower() for name, _ in response.headers}
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if "content-length" not in names:
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body

"""Asyncio servers that put a fleet of SimDevices on loopback, each on its own 127.x.y.z.

Ports are the real ones: 4028 (CGMiner API: one request, one reply, then the device closes), 80 (web:
lighttpd's HTTP/1.1 with keep-alive), 4433 (Whatsminer API v3: 4-byte little-endian length + JSON,
both ways, one exchange per connection) and 50051 (Braiins OS's gRPC over cleartext HTTP/2, Braiins
devices only: one more asyncio listener per device, no gRPC server or thread of its own).

Two listening modes:
- per-device: one listening socket per (device, port). Exact semantics: a REFUSED device has no
  listener, so the kernel refuses the connection.
- shared: one listener per port on 0.0.0.0 with SO_BINDTODEVICE "lo" (nothing off the machine can
  reach it), dispatching on the accepted socket's local address. Connections to addresses that are
  not devices, or are REFUSED devices, are reset (SO_LINGER 0), the closest a shared socket gets to a
  refusal. Needed because 10,000 devices x 2-3 ports exceed the 20,000 file-descriptor hard limit.
`auto` picks per-device when the sockets fit under RLIMIT_NOFILE with a reserve, else shared.

Each accepted connection is one `asyncio.BufferedProtocol` (`_RpcConnection`, `_WebConnection`,
`_V3Connection`), not a task over streams: the simulator is the device side of poll benchmarks, and a
task, stream reader/writer and `wait_for` per connection cost more CPU than rendering the reply. A
connection buffers what arrives until its port's framing says the request is complete; a healthy
exchange is then rendered, written and closed inside that one `buffer_updated` call (on the web port the
connection instead waits for the next request). Every connection reads into one shared buffer (see
FleetServer._inbox). Deadlines are `loop.call_later` handles, cancelled when met. The faults' slow paths
run on the same callbacks: a timer per drip, a hold deadline, and a drain callback for flow control
(`pause_writing`/`resume_writing`) while streaming an oversized reply.

Faults (device.Fault) apply to whatever the port would have sent (on the web port, to the first
request's reply). Who closes: the server closes every connection it accepted, including hung ones,
after `hold_s`; an idle client that never sends a request is dropped after `read_timeout_s`, an idle
web keep-alive connection after WEB_KEEPALIVE_IDLE_S; `FleetServer.close()` drops every connection.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import ClassVar, Protocol, cast, runtime_checkable
from urllib.parse import quote

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from collectors.simulator.device import Fault, Firmware, Make, SimDevice
from collectors.simulator.personalities.base import (
    BadRequest,
    HttpRequest,
    HttpResponse,
    RpcRequest,
    parse_rpc_request,
)
from collectors.simulator.personalities.registry import PersonalityMissing, personality_for

log = logging.getLogger(__name__)

RPC_PORT, WEB_PORT, V3_PORT, GRPC_PORT = 4028, 80, 4433, 50051
FD_RESERVE = 1024  # descriptors kept free for accepted connections, logs, the client in tests
MAX_REQUEST = 65_536
WEB_KEEPALIVE_REQUESTS = 16  # like lighttpd's server.max-keep-alive-requests (its older default)
WEB_KEEPALIVE_IDLE_S = 5.0  # lighttpd: server.max-keep-alive-idle
OVERSIZED_BYTES = 8 * 1024 * 1024
_PAD = b'{"STATS":0,"pad":"' + b"x" * 65_000 + b'"},'  # shared by every oversized reply
DEEP_NESTING_LEVELS = 150_000  # 300,000 brackets: 293 KiB, under the poller's 512 KiB reply cap
_DEEP = b"[" * DEEP_NESTING_LEVELS + b"]" * DEEP_NESTING_LEVELS  # shared by every deep_nesting reply
_NOT_UTF8 = b"\xc3\x28\xff"  # a lead byte without its continuation, and a byte UTF-8 never uses
# What a web server on the API port answers a line of JSON (lighttpd's 400 page, shortened).
_HTTP_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 69\r\nConnection: close\r\n"
    b"Server: lighttpd/1.4.59\r\n\r\n<html><head><title>400 Bad Request</title></head><body></body></html>"
)
# cgminer answers an unparseable JSON request with its own error envelope (%d: the time).
_INVALID_JSON = (
    b'{"STATUS":[{"STATUS":"E","When":%d,"Code":23,"Msg":"Invalid JSON","Description":"cgminer"}],"id":1}\x00'
)


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


@runtime_checkable
class GrpcPersonality(Protocol):
    """A personality that serves Braiins OS's gRPC API."""

    def grpc(
        self, dev: SimDevice, path: str, metadata: dict[str, str], message: bytes, now: float
    ) -> tuple[int, str, bytes, list[tuple[str, str]]]:
        """(grpc-status, grpc-message, reply message, response headers) for one unary call."""
        ...


@dataclass(frozen=True)
class ServerTimings:
    """Server-side deadlines, seconds."""

    read_timeout_s: float = 10.0  # a client must send its request within this
    hold_s: float = 120.0  # HANG and NO_CLOSE connections are dropped after this
    drip_interval_s: float = 0.25  # SLOW_DRIP sends `drip_bytes` this often
    drip_bytes: int = 8
    reboot_s: float = 45.0  # a rebooted device refuses connections this long, then serves again


def _raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _reset(transport: asyncio.Transport) -> None:
    """Close with RST instead of FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class FleetServer:
    """Serves a list of devices on their addresses until closed."""

    # The serving loop (set by start), for the connections' timers: asyncio.get_running_loop() makes a
    # getpid() system call on every call in Python 3.11.
    _loop: asyncio.AbstractEventLoop

    def __init__(
        self,
        devices: Iterable[SimDevice],
        mode: ListenMode = ListenMode.AUTO,
        timings: ServerTimings | None = None,
        ports: tuple[int, int, int] = (RPC_PORT, WEB_PORT, V3_PORT),
        grpc_port: int = GRPC_PORT,
    ) -> None:
        self.devices: dict[str, SimDevice] = {d.ip: d for d in devices}
        self.requested_mode = mode
        self.mode: ListenMode | None = None
        self.timings = timings or ServerTimings()
        self.rpc_port, self.web_port, self.v3_port = ports
        self.grpc_port = grpc_port
        self.web_enabled = True
        self._servers: list[asyncio.Server] = []
        # per-device mode: each device's listeners, so a reboot can close and reopen just its own
        self._listeners: dict[str, list[tuple[int, Callable[[], asyncio.BaseProtocol], asyncio.Server]]] = {}
        self._wakeups: set[asyncio.TimerHandle] = set()
        self._connections: set[_Connection] = set()  # accepted for a device and not yet lost
        self._accepting = False
        # Every connection receives into this one buffer and copies out what arrived at once. With
        # data_received, asyncio would allocate 256 KiB per read, which glibc often serves by mmap,
        # mremap and munmap: three system calls per request.
        self._inbox = memoryview(bytearray(MAX_REQUEST))

    # ---- lifecycle -------------------------------------------------------------------------------

    def _v3_devices(self) -> list[SimDevice]:
        return [d for d in self.devices.values() if d.spec.make is Make.WHATSMINER and d.whatsminer_api_v3]

    def _grpc_devices(self) -> list[SimDevice]:
        return [d for d in self.devices.values() if d.firmware is Firmware.BRAIINS]

    def choose_mode(self) -> ListenMode:
        """The mode `auto` resolves to here (raises the soft fd limit to the hard one first)."""
        if self.requested_mode is not ListenMode.AUTO:
            _raise_fd_limit()
            return self.requested_mode
        soft = _raise_fd_limit()
        listening = [d for d in self.devices.values() if d.fault is not Fault.REFUSED]
        needed = 2 * len(listening) + len(self._v3_devices()) + len(self._grpc_devices()) + FD_RESERVE
        return ListenMode.PER_DEVICE if needed <= soft else ListenMode.SHARED

    async def start(self) -> None:
        """Bind every listener; returns when all devices accept connections."""
        self.mode = self.choose_mode()
        self._loop = asyncio.get_running_loop()
        self._accepting = True
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
        loop = asyncio.get_running_loop()
        for port, factory in self._port_protocols():
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
            self._servers.append(await loop.create_server(factory, sock=sock, backlog=4096))

    async def _start_per_device(self) -> None:
        loop = asyncio.get_running_loop()
        v3 = {d.ip for d in self._v3_devices()}
        grpc = {d.ip for d in self._grpc_devices()}
        for port, factory in self._port_protocols():
            for dev in self.devices.values():
                if dev.fault is Fault.REFUSED or (port == self.v3_port and dev.ip not in v3):
                    continue
                if port == self.grpc_port and dev.ip not in grpc:
                    continue
                try:
                    server = await loop.create_server(factory, host=dev.ip, port=port, backlog=64)
                except OSError as exc:
                    if port == self.web_port:
                        self._web_unavailable(exc)
                        break
                    raise
                self._servers.append(server)
                self._listeners.setdefault(dev.ip, []).append((port, factory, server))

    def _web_unavailable(self, exc: OSError) -> None:
        self.web_enabled = False
        log.warning("cannot bind the web port %d (%s); continuing without the web server", self.web_port, exc)
        for server in [
            s for s in self._servers if s.sockets and s.sockets[0].getsockname()[1] == self.web_port
        ]:
            server.close()
            self._servers.remove(server)

    def _port_protocols(self) -> list[tuple[int, Callable[[], asyncio.BaseProtocol]]]:
        protocols: list[tuple[int, Callable[[], asyncio.BaseProtocol]]] = [
            (self.rpc_port, partial(_RpcConnection, self)),
            (self.web_port, partial(_WebConnection, self)),
        ]
        if self._v3_devices():
            protocols.append((self.v3_port, partial(_V3Connection, self)))
        if self._grpc_devices():
            protocols.append((self.grpc_port, partial(_GrpcConnection, self)))
        return protocols

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        self._accepting = False
        for handle in self._wakeups:
            handle.cancel()
        self._wakeups.clear()
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            conn.transport.abort()
        # abort() queues connection_lost with call_soon: one turn of the loop runs every one of them.
        await asyncio.sleep(0)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    def after_request(self, dev: SimDevice) -> None:
        """Called once a reply is on its way: a device asked to reboot goes down now, for
        `timings.reboot_s`. Per-device listeners are closed (the kernel refuses connections, as for a
        powered-off controller) and reopened when it is back; open connections to it are closed."""
        if not dev.reboot_requested:
            return
        down_s = self.timings.reboot_s
        dev.reboot(time.time(), down_s)
        for conn in [c for c in self._connections if c.dev is dev]:
            conn._close_after_reply()
        listeners = self._listeners.pop(dev.ip, [])
        for _port, _factory, server in listeners:
            server.close()
            self._servers.remove(server)
        if listeners:
            handle = self._loop.call_later(down_s, self._bring_up, dev, listeners)
            self._wakeups.add(handle)
        log.info("%s rebooting for %.1fs", dev.ip, down_s)

    def _bring_up(
        self,
        dev: SimDevice,
        listeners: list[tuple[int, Callable[[], asyncio.BaseProtocol], asyncio.Server]],
    ) -> None:
        self._wakeups = {h for h in self._wakeups if not h.cancelled() and h.when() > self._loop.time()}
        if self._accepting:
            self._loop.create_task(self._listen_again(dev, listeners))

    async def _listen_again(
        self,
        dev: SimDevice,
        listeners: list[tuple[int, Callable[[], asyncio.BaseProtocol], asyncio.Server]],
    ) -> None:
        for port, factory, _old in listeners:
            server = await self._loop.create_server(factory, host=dev.ip, port=port, backlog=64)
            if not self._accepting:
                server.close()
                return
            self._servers.append(server)
            self._listeners.setdefault(dev.ip, []).append((port, factory, server))

    @property
    def listener_count(self) -> int:
        """How many listening sockets are open."""
        return sum(len(s.sockets) for s in self._servers)

    def _device_at(
        self, sockname: tuple[str, int] | None, *, v3: bool, grpc: bool = False
    ) -> SimDevice | None:
        """The device a connection to local address `sockname` reaches, None when it must be reset."""
        dev = self.devices.get(sockname[0]) if sockname else None
        if dev is None or dev.fault is Fault.REFUSED or not self._accepting:
            return None
        if dev.boot_time > time.time():  # rebooting (shared mode has no listener of its own to close)
            return None
        if v3 and not (dev.spec.make is Make.WHATSMINER and dev.whatsminer_api_v3):
            return None
        if grpc and dev.firmware is not Firmware.BRAIINS:
            return None
        if dev.bosminer_stopped and sockname is not None and sockname[1] == self.rpc_port:
            return None  # Braiins OS: bosminer, which serves 4028, is stopped
        return dev


# ---- connections -------------------------------------------------------------------------------


class _Connection(asyncio.BufferedProtocol):
    """One accepted connection to a device: buffers its request, answers it, and closes.

    Subclasses frame one port's requests in `_feed`, which runs whenever bytes or the client's EOF
    arrive while `reading`. `_deliver` sends a reply the way the device's fault says.
    """

    __slots__ = (
        "buffer",
        "dev",
        "drained",
        "eof",
        "holding",
        "loop",
        "paused",
        "reading",
        "server",
        "timer",
        "transport",
    )

    v3: ClassVar[bool] = False  # only Whatsminers with API v3 answer on this port
    grpc: ClassVar[bool] = False  # only Braiins OS devices answer on this port
    transport: asyncio.Transport
    dev: SimDevice

    def __init__(self, server: FleetServer) -> None:
        self.server = server
        self.loop = server._loop
        self.buffer = b""
        self.reading = False  # a request is awaited; bytes that arrive are buffered for it
        self.holding = False  # HANG / NO_CLOSE: waiting for the client to close, or for hold_s
        self.eof = False
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False
        self.drained: Callable[[], None] | None = None  # runs once the transport takes writes again

    # ---- asyncio.BufferedProtocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        dev = self.server._device_at(transport.get_extra_info("sockname"), v3=self.v3, grpc=self.grpc)
        if dev is None:
            _reset(self.transport)
            return
        self.dev = dev
        self.reading = True
        self.server._connections.add(self)
        self._deadline(self.server.timings.read_timeout_s)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server._inbox

    def buffer_updated(self, nbytes: int) -> None:
        if self.reading:
            data = self.server._inbox[:nbytes].tobytes()
            self.buffer = self.buffer + data if self.buffer else data
            self._feed_guarded()

    def eof_received(self) -> bool:
        self.eof = True
        if self.reading:
            self._feed_guarded()
        elif self.holding:
            self._close()
        return True  # keep the transport open: a reply may still be written after the client's EOF

    def connection_lost(self, exc: Exception | None) -> None:
        self.reading = self.holding = False
        self.drained = None
        if self.timer is not None:
            self.timer.cancel()
        self.server._connections.discard(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drained is not None:
            # Not from inside this call: the transport calls it halfway through its own write handler,
            # which, if the buffer is empty by then and we have closed meanwhile, calls
            # connection_lost a second time.
            self.loop.call_soon(self._resume)

    def _resume(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not self.transport.is_closing():
            drained()

    # ---- helpers ---------------------------------------------------------------------------------

    def _feed(self) -> None:
        raise NotImplementedError

    def _feed_guarded(self) -> None:
        try:
            self._feed()
        except Exception:
            log.exception("simulator connection failed")
            self._close()

    def _deadline(self, seconds: float) -> None:
        """Close the connection in `seconds` unless another deadline replaces this one."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(seconds, self._close)

    def _cancel_deadline(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _close(self) -> None:
        """FIN: written bytes are flushed first."""
        self.reading = self.holding = False
        self.transport.close()

    def _reset(self) -> None:
        self.reading = self.holding = False
        _reset(self.transport)

    def _close_after_reply(self) -> None:
        """The device is going down: finish what was written, take nothing more."""
        self.reading = self.holding = False
        self._cancel_deadline()
        if not self.transport.is_closing():
            self.transport.close()

    def _when_drained(self, then: Callable[[], None]) -> None:
        """Run `then` now, or once the transport's write buffer is below its high-water mark again."""
        if self.paused:
            self.drained = then
        else:
            then()

    # ---- faults ----------------------------------------------------------------------------------

    def _deliver(self, payload: bytes) -> None:
        """Send `payload` the way the device's fault says, then close."""
        self.reading = False
        self._cancel_deadline()
        fault = self.dev.fault
        transport = self.transport
        if fault is None:
            transport.write(payload)
            transport.close()
        elif fault is Fault.HANG:
            self._hold()
        elif fault is Fault.SLOW_DRIP:
            self._drip(payload, 0)
        elif fault is Fault.RESET:
            transport.write(payload[: max(1, len(payload) // 2)])
            self._when_drained(self._reset)
        elif fault is Fault.GARBAGE:
            rng = random.Random(self.dev.seed ^ int(time.time()))
            # Junk that starts with a byte (not a NUL or a space): what it is, not an empty reply.
            transport.write(bytes([rng.randint(0x21, 0xFF)]) + rng.randbytes(rng.randint(63, 2047)))
            transport.close()
        elif fault is Fault.EMPTY:
            self._close()
        elif fault is Fault.HTTP:
            transport.write(_HTTP_400)
            transport.close()
        elif fault is Fault.TRUNCATED:
            transport.write(_truncated(payload) + b"\x00")
            transport.close()
        elif fault is Fault.INVALID_UTF8:
            at = payload.find(b':"') + 2  # inside the first string value (0 when there is none)
            transport.write(payload[: max(at, 0)] + _NOT_UTF8 + payload[max(at, 0) :])
            transport.close()
        elif fault is Fault.DEEP_NESTING:
            transport.write(
                b'{"STATUS":[{"STATUS":"S","When":%d,"Code":70,"Msg":"CGMiner stats",'
                b'"Description":"cgminer 1.0.0"}],"STATS":[{"STATS":0,"chain":' % int(time.time())
            )
            transport.write(_DEEP)
            transport.write(b'}],"id":1}\x00')
            transport.close()
        elif fault is Fault.OVERSIZED:
            # The real reply's envelope around megabytes of padding, streamed from one shared buffer.
            head = (
                b'{"STATUS":[{"STATUS":"S","When":%d,"Code":70,"Msg":"CGMiner stats",'
                b'"Description":"cgminer 1.0.0"}],"STATS":[' % int(time.time())
            )
            transport.write(head)
            self._pad(len(head))
        else:
            transport.write(payload)
            if fault is Fault.NO_CLOSE:
                self._when_drained(self._hold)
            else:
                transport.close()

    def _deny(self, request: RpcRequest) -> bytes:
        """cgminer's refusal of a command the client's API group may not run (Code 45)."""
        when = int(time.time())
        return (
            b'{"STATUS":[{"STATUS":"E","When":%d,"Code":45,"Msg":"Access denied to \'%s\' command",'
            b'"Description":"cgminer 4.11.1"}],"id":1}\x00' % (when, "+".join(request.commands).encode()[:64])
        )

    def _hold(self) -> None:
        """Keep the connection until the client closes its side, or for `hold_s`."""
        if self.eof:
            self._close()
            return
        self.holding = True
        self._deadline(self.server.timings.hold_s)

    def _drip(self, payload: bytes, start: int) -> None:
        if self.transport.is_closing():
            return
        if start >= len(payload):
            self._close()
            return
        step, interval = self.server.timings.drip_bytes, self.server.timings.drip_interval_s
        self.transport.write(payload[start : start + step])
        self._when_drained(partial(self._after, interval, partial(self._drip, payload, start + step)))

    def _after(self, seconds: float, then: Callable[[], None]) -> None:
        self.timer = self.loop.call_later(seconds, then)

    def _pad(self, sent: int) -> None:
        transport = self.transport
        while sent < OVERSIZED_BYTES:
            if transport.is_closing():
                return
            transport.write(_PAD)
            sent += len(_PAD)
            if self.paused:
                self.drained = partial(self._pad, sent)
                return
        transport.write(b'{"STATS":1}],"id":1}\x00')
        self._close()


class _RpcConnection(_Connection):
    """Port 4028: one request (a complete JSON object, or the first chunk of a plain-text command)."""

    __slots__ = ()

    def _feed(self) -> None:
        data = self.buffer
        if not data:
            if self.eof:
                self._close()  # the client left without asking anything
            return
        if len(data) < MAX_REQUEST and not self.eof and data.lstrip().startswith(b"{"):
            try:
                json.loads(data.rstrip(b"\x00\r\n "))
            except ValueError:
                return  # wait for the rest of the object
        self.reading = False
        self.dev.requests += 1
        try:
            request = parse_rpc_request(data[:MAX_REQUEST])
        except BadRequest:
            payload = _INVALID_JSON % int(time.time())
        else:
            if self.dev.fault is Fault.ACCESS_DENIED:
                self._deliver(self._deny(request))
                return
            try:
                payload = personality_for(self.dev).rpc(self.dev, request, time.time())
            except PersonalityMissing:
                self._reset()
                return
        self._deliver(payload)
        self.server.after_request(self.dev)


class _WebConnection(_Connection):
    """Port 80: HTTP/1.1 requests (head up to CRLFCRLF, then a Content-Length body), kept alive.

    The miners' lighttpd speaks HTTP/1.1 with keep-alive: the digest 401 and the authorized retry
    usually travel on one connection. A healthy device keeps the connection for up to
    WEB_KEEPALIVE_REQUESTS requests while the client does not ask to close and is not idle longer
    than WEB_KEEPALIVE_IDLE_S between them; a faulty one misbehaves on the first request as on 4028.
    """

    __slots__ = ("served",)

    def __init__(self, server: FleetServer) -> None:
        super().__init__(server)
        self.served = 0

    def _feed(self) -> None:
        while self.reading:
            data = self.buffer
            end = data.find(b"\r\n\r\n")
            if end < 0 and len(data) - 3 <= MAX_REQUEST and not self.eof:
                self._await_request()
                return
            if end < 0 or end > MAX_REQUEST:
                self._close()  # the client left mid-request, or its head is over the limit
                return
            head = _parse_http_head(data[: end + 4])
            if head is None:
                self._close()
                return
            method, target, version, headers = head
            length = int(headers.get("content-length", "0") or "0")
            stop = end + 4 + (min(length, MAX_REQUEST) if length > 0 else 0)
            if len(data) < stop:
                if self.eof:
                    self._close()
                else:
                    self._await_request()
                return
            self.buffer = data[stop:]
            path, _, query = target.partition("?")
            request = HttpRequest(
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=data[end + 4 : stop],
                version=version,
            )
            self._answer(request)

    def _await_request(self) -> None:
        """Wait for (the rest of) a request; between requests, for at most WEB_KEEPALIVE_IDLE_S."""
        if self.timer is None:
            self._deadline(WEB_KEEPALIVE_IDLE_S)

    def _answer(self, request: HttpRequest) -> None:
        self._cancel_deadline()
        self.served += 1
        dev = self.dev
        dev.requests += 1
        try:
            response = personality_for(dev).http(dev, request, time.time())
        except PersonalityMissing:
            self._reset()
            return
        keep = (
            dev.fault is None
            and self.served < WEB_KEEPALIVE_REQUESTS
            and request.headers.get("connection", "").lower() != "close"
            and request.version == "HTTP/1.1"
        )
        payload = _http_bytes(response, request.method == "HEAD", keep_alive=keep)
        if keep:
            self.transport.write(payload)
        else:
            self._deliver(payload)
        self.server.after_request(dev)


class _V3Connection(_Connection):
    """Port 4433: a 4-byte little-endian length, then that many bytes of JSON; reset on a bad length."""

    __slots__ = ("length",)
    v3 = True

    def __init__(self, server: FleetServer) -> None:
        super().__init__(server)
        self.length = 0  # of the body, once the length prefix is in

    def _feed(self) -> None:
        data = self.buffer
        if not self.length:
            if len(data) < 4:
                if self.eof:
                    self._close()
                return
            length = int.from_bytes(data[:4], "little")
            if length <= 0 or length > MAX_REQUEST:
                self._reset()
                return
            self.length = length
            self.buffer = data = data[4:]
            self._deadline(self.server.timings.read_timeout_s)  # the body gets a deadline of its own
        if len(data) < self.length:
            if self.eof:
                self._close()
            return
        self.reading = False
        self.dev.requests += 1
        try:
            request = json.loads(data[: self.length])
        except ValueError:
            request = None
        personality = personality_for(self.dev)
        if not isinstance(request, dict) or not isinstance(personality, V3Personality):
            reply: dict[str, object] = {
                "code": -1,
                "when": int(time.time()),
                "msg": "invalid json",
                "desc": "",
            }
        else:
            reply = personality.v3(self.dev, request, time.time())
        body = json.dumps(reply, separators=(",", ":")).encode()
        self._deliver(len(body).to_bytes(4, "little") + body)
        self.server.after_request(self.dev)


class _GrpcConnection(_Connection):
    """Port 50051 (Braiins OS): gRPC over cleartext HTTP/2, unary calls, many on one connection.

    h2 keeps the HTTP/2 state; a request is answered when its stream ends. Faults: HANG accepts and
    never answers (not even HTTP/2's SETTINGS), GARBAGE answers an HTTP/1.1 400 page; the others
    serve normally.
    """

    __slots__ = ("h2", "streams")
    grpc = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        if not self.reading or self.dev.fault is Fault.HANG:
            return
        if self.dev.fault is Fault.GARBAGE:  # not HTTP/2 (a web server's page), the connection kept open
            self.transport.write(_HTTP_400)
            return
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.h2.initiate_connection()
        self.transport.write(self.h2.data_to_send())

    def _feed(self) -> None:
        data, self.buffer = self.buffer, b""
        if self.dev.fault in (Fault.HANG, Fault.GARBAGE):
            self._deadline(self.server.timings.hold_s)
            return
        if self.eof and not data:
            self._close()
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.h2.data_to_send())
            self._close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers}
                self.streams[event.stream_id] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.streams:
                    self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.streams:
                self._answer(event.stream_id, *self.streams.pop(event.stream_id))
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.write(self.h2.data_to_send())
                self._close()
                return
        if not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())
            self._deadline(self.server.timings.read_timeout_s)
        self.server.after_request(self.dev)

    def _answer(self, stream: int, headers: dict[str, str], body: bytearray) -> None:
        self.dev.requests += 1
        personality = personality_for(self.dev)
        head = [(":status", "200"), ("content-type", "application/grpc")]
        extra: list[tuple[str, str]]
        if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
            status, text, reply, extra = 3, "malformed gRPC message", b"", []  # INVALID_ARGUMENT
        elif not isinstance(personality, GrpcPersonality):
            status, text, reply, extra = 12, "unimplemented", b"", []
        else:
            status, text, reply, extra = personality.grpc(
                self.dev, headers.get(":path", ""), headers, bytes(body[5:]), time.time()
            )
        if status:  # trailers-only, as gRPC servers answer every error
            trailers = [("grpc-status", str(status)), ("grpc-message", quote(text))]
            self.h2.send_headers(stream, head + trailers, end_stream=True)
            return
        self.h2.send_headers(stream, head + extra)
        self.h2.send_data(stream, struct.pack(">BI", 0, len(reply)) + reply)
        self.h2.send_headers(stream, [("grpc-status", "0")], end_stream=True)


def _truncated(payload: bytes) -> bytes:
    """The first half of a reply (NUL dropped), cut between characters rather than inside one."""
    body = payload.rstrip(b"\x00")
    cut = max(1, len(body) // 2)
    while cut > 1 and 0x80 <= body[cut] < 0xC0:  # a UTF-8 continuation byte: step back to its lead
        cut -= 1
    return body[:cut]


def _parse_http_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    """Method, target, version and headers (lower-cased names) of a request head; None if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    version = parts[2] if len(parts) > 2 else "HTTP/1.0"
    return parts[0].upper(), parts[1], version, headers


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

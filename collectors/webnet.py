"""The wire under the web readers: an httpx transport that speaks HTTP/1.1 through h11 on one socket.

h11 (the HTTP/1.1 state machine httpcore itself runs on) does all the protocol work: request framing,
status line and header parsing, Content-Length, chunked bodies, keep-alive. This module moves its bytes
with asyncio's socket calls and answers httpx's transport interface, so `httpx.DigestAuth` and the
httpx request/response models work on it unchanged, and any other httpx transport (respx's, in the unit
tests) can stand in for it.

Why not httpcore's pool: a poller meets a few thousand miners' web pages in a cycle, each read once.
The pool's per-request bookkeeping, anyio locks and cancellation shields cost more CPU than the device's
whole API read; here a transport is one connection for one exchange (the digest 401 and its retry), and
nothing is shared between devices. `bench/bench_webnet.py` prints what this saves against a plain
`httpx.AsyncClient` with `httpx.DigestAuth` on the same fleet; keep this module only while it does.

Errors are httpx's own (ConnectError, ConnectTimeout, ReadError, ReadTimeout, WriteError, WriteTimeout,
RemoteProtocolError, UnsupportedProtocol), raised from the OSError, TimeoutError or h11 error beneath,
so `web._translate` sees what any httpx transport would raise. TLS is refused: miner web UIs are plain
HTTP on port 80. A body larger than `max_body` is MinerProtocolError, found from Content-Length before
it is read when the server declares it.
"""

from __future__ import annotations

import asyncio
import select
import socket

import h11
import httpx

from collectors.connection import resolve
from collectors.errors import MinerProtocolError
from collectors.pacing import checkpoint

READ_CHUNK = 65_536


class ExchangeTransport(httpx.AsyncBaseTransport):
    """One connection for the requests of one exchange; `aclose` closes it.

    The connection is kept between requests while both sides allow it (h11 ends the cycle cleanly and
    the server has not closed the idle socket); otherwise the next request dials again.
    `connect_s` bounds the connect, `io_s` each send and each wait for bytes (None: no bound of its own,
    for an exchange whose whole deadline is shorter anyway; each bound is a timer to schedule and cancel).
    """

    __slots__ = ("_conn", "_connect_s", "_io_s", "_max_body", "_origin", "_sock")

    def __init__(self, *, connect_s: float, io_s: float | None, max_body: int) -> None:
        self._connect_s = connect_s
        self._io_s = io_s
        self._max_body = max_body
        self._sock: socket.socket | None = None
        self._conn: h11.Connection | None = None
        self._origin: tuple[str, int] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                "miner web UIs are read over plain HTTP; TLS is not supported", request=request
            )
        origin = (url.host, url.port or 80)
        await checkpoint()  # building and sending the request: device work, paced per loop iteration
        if self._sock is not None and (origin != self._origin or not _idle_and_open(self._sock)):
            self._close()
        if self._sock is None:
            self._sock = await self._connect(request)
            self._conn = h11.Connection(h11.CLIENT)
            self._origin = origin
        assert self._conn is not None
        try:
            response = await self._round_trip(self._sock, self._conn, request)
        except BaseException:
            self._close()
            raise
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
        else:
            self._close()
        await checkpoint()  # what httpx does with the response next (digest, body) is device work too
        return response

    async def aclose(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._conn = None

    async def _connect(self, request: httpx.Request) -> socket.socket:
        loop = asyncio.get_running_loop()
        host, port = request.url.host, request.url.port or 80
        try:
            async with asyncio.timeout(self._connect_s):
                family, address = await resolve(loop, host, port)
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    await loop.sock_connect(sock, address)
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection within {self._connect_s}s", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return sock

    async def _round_trip(
        self, sock: socket.socket, conn: h11.Connection, request: httpx.Request
    ) -> httpx.Response:
        loop = asyncio.get_running_loop()
        try:
            out = conn.send(
                h11.Request(method=request.method, target=request.url.raw_path, headers=request.headers.raw)
            )
            body = request.content
            if body:
                out += conn.send(h11.Data(data=body))
            out += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        reading = False
        try:
            async with asyncio.timeout(self._io_s) as limit:
                await loop.sock_sendall(sock, out)
                reading = True
                head: h11.Response | None = None
                chunks: list[bytes] = []
                size = 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        if self._io_s is not None:
                            limit.reschedule(loop.time() + self._io_s)
                        conn.receive_data(await loop.sock_recv(sock, READ_CHUNK))
                    elif isinstance(event, h11.Response):
                        head = event
                        self._check_declared_length(head)
                    elif isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > self._max_body:
                            raise MinerProtocolError(f"web body exceeds the {self._max_body}-byte cap")
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        raise httpx.RemoteProtocolError(
                            "server disconnected without sending a response", request=request
                        )
                    # InformationalResponse (1xx): keep reading for the final answer.
        except TimeoutError as exc:
            late: type[httpx.TimeoutException] = httpx.ReadTimeout if reading else httpx.WriteTimeout
            raise late(f"no progress within {self._io_s}s", request=request) from exc
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except OSError as exc:
            broken: type[httpx.NetworkError] = httpx.ReadError if reading else httpx.WriteError
            raise broken(str(exc) or type(exc).__name__, request=request) from exc
        assert head is not None
        return httpx.Response(
            head.status_code,
            headers=list(head.headers),
            content=b"".join(chunks),
            request=request,
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    def _check_declared_length(self, head: h11.Response) -> None:
        for name, value in head.headers:
            if name == b"content-length" and value.isdigit() and int(value) > self._max_body:
                raise MinerProtocolError(
                    f"web body of {value.decode()} bytes exceeds the {self._max_body}-byte cap"
                )


def _idle_and_open(sock: socket.socket) -> bool:
    """True when a kept-alive connection can carry another request: nothing is waiting to be read.
    Readable while idle means the server closed it (or sent bytes nobody asked for). A socket this
    module closed is never asked about: `_close` drops it with the h11 state."""
    poller = select.poll()  # not select(): descriptors past 1024 are the norm in a poller
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)

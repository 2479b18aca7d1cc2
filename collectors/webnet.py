"""The socket layer under the web readers: an httpcore network backend on asyncio's socket calls.

httpcore (httpx's engine) does the HTTP/1.1 work (h11); this module only moves its bytes. Its default
backend goes through anyio's stream and lock layers, which cost more CPU than the whole API read of a
device when a poller meets a few thousand miners' web pages at once; this one is a non-blocking socket
driven by `loop.sock_connect` / `sock_recv` / `sock_sendall`, each wait bounded by the timeout httpcore
passes.

The errors are httpcore's own (ConnectError, ConnectTimeout, ReadError, ReadTimeout, WriteError,
WriteTimeout), raised from the OSError or TimeoutError underneath, so `web._translate` sees what the
stock backend would have raised. TLS is refused: miner web UIs are plain HTTP on port 80.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
"""The socket option shape httpcore passes through (`setsockopt` arguments)."""


class SocketStream(httpcore.AsyncNetworkStream):
    """One connected non-blocking TCP socket."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                return await loop.sock_recv(self._sock, max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(f"no bytes within {timeout}s") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_sendall(self._sock, buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(f"could not send within {timeout}s") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._sock.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("miner web UIs are read over plain HTTP; TLS is not supported")

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._sock
        if info == "is_readable":
            # httpcore asks before reusing a kept-alive connection: readable means the server closed it
            # (or sent bytes nobody asked for), so the connection must not carry another request.
            if self._sock.fileno() < 0:
                return True
            poller = select.poll()  # not select(): descriptors past 1024 are the norm in a poller
            poller.register(self._sock, select.POLLIN)
            return bool(poller.poll(0))
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "client_addr":
            return self._sock.getsockname()
        return None


class SocketBackend(httpcore.AsyncNetworkBackend):
    """Opens `SocketStream`s. Literal IP addresses (every miner) skip the resolver."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                family, address = await _address(loop, host, port)
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for option in socket_options or ():
                        sock.setsockopt(*option)
                    if local_address is not None:
                        sock.bind((local_address, 0))
                    await loop.sock_connect(sock, address)
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection within {timeout}s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return SocketStream(sock)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("miner web UIs are reached over TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _address(loop: asyncio.AbstractEventLoop, host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"{host} resolves to no address") from None
        family, _type, _proto, _name, address = infos[0]
        return family, address
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port, 0, 0)
    return socket.AF_INET, (str(ip), port)

"""One request, one reply, over asyncio TCP, with explicit deadlines and a size cap.

This is the one place where socket and asyncio exceptions become `collectors.errors` exceptions:

- ConnectionRefusedError -> MinerConnectionRefusedError
- ConnectionResetError, BrokenPipeError -> MinerConnectionResetError
- an orderly close before any byte of reply -> MinerEmptyReplyError (a protocol error: the device is
  reachable, it just will not answer us)
- TimeoutError (connect or read deadline) -> MinerTimeoutError(phase="connect" | "read")
- any other OSError (no route, DNS) -> MinerConnectionError

Every function opens its own connection and closes it before returning or raising: callers never hold a
socket. No deadline has a hidden default: the caller passes a `Timeouts` value.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors.errors import (
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerEmptyReplyError,
    MinerTimeoutError,
)
from collectors.framing import NulFrame, V3Frame
from collectors.pacing import checkpoint


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines in seconds: `connect` per TCP connect, `read` per reply (request sent -> reply read),
    `device` for one whole `read_device`/`identify_device` call (identification and every command)."""

    connect: float
    read: float
    device: float

    def __post_init__(self) -> None:
        for name in ("connect", "read", "device"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Timeouts.{name} must be positive")


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits: `max_reply_bytes` caps one reply (a larger one raises MinerReplyTooLargeError)."""

    max_reply_bytes: int = 4 * 1024 * 1024


Frame = Callable[[int], NulFrame | V3Frame]
"""Makes the accumulator for one reply, given the size cap (NulFrame or V3Frame)."""

RECV_BYTES = 65_536
"""The most one receive asks the kernel for; a frame keeps at most the reply cap of what comes."""


async def exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    timeouts: Timeouts,
    limits: Limits,
    frame: Frame = NulFrame,
) -> bytes:
    """Connect, send `payload`, read one frame, close; return the frame's bytes (NUL not included).

    One non-blocking socket and the loop's socket calls: a device connection lives for one request, so
    an asyncio transport and protocol (or streams on top) would be built and torn down for every
    reply, which measured a third more CPU per connection. One deadline object serves both phases:
    `timeouts.connect` until connected, then `timeouts.read` for the request and the whole reply.
    """
    loop = asyncio.get_running_loop()
    phase = "connect"
    sock: socket.socket | None = None
    await checkpoint()  # opening a connection is device work: paced per loop iteration (pacing.py)
    try:
        async with asyncio.timeout(timeouts.connect) as deadline:
            family, address = await resolve(loop, host, port)
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            phase = "read"
            deadline.reschedule(loop.time() + timeouts.read)
            await loop.sock_sendall(sock, payload)
            reply = frame(limits.max_reply_bytes)
            chunks = 0
            while True:
                if chunks:  # a long reply (an oversized one streams megabytes) yields between chunks
                    await checkpoint()
                chunk = await loop.sock_recv(sock, RECV_BYTES)
                chunks += 1
                if not chunk:
                    data = reply.at_eof()
                    break
                if reply.feed(chunk):
                    data = reply.reply()
                    break
    except TimeoutError as exc:
        if phase == "connect":
            raise MinerTimeoutError(
                f"{host}:{port}: no TCP connection within {timeouts.connect}s", phase="connect"
            ) from exc
        raise MinerTimeoutError(
            f"{host}:{port}: no complete reply within {timeouts.read}s", phase="read"
        ) from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise MinerConnectionResetError(f"{host}:{port}: connection reset by the device") from exc
    except OSError as exc:  # refused, unreachable, unresolvable (socket.gaierror is an OSError)
        raise _os_error(host, port, exc) from exc
    finally:
        # We have the whole reply (or gave up): close at once rather than wait for the device's FIN.
        if sock is not None:
            sock.close()
    if not data:
        raise MinerEmptyReplyError(f"{host}:{port}: connection closed without a reply")
    return data


async def resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    """The socket family and address to connect to; literal IP addresses (every miner) skip the
    resolver."""
    try:
        socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError):
        pass
    else:  # dotted-quad IPv4, the common case: what ipaddress would return, without building an object
        return socket.AF_INET, (host, port)
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


async def exchange_v3(host: str, port: int, payload: bytes, *, timeouts: Timeouts, limits: Limits) -> bytes:
    """`exchange` with Whatsminer API v3 framing (4-byte little-endian length + JSON) for the reply."""
    return await exchange(host, port, payload, timeouts=timeouts, limits=limits, frame=V3Frame)


def _os_error(host: str, port: int, exc: OSError) -> MinerConnectionError:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return MinerConnectionRefusedError(f"{host}:{port}: connection refused")
    if isinstance(exc, ConnectionResetError):
        return MinerConnectionResetError(f"{host}:{port}: connection reset by the device")
    reason = exc.strerror or type(exc).__name__
    return MinerConnectionError(f"{host}:{port}: {reason}")

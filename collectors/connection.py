"""One request, one reply, over asyncio TCP, with explicit deadlines and a size cap.

This is the one place where socket and asyncio exceptions become `collectors.errors` exceptions:

- ConnectionRefusedError -> MinerConnectionRefusedError
- ConnectionResetError, BrokenPipeError, a close before any byte -> MinerConnectionResetError
- TimeoutError (connect or read deadline) -> MinerTimeoutError(phase="connect" | "read")
- any other OSError (no route, DNS) -> MinerConnectionError

Every function opens its own connection and closes it before returning or raising: callers never hold a
socket. No deadline has a hidden default: the caller passes a `Timeouts` value.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from collectors.errors import (
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerError,
    MinerTimeoutError,
)
from collectors.framing import NulFrame, V3Frame


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


class _ReplyProtocol(asyncio.Protocol):
    """Feeds what one connection receives to a frame and resolves `reply` when the frame is complete,
    the device closes, or the connection fails. Bytes after that are not kept."""

    __slots__ = ("frame", "reply", "transport")

    def __init__(self, frame: NulFrame | V3Frame, reply: asyncio.Future[bytes]) -> None:
        self.frame = frame
        self.reply = reply
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.reply.done():
            return
        try:
            complete = self.frame.feed(data)
        except MinerError as exc:
            self.reply.set_exception(exc)
            return
        if complete:
            self.reply.set_result(self.frame.reply())

    def eof_received(self) -> bool:
        self._end(None)
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    def _end(self, exc: Exception | None) -> None:
        if self.reply.done():
            return
        if exc is not None:
            self.reply.set_exception(exc)
            return
        try:
            self.reply.set_result(self.frame.at_eof())
        except MinerError as error:
            self.reply.set_exception(error)


async def exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    timeouts: Timeouts,
    limits: Limits,
    frame: Frame = NulFrame,
) -> bytes:
    """Connect, send `payload`, read one frame, close; return the frame's bytes (NUL not included)."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()
    protocol = _ReplyProtocol(frame(limits.max_reply_bytes), reply)
    try:
        async with asyncio.timeout(timeouts.connect):
            transport, _ = await loop.create_connection(lambda: protocol, host, port)
    except TimeoutError as exc:
        raise MinerTimeoutError(
            f"{host}:{port}: no TCP connection within {timeouts.connect}s", phase="connect"
        ) from exc
    except ConnectionRefusedError as exc:
        raise MinerConnectionRefusedError(f"{host}:{port}: connection refused") from exc
    except (socket.gaierror, OSError) as exc:
        raise _os_error(host, port, exc) from exc
    try:
        async with asyncio.timeout(timeouts.read):
            transport.write(payload)
            data = await reply
    except TimeoutError as exc:
        raise MinerTimeoutError(
            f"{host}:{port}: no complete reply within {timeouts.read}s", phase="read"
        ) from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise MinerConnectionResetError(f"{host}:{port}: connection reset by the device") from exc
    except OSError as exc:
        raise _os_error(host, port, exc) from exc
    finally:
        # We have the whole reply (or gave up): abort rather than wait for a FIN the device may never ack.
        transport.abort()
    if not data:
        raise MinerConnectionResetError(f"{host}:{port}: connection closed without a reply")
    return data


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

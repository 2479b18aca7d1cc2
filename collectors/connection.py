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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from collectors.errors import (
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerTimeoutError,
)
from collectors.framing import read_nul_frame, read_v3_frame


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


FrameReader = Callable[[asyncio.StreamReader, int], Awaitable[bytes]]

STREAM_BUFFER_BYTES = 64 * 1024
"""What asyncio may buffer per connection before it stops reading the socket (it pauses past twice
this). The frame readers read in chunks and enforce `Limits.max_reply_bytes` themselves, so this stays
small: tied to the reply cap, a fleet of devices streaming oversized replies held ~1 MiB of buffer per
connection, and the fault test's poller peaked at 434 MiB under CPU load."""


async def exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    timeouts: Timeouts,
    limits: Limits,
    read_frame: FrameReader = read_nul_frame,
) -> bytes:
    """Connect, send `payload`, read one frame, close; return the frame's bytes (NUL not included)."""
    try:
        async with asyncio.timeout(timeouts.connect):
            reader, writer = await asyncio.open_connection(host, port, limit=STREAM_BUFFER_BYTES)
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
            writer.write(payload)
            await writer.drain()
            data = await read_frame(reader, limits.max_reply_bytes)
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
        writer.transport.abort()
    if not data:
        raise MinerConnectionResetError(f"{host}:{port}: connection closed without a reply")
    return data


async def exchange_v3(host: str, port: int, payload: bytes, *, timeouts: Timeouts, limits: Limits) -> bytes:
    """`exchange` with Whatsminer API v3 framing (4-byte little-endian length + JSON) for the reply."""
    return await exchange(host, port, payload, timeouts=timeouts, limits=limits, read_frame=read_v3_frame)


def _os_error(host: str, port: int, exc: OSError) -> MinerConnectionError:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return MinerConnectionRefusedError(f"{host}:{port}: connection refused")
    if isinstance(exc, ConnectionResetError):
        return MinerConnectionResetError(f"{host}:{port}: connection reset by the device")
    reason = exc.strerror or type(exc).__name__
    return MinerConnectionError(f"{host}:{port}: {reason}")

"""Unary gRPC calls over cleartext HTTP/2 (h2c with prior knowledge), for Braiins OS+'s API on 50051.

One `GrpcConnection` is one TCP connection carrying the calls of one action, one after another. A call
is an HTTP/2 POST to `/<package>.<Service>/<Method>` with `content-type: application/grpc`, `te:
trailers`, a `grpc-timeout` and the caller's metadata (`authorization`); its body and the answer's are
one length-prefixed message each (a flag byte, 0: uncompressed, then a 4-byte big-endian length). The
status is `grpc-status` in the trailers, or in the headers of a trailers-only answer (every error).

Deadlines are the caller's `Timeouts`: `connect` for the TCP connect, `read` for each answer. Foreign
exceptions are translated here, once:

- ConnectionRefusedError -> MinerConnectionRefusedError naming the gRPC port (the firmware has no gRPC
  API: BOSminer before BOSer, or the API switched off)
- a deadline -> MinerTimeoutError(phase="connect" | "read"); a close or RST_STREAM -> MinerConnectionError
- h2 / hyperframe errors, a non-200, a compressed or oversized message -> MinerProtocolError
- grpc-status 16 UNAUTHENTICATED / 7 PERMISSION_DENIED -> MinerAuthError; any other non-zero ->
  MinerAPIError(method, status, grpc-message)

Metadata values (a token) are never logged or put in an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hyperframe.exceptions

from collectors.connection import Timeouts
from collectors.errors import (
    MinerAPIError,
    MinerAuthError,
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerError,
    MinerProtocolError,
    MinerTimeoutError,
)

GRPC_PORT = 50051
MAX_MESSAGE = 1024 * 1024  # the few messages we ask for are tens of bytes; anything near this is wrong
RECV_BYTES = 65_536
STATUS_OK, STATUS_PERMISSION_DENIED, STATUS_UNAUTHENTICATED = 0, 7, 16


@dataclass(frozen=True, slots=True)
class GrpcReply:
    """A successful call's message and its response headers (initial metadata)."""

    message: bytes
    headers: dict[str, str] = field(default_factory=dict)


def frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return struct.pack(">BI", 0, len(message)) + message


class GrpcConnection:
    """One HTTP/2 connection to a device's gRPC port; `async with` opens and closes it."""

    def __init__(self, host: str, port: int, timeouts: Timeouts) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self._settled = False  # the server's connection preface (a SETTINGS frame) has arrived
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"

    async def __aenter__(self) -> GrpcConnection:
        try:
            async with asyncio.timeout(self.timeouts.connect):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError as exc:
            raise MinerTimeoutError(
                f"{self.where}: no TCP connection to the gRPC API within {self.timeouts.connect}s",
                phase="connect",
            ) from exc
        except ConnectionRefusedError as exc:
            raise MinerConnectionRefusedError(
                f"{self.where}: connection refused: no gRPC API on port {self.port} "
                "(Braiins OS before BOSer, or its gRPC API is off)"
            ) from exc
        except OSError as exc:
            raise MinerConnectionError(f"{self.where}: gRPC connect failed: {exc.strerror or exc}") from exc
        self._h2.initiate_connection()
        await self._flush()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._h2.close_connection()
                self._writer.write(self._h2.data_to_send())
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 0.5)

    async def _flush(self) -> None:
        assert self._writer is not None
        data = self._h2.data_to_send()
        if data:
            self._writer.write(data)
            try:
                await asyncio.wait_for(self._writer.drain(), self.timeouts.read)
            except TimeoutError as exc:
                raise MinerTimeoutError(f"{self.where}: gRPC request not sent", phase="read") from exc
            except OSError as exc:
                raise MinerConnectionResetError(f"{self.where}: gRPC connection lost") from exc

    async def call(self, path: str, request: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> GrpcReply:
        """One unary call: `path` is `/package.Service/Method`, `request` the encoded message."""
        method = path.rsplit("/", 1)[-1]
        try:
            return await self._call(path, method, request, metadata)
        except (h2.exceptions.H2Error, hyperframe.exceptions.HyperframeError) as exc:
            raise MinerProtocolError(f"{self.where}: {method}: not an HTTP/2 gRPC answer ({exc})") from exc

    async def _call(
        self, path: str, method: str, request: bytes, metadata: tuple[tuple[str, str], ...]
    ) -> GrpcReply:
        assert self._reader is not None
        stream = self._h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.where),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", f"{max(1, int(self.timeouts.read * 1000))}m"),
            *metadata,
        ]
        self._h2.send_headers(stream, headers)
        self._h2.send_data(stream, frame(request), end_stream=True)
        await self._flush()
        response: dict[str, str] = {}
        trailers: dict[str, str] = {}
        body = bytearray()
        ended = False
        while not ended:
            try:
                data = await asyncio.wait_for(self._reader.read(RECV_BYTES), self.timeouts.read)
            except TimeoutError as exc:
                raise MinerTimeoutError(
                    f"{self.where}: {method}: no gRPC answer within {self.timeouts.read}s", phase="read"
                ) from exc
            except OSError as exc:
                raise MinerConnectionResetError(f"{self.where}: {method}: gRPC connection reset") from exc
            if not data:
                raise MinerConnectionResetError(f"{self.where}: {method}: the device closed the connection")
            if not self._settled:
                # An HTTP/2 server speaks first with SETTINGS (frame type 4 in byte 3); h2 would buffer
                # anything else (an HTTP/1.1 page reads as a 4 MB frame header) until the deadline.
                if len(data) >= 4 and data[3] != 4:
                    raise MinerProtocolError(f"{self.where}: {method}: not an HTTP/2 server", data=data)
                self._settled = True
            for event in self._h2.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    raise MinerConnectionError(
                        f"{self.where}: {method}: the device ended the HTTP/2 connection"
                    )
                if getattr(event, "stream_id", stream) != stream:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    response.update(_headers(event.headers))
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self._h2.acknowledge_received_data(event.flow_controlled_length, stream)
                    if len(body) > MAX_MESSAGE + 5:
                        raise MinerProtocolError(f"{self.where}: {method}: answer over {MAX_MESSAGE} bytes")
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers.update(_headers(event.headers))
                elif isinstance(event, h2.events.StreamReset):
                    raise MinerConnectionResetError(
                        f"{self.where}: {method}: the device reset the stream (code {event.error_code})"
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            await self._flush()
        return GrpcReply(_message(self.where, method, response, trailers, bytes(body)), response)


def _headers(pairs: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:  # type: ignore[attr-defined]
        key = name.decode() if isinstance(name, bytes) else str(name)
        out[key.lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return out


def _message(
    where: str, method: str, response: dict[str, str], trailers: dict[str, str], body: bytes
) -> bytes:
    if response.get(":status") != "200":
        raise MinerProtocolError(f"{where}: {method}: HTTP status {response.get(':status')!r}, not gRPC")
    status_text = trailers.get("grpc-status", response.get("grpc-status"))
    if status_text is None:
        raise MinerProtocolError(f"{where}: {method}: the answer carries no grpc-status")
    try:
        status = int(status_text)
    except ValueError as exc:
        raise MinerProtocolError(f"{where}: {method}: grpc-status {status_text!r}") from exc
    detail = unquote(trailers.get("grpc-message", response.get("grpc-message", "")))
    if status in (STATUS_UNAUTHENTICATED, STATUS_PERMISSION_DENIED):
        raise MinerAuthError(f"{where}: {method}: gRPC status {status}: {detail}")
    if status != STATUS_OK:
        raise MinerAPIError(method, status, detail or "gRPC error")
    if len(body) < 5:
        raise MinerProtocolError(f"{where}: {method}: status OK without a message", data=body)
    compressed, size = struct.unpack(">BI", body[:5])
    if compressed:
        raise MinerProtocolError(f"{where}: {method}: a compressed message (none was negotiated)")
    if size != len(body) - 5:
        raise MinerProtocolError(f"{where}: {method}: message of {len(body) - 5} bytes claims {size}")
    return body[5:]


__all__ = ["GRPC_PORT", "GrpcConnection", "GrpcReply", "MinerError", "frame"]

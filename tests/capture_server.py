"""A test-only device: serves the real captured replies over a real TCP socket.

Each request `{"command":"a+b"}` is answered with the capture's bytes for that command plus a NUL, like a
device. A multi-command is answered with the capture of that exact set when there is one (that is how the
firmware answered it), else composed from the single captures as cgminer does. A command without a
capture gets cgminer's `STATUS=E Code 14 Invalid command`. API v3 requests (length-prefixed) are answered
with the v3 captures, length-prefixed. This server parses only the request, never a reply.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collectors.connection import Timeouts
from collectors.reader import read_device
from collectors.sample import Sample, State

VARIANTS = ("-2", "_with_errors")


@dataclass
class CaptureSet:
    """The replies of one captured device, by command name (multi-command keys joined with '+')."""

    name: str
    replies: dict[str, bytes] = field(default_factory=dict)
    v3: dict[str, bytes] = field(default_factory=dict)

    def description(self) -> str:
        for body in self.replies.values():
            text = body.decode(errors="replace")
            start = text.find('"Description"')
            if start >= 0:
                end = text.find('"', text.find(":", start) + 2)
                return text[text.find(":", start) + 1 : end + 1].strip().strip('"')
        return "cgminer"


def load_sets(captures: Path) -> dict[str, CaptureSet]:
    """Group the capture files into devices: `<make>/<device>_<command>[-2].<ext>`."""
    base: dict[str, CaptureSet] = {}
    variants: dict[str, dict[str, bytes]] = {}
    for path in sorted(captures.rglob("*")):
        if path.suffix not in (".json", ".txt") or path.name == "SOURCES.md":
            continue
        stem = path.name.removesuffix(".raw.txt").removesuffix(".json")
        device, _, command = stem.partition("_")
        variant = ""
        for marker in VARIANTS:
            if command.endswith(marker):
                command, variant = command.removesuffix(marker), marker
        key = f"{path.parent.name}/{device}"
        data = path.read_bytes().rstrip(b"\n")
        if variant:
            variants.setdefault(f"{key}{variant}", {})[command] = data
        else:
            target = base.setdefault(key, CaptureSet(key))
            if command.startswith("v3_"):
                target.v3[command.removeprefix("v3_")] = data
            else:
                target.replies[command] = data
    for name, extra in variants.items():
        parent = next(k for k in base if name.startswith(k) and name[len(k) :] in VARIANTS)
        merged = CaptureSet(name, dict(base[parent].replies), dict(base[parent].v3))
        merged.replies.update(extra)
        base[name] = merged
    return base


def _error(description: str, command: str) -> bytes:
    return json.dumps(
        {
            "STATUS": [
                {
                    "STATUS": "E",
                    "When": 0,
                    "Code": 14,
                    "Msg": f"Invalid command {command}",
                    "Description": description,
                }
            ],
            "id": 1,
        }
    ).encode()


class CaptureServer:
    """Serves one CaptureSet on 127.0.0.1 (port 4028-style) and optionally its v3 replies."""

    def __init__(self, capture: CaptureSet) -> None:
        self.capture = capture
        self.requests: list[str] = []
        self._servers: list[asyncio.Server] = []

    async def start(self) -> int:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def start_v3(self) -> int:
        server = await asyncio.start_server(self._handle_v3, "127.0.0.1", 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    def answer(self, command: str) -> bytes:
        replies = self.capture.replies
        if command in replies:
            return replies[command]
        names = command.split("+")
        for key, body in replies.items():
            if "+" in key and set(key.split("+")) == set(names):
                return body
        if len(names) == 1:
            return _error(self.capture.description(), command)
        for key, body in replies.items():
            if "+" in key and b'"STATUS": "E"' in body.replace(b'"STATUS":"E"', b'"STATUS": "E"'):
                return body  # this firmware refuses every multi-command
        parts = [b'"' + n.encode() + b'":[' + self.answer(n) + b"]" for n in names]
        return b"{" + b",".join(parts) + b',"id":1}'

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buffer += chunk
                try:
                    request = json.loads(buffer)
                    break
                except ValueError:
                    continue
            command = str(request.get("command") or request.get("cmd"))
            self.requests.append(command)
            writer.write(self.answer(command) + b"\x00")
            await writer.drain()
        finally:
            writer.close()

    async def _handle_v3(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("<I", await reader.readexactly(4))
            request = json.loads(await reader.readexactly(length))
            cmd, param = request.get("cmd"), request.get("param")
            key = f"{cmd}_{param}" if param else cmd
            body = self.capture.v3.get(key) or self.capture.replies.get(f"v3_{key}")
            if body is None:
                body = json.dumps({"code": -1, "msg": "invalid cmd", "desc": cmd}).encode()
            self.requests.append(key)
            writer.write(struct.pack("<I", len(body)) + body)
            await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


async def read_capture(capture: CaptureSet, timeouts: Timeouts) -> Sample:
    """The Sample collectors.reader makes of one capture set, served by a CaptureServer for the read."""
    server = CaptureServer(capture)
    port = await server.start()
    try:
        return (await read_device("127.0.0.1", port, timeouts=timeouts)).sample
    finally:
        await server.close()


Reading = tuple[str, str, str | None, State, float | None, float | None, list[int], float | None]
"""What a capture set is expected to read as, each value read by eye from its files: (make, firmware
vendor, model, state, hashrate TH/s, hottest C, fans rpm, power W); None where the set carries none."""


def assert_reads_as(sample: Sample, expected: Reading) -> None:
    """The sample's headline figures are the expected ones (floats to 1 part in a million)."""
    make, vendor, model, state, hashrate, temp_max, fans, power = expected

    def near(value: float | None) -> object:
        return None if value is None else pytest.approx(value, rel=1e-6)

    assert (sample.make, sample.firmware_vendor, sample.model, sample.state) == (make, vendor, model, state)
    assert sample.hashrate_ths == near(hashrate)
    assert sample.temp_max_c == near(temp_max)
    assert sample.fans_rpm == fans
    assert sample.power_w == near(power)

"""A minimal stock-Antminer responder for benchmarks, independent of fleetmon's code (stdlib only).

The simulator (`fleetmon simulate`) builds every reply from per-device state and checks digest
responses for real; that costs CPU on the same cores the poller uses. This responder does the least a
device can: canned bytes per command, from the captures of a stock S19 Pro in
tests/captures/device-responses/antminer/ (bmminer "cgminer 1.0.0", 2022 firmware), so a benchmark
measures the poller rather than the simulator. Per device address, on the real ports:
- 4028: one JSON request per connection; `version`, `stats`, `summary`, `pools`, `devs` answer their
  capture, NUL-terminated; a joined command (`a+b`) answers `Invalid command` and `devdetails`/`config`
  `Access denied`, as the simulator's stock personality (and the firmware) do; then the socket closes.
- 80: `GET /cgi-bin/get_system_info.cgi` answers 401 with a digest challenge, and 200 with the S21 web
  capture (this address's serial and MAC patched in) once an `Authorization: Digest` header comes
  (its response is not checked: minimal); `Connection: close` after each reply.

    python bench/minimal_responder.py --devices 2000 --subnet 127.68.0.0/16 --manifest FILE

writes FILE (a JSON list of {"ip": ...}, as `fleetmon simulate --manifest` does) once every address
listens, and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import resource
import signal
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "captures" / "device-responses" / "antminer"
COMMANDS = ("version", "stats", "summary", "pools", "devs")


def _status_e(code: int, message: str) -> bytes:
    status = {"STATUS": "E", "When": 1700000000, "Code": code, "Msg": message, "Description": "cgminer 1.0.0"}
    return json.dumps({"STATUS": [status], "id": 1}).encode() + b"\x00"


INVALID = _status_e(14, "Invalid command")
DENIED = _status_e(45, "Access denied")
REPLIES = {name: (CAPTURES / f"s19pro_{name}.json").read_bytes().rstrip() + b"\x00" for name in COMMANDS}
REPLIES["devdetails"] = REPLIES["config"] = DENIED
CHALLENGE = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b'WWW-Authenticate: Digest realm="antMiner Configuration", nonce="a1b2c3d4e5f6", qop="auth", '
    b'algorithm="MD5"\r\nContent-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def system_info(ip: str) -> bytes:
    """The 200 reply of get_system_info.cgi for this address (serial and MAC derived from it)."""
    body = json.loads((CAPTURES / "s21_web_get_system_info.json").read_text(encoding="utf-8"))
    octets = ipaddress.ip_address(ip).packed
    body["serinum"] = "JYZZ" + octets.hex().upper()
    body["macaddr"] = "02:00:" + ":".join(f"{b:02X}" for b in octets)
    body["minertype"] = "Antminer S19 Pro"
    raw = json.dumps(body).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + raw


class Rpc(asyncio.Protocol):
    """Port 4028: read one JSON request, answer it, close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            command = str(json.loads(self.buffer.rstrip(b"\x00")).get("command", ""))
        except ValueError:
            return  # not whole yet
        reply = INVALID if "+" in command else REPLIES.get(command, INVALID)
        self.transport.write(reply)
        self.transport.close()


class Web(asyncio.Protocol):
    """Port 80: read one request head, answer the digest CGI, close."""

    def __init__(self, ok: bytes) -> None:
        self.ok = ok

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head = self.buffer.split(b"\r\n\r\n", 1)[0].lower()
        if not head.startswith(b"get /cgi-bin/get_system_info.cgi"):
            self.transport.write(NOT_FOUND)
        elif b"\r\nauthorization: digest " in head:
            self.transport.write(self.ok)
        else:
            self.transport.write(CHALLENGE)
        self.transport.close()


async def serve(ips: list[str], manifest: Path) -> None:
    """Listen on every address until a signal comes; write the manifest once all listen."""
    loop = asyncio.get_running_loop()
    servers = []
    for ip in ips:
        ok = system_info(ip)
        servers.append(await loop.create_server(Rpc, ip, 4028, backlog=64))
        servers.append(await loop.create_server(lambda ok=ok: Web(ok), ip, 80, backlog=64))
    await asyncio.to_thread(manifest.write_text, json.dumps([{"ip": ip} for ip in ips]), "utf-8")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    """Serve `--devices` addresses of `--subnet` (the first usable ones)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--subnet", required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    args = parser.parse_args()
    hosts = ipaddress.ip_network(args.subnet).hosts()
    ips = [str(next(hosts)) for _ in range(args.devices)]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(ips, args.manifest))


if __name__ == "__main__":
    main()

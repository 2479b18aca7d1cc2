"""What every personality shares: the parsed request, HTTP request/response values, and the protocol.

Request parsing here is the device's side of the CGMiner API (what a firmware accepts), written from
the API-README's rules, not from the collectors' framing code: the simulator must stay an independent
implementation so that it can catch the collectors' mistakes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from collectors.simulator.device import SimDevice

NUL = b"\x00"


@dataclass(frozen=True)
class RpcRequest:
    """One request on port 4028, as the firmware understands it."""

    commands: tuple[str, ...]  # "summary+pools" -> ("summary", "pools"); lower-cased as cgminer does
    parameter: str | None
    as_json: bool  # the reply is JSON only when the request was JSON
    raw: bytes
    body: dict[str, object] | None = None  # the decoded JSON object, when there was one
    key: str = "command"  # which key named the command: "command", Whatsminer's "cmd", or "enc" (encrypted)

    @property
    def multi(self) -> bool:
        """True for an `a+b` multi-command."""
        return len(self.commands) > 1


class BadRequest(ValueError):
    """The request bytes were not a request any firmware would parse."""


def parse_rpc_request(raw: bytes) -> RpcRequest:
    """Parse request bytes (JSON or plain text) the way cgminer's API does."""
    text = raw.rstrip(b"\x00\r\n ").decode("utf-8", errors="replace")
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise BadRequest("invalid JSON") from exc
        if not isinstance(body, dict):
            raise BadRequest("JSON request is not an object")
        if "enc" in body and "cmd" not in body and "command" not in body:
            # Whatsminer's encrypted write (`{"enc":1,"data":...}`): only that personality opens it;
            # to any other firmware it is a request for the unknown command "enc".
            return RpcRequest(commands=("enc",), parameter=None, as_json=True, raw=raw, body=body, key="enc")
        key = "command" if "command" in body else "cmd" if "cmd" in body else ""
        command = body.get(key) if key else None
        if not isinstance(command, str) or not command:
            raise BadRequest("missing command")
        parameter = body.get("parameter")
        return RpcRequest(
            commands=_split(command),
            parameter=str(parameter) if parameter is not None else None,
            as_json=True,
            raw=raw,
            body=body,
            key=key,
        )
    if not text:
        raise BadRequest("empty request")
    command, _, parameter = text.partition("|")
    return RpcRequest(commands=_split(command), parameter=parameter or None, as_json=False, raw=raw)


def _split(command: str) -> tuple[str, ...]:
    seen: list[str] = []
    for raw_part in command.strip().split("+"):
        part = raw_part.strip()
        if part and part not in seen:  # cgminer collapses duplicate members
            seen.append(part)
    return tuple(seen)


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request to the device's web server (port 80)."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    version: str = "HTTP/1.1"


@dataclass
class HttpResponse:
    """What the web server answers."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Personality(Protocol):
    """A firmware dialect. Implementations are stateless; all state lives in the SimDevice."""

    def rpc(self, dev: SimDevice, request: RpcRequest, now: float) -> bytes:
        """The full reply to a 4028 request, trailing NUL included, exactly as the firmware sends it."""
        ...

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """The web server's answer on port 80."""
        ...

"""Serial number, MAC and hostname from the device's web side.

- Antminer: `GET /cgi-bin/get_system_info.cgi` with HTTP digest auth (`serinum`, `macaddr`, `hostname`,
  `minertype`). Credentials come by profile name from a typed config value; they are never logged and
  never appear in a repr or an exception message (SecretStr).
- VNish: the AnthillOS JSON API (`/api/v1/unlock` for a token, then `/api/v1/info`).
- Whatsminer: `get_miner_info` over the API (see the whatsminer driver); nothing to do here.

The HTTP itself is `webclient.py` (where socket errors become `collectors.errors` exceptions).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, SecretStr

from collectors.errors import MinerAuthError, MinerProtocolError, MinerTimeoutError
from collectors.webclient import Response, get_with_digest, request
from collectors.wire import to_str

SYSTEM_INFO_PATH = "/cgi-bin/get_system_info.cgi"


class WebCredentials(BaseModel):
    """One named credential profile for a device web UI (e.g. profile `antminer-default`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    username: str
    password: SecretStr

    def __repr__(self) -> str:
        return f"WebCredentials(profile={self.profile!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """What the Antminer system-info CGI says about the unit."""

    serial: str | None
    mac: str | None
    hostname: str | None
    model: str | None


def parse_system_info(data: dict[str, object]) -> SystemInfo:
    """Pick the identity fields out of a get_system_info.cgi JSON body."""
    mac = to_str(data.get("macaddr"))
    return SystemInfo(
        serial=to_str(data.get("serinum")),
        mac=mac.upper() if mac else None,
        hostname=to_str(data.get("hostname")),
        model=to_str(data.get("minertype")),
    )


async def fetch_antminer_system_info(
    host: str, credentials: WebCredentials, *, timeout: float, port: int = 80
) -> SystemInfo:
    """GET the system-info CGI with digest auth; MinerAuthError on 401, MinerConnectionError family else."""
    response = await get_with_digest(
        host,
        port,
        SYSTEM_INFO_PATH,
        credentials.username,
        credentials.password.get_secret_value(),
        timeout=timeout,
    )
    return parse_system_info(_json_body(host, credentials, response))


def _json_body(host: str, credentials: WebCredentials, response: Response) -> dict[str, object]:
    if response.status == 401:
        raise MinerAuthError(f"{host}: web CGI rejected credentials of profile {credentials.profile!r}")
    if response.status != 200:
        raise MinerProtocolError(f"{host}: web CGI answered HTTP {response.status}")
    body = response.json()
    if not isinstance(body, dict):
        raise MinerProtocolError("web CGI body is not a JSON object", data=response.body)
    return body


async def fetch_vnish_info(
    host: str, credentials: WebCredentials, *, timeout: float, port: int = 80
) -> SystemInfo:
    """VNish (AnthillOS) web API: `POST /api/v1/unlock {"pw": ...}` for a token, then `/api/v1/info`
    (`serial`, `system.network_status.mac/hostname`). Only the password of the profile is used."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    secret = json.dumps({"pw": credentials.password.get_secret_value()}).encode()
    unlock = await request(
        host,
        port,
        "POST",
        "/api/v1/unlock",
        timeout=timeout,
        headers={"Content-Type": "application/json"},
        body=secret,
    )
    token = _json_body(host, credentials, unlock).get("token")
    if not isinstance(token, str):
        raise MinerProtocolError("VNish unlock answered without a token", data=unlock.body)
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise MinerTimeoutError(f"{host}: VNish web API did not answer within {timeout}s", phase="web")
    response = await request(
        host, port, "GET", "/api/v1/info", timeout=remaining, headers={"Authorization": f"Bearer {token}"}
    )
    body = _json_body(host, credentials, response)
    system = body.get("system")
    network = system.get("network_status") if isinstance(system, dict) else None
    network = network if isinstance(network, dict) else {}
    mac = to_str(network.get("mac"))
    return SystemInfo(
        serial=to_str(body.get("serial")),
        mac=mac.upper() if mac else None,
        hostname=to_str(network.get("hostname")),
        model=to_str(body.get("model")),
    )

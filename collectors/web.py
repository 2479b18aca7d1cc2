"""Serial number, MAC and hostname from the device's web side.

- Antminer: `GET /cgi-bin/get_system_info.cgi` with HTTP digest auth (`serinum`, `macaddr`, `hostname`,
  `minertype`). Credentials come by profile name from a typed config value; they are never logged and
  never appear in a repr or an exception message (SecretStr).
- Whatsminer: `get_miner_info` over the API (see the whatsminer driver); nothing to do here.

This module is the one place where httpx exceptions become `collectors.errors` exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from collectors.errors import (
    MinerAuthError,
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerProtocolError,
    MinerTimeoutError,
)
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
    auth = httpx.DigestAuth(credentials.username, credentials.password.get_secret_value())
    url = f"http://{host}:{port}{SYSTEM_INFO_PATH}"
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.get(url, auth=auth)
    except httpx.TimeoutException as exc:
        raise MinerTimeoutError(f"{host}: web CGI did not answer within {timeout}s", phase="web") from exc
    except httpx.ConnectError as exc:
        if "refused" in str(exc).lower():
            raise MinerConnectionRefusedError(f"{host}: web port refused the connection") from exc
        raise MinerConnectionError(f"{host}: cannot reach the web CGI") from exc
    except httpx.HTTPError as exc:
        raise MinerConnectionError(f"{host}: web CGI request failed ({type(exc).__name__})") from exc
    if response.status_code == 401:
        raise MinerAuthError(f"{host}: web CGI rejected credentials of profile {credentials.profile!r}")
    if response.status_code != 200:
        raise MinerProtocolError(f"{host}: web CGI answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise MinerProtocolError("web CGI body is not JSON", data=response.content) from exc
    if not isinstance(body, dict):
        raise MinerProtocolError("web CGI body is not a JSON object", data=response.content)
    return parse_system_info(body)

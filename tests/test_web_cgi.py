"""The web readers (Antminer CGI with digest auth, VNish token API) over real sockets, against the
simulator's web servers and a local server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from collectors.errors import MinerAuthError, MinerTimeoutError
from collectors.simulator.fleet import simulated_fleet
from collectors.web import WebCredentials, fetch_antminer_system_info, fetch_vnish_info, parse_system_info

GOOD = WebCredentials(profile="antminer-default", username="root", password=SecretStr("root"))
WRONG = WebCredentials(profile="site-a", username="root", password=SecretStr("hunter2-secret"))
VNISH = WebCredentials(profile="vnish-default", username="admin", password=SecretStr("admin"))


def test_system_info_capture_gives_serial_mac_hostname(captures_dir: Path) -> None:
    body = json.loads((captures_dir / "antminer" / "s21_web_get_system_info.json").read_text())
    info = parse_system_info(body)
    assert info.serial and info.mac and info.hostname
    assert info.mac == info.mac.upper()


async def test_digest_cgi_on_simulated_antminer_gives_serial_and_mac() -> None:
    async with simulated_fleet(2, mix="antminer:1", subnet="127.41.0.0/29", seed=4) as fleet:
        for row in fleet.manifest:
            info = await fetch_antminer_system_info(str(row["ip"]), GOOD, timeout=3)
            assert info.serial == row["serial"]
            assert info.mac == row["mac"]
            assert info.model == row["model"]


async def test_rejected_credentials_raise_auth_error_without_the_password() -> None:
    async with simulated_fleet(1, mix="antminer:1", subnet="127.41.0.8/29", seed=4) as fleet:
        with pytest.raises(MinerAuthError) as info:
            await fetch_antminer_system_info(str(fleet.manifest[0]["ip"]), WRONG, timeout=3)
    assert "site-a" in str(info.value)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(WRONG)


async def test_vnish_web_api_gives_serial_and_mac() -> None:
    async with simulated_fleet(2, mix="vnish:1", subnet="127.41.0.16/29", seed=4) as fleet:
        for row in fleet.manifest:
            info = await fetch_vnish_info(str(row["ip"]), VNISH, timeout=3)
            assert (info.serial, info.mac) == (row["serial"], row["mac"])


@contextlib.asynccontextmanager
async def _silent_server(host: str) -> AsyncIterator[int]:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        await asyncio.sleep(30)

    server = await asyncio.start_server(hold, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_silent_web_server_becomes_miner_timeout() -> None:
    async with _silent_server("127.41.0.30") as port:
        with pytest.raises(MinerTimeoutError):
            await fetch_antminer_system_info("127.41.0.30", GOOD, timeout=0.3, port=port)

"""The Antminer web CGI reader over HTTP (respx stands in for the remote web server)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr

from collectors.errors import MinerAuthError, MinerTimeoutError
from collectors.web import WebCredentials, fetch_antminer_system_info

CREDS = WebCredentials(profile="antminer-default", username="root", password=SecretStr("s3cret-pw"))
URL = "http://10.0.0.5:80/cgi-bin/get_system_info.cgi"


@respx.mock
async def test_system_info_gives_serial_mac_hostname(captures_dir: Path) -> None:
    body = (captures_dir / "antminer/s21_web_get_system_info.json").read_bytes()
    respx.get(URL).mock(return_value=httpx.Response(200, content=body))
    info = await fetch_antminer_system_info("10.0.0.5", CREDS, timeout=2.0)
    assert info.model == "Antminer S21"
    assert (info.serial, info.mac) == ("THQING0BDJAB024NF", "02:55:97:22:3M:72")


@respx.mock
async def test_rejected_credentials_raise_auth_error_without_the_password() -> None:
    respx.get(URL).mock(return_value=httpx.Response(401))
    with pytest.raises(MinerAuthError) as caught:
        await fetch_antminer_system_info("10.0.0.5", CREDS, timeout=2.0)
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(CREDS)


@respx.mock
async def test_web_timeout_becomes_miner_timeout() -> None:
    respx.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(MinerTimeoutError):
        await fetch_antminer_system_info("10.0.0.5", CREDS, timeout=2.0)

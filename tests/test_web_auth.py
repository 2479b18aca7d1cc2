"""Dashboard authentication over HTTP: the login form's session cookie (flags, what it holds, what ends
it), the JSON API accepting that cookie, CSRF refusal of cookie-authenticated cross-site POSTs, the
one-time login link, /openapi.json and /docs behind a key, and the rack heat map against the device
list. A live service over a simulated fleet; no browser needed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import fleet_samples
import httpx
import pytest
from service_harness import LiveService, free_port, live_service

from fleetmon.service.auth import Role, create_key, revoke_key
from fleetmon.storage.engine import make_engine
from fleetmon.web.racks import derived_rack
from fleetmon.web.session import COOKIE_NAME, SessionSigner

DEMO_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("webauth")
    with live_service(fleet_samples.sqlite_url(tmp), tmp, devices=30, seed=5) as service:
        yield service


def login(live: LiveService, key: str, next_path: str = "/") -> httpx.Response:
    with httpx.Client(base_url=live.base_url) as client:
        return client.post(
            "/login",
            data={"key": key, "next": next_path},
            headers={"Origin": live.base_url},
        )


def session_cookie(response: httpx.Response) -> str:
    cookie = SimpleCookie(response.headers["set-cookie"])
    return cookie[COOKIE_NAME].value


def test_login_sets_an_httponly_samesite_strict_cookie_without_the_key(live: LiveService) -> None:
    key = live.keys["viewer"]
    response = login(live, key, "/devices/1")
    assert response.status_code == 303 and response.headers["location"] == "/devices/1"
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=strict" in header
    assert "Secure" not in header  # plain http here; over https the flag is set (is_secure)
    value = session_cookie(response)
    key_id, secret = key.split("_")[1], key.split("_")[2]
    assert key_id in value and secret not in value


def test_login_refuses_a_wrong_key_and_an_offsite_next(live: LiveService) -> None:
    assert login(live, "fm_000000000000_nope").status_code == 401
    assert login(live, live.keys["viewer"], "//evil.example/").headers["location"] == "/"
    with httpx.Client(base_url=live.base_url) as client:
        forged = client.post(
            "/login", data={"key": live.keys["viewer"]}, headers={"Origin": "http://evil.example"}
        )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers


def test_the_api_accepts_the_session_cookie_and_pages_redirect_without_it(live: LiveService) -> None:
    cookie = session_cookie(login(live, live.keys["viewer"]))
    with httpx.Client(base_url=live.base_url, cookies={COOKIE_NAME: cookie}) as client:
        assert client.get("/api/v1/fleet/summary").status_code == 200
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/supply-chain/hash-share").status_code == 403
    with httpx.Client(base_url=live.base_url) as client:
        page = client.get("/devices/1")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/devices/1"
        assert client.get("/api/v1/fleet/summary").status_code == 401
    forged = SessionSigner().issue(cookie.split(".")[1])  # right key id, another process's secret
    with httpx.Client(base_url=live.base_url, cookies={COOKIE_NAME: forged}) as client:
        assert client.get("/api/v1/fleet/summary").status_code == 401


def test_cookie_authenticated_post_needs_an_origin_of_this_host(live: LiveService) -> None:
    cookie = session_cookie(login(live, live.keys["procurement"]))
    body = {"resourcing": [{"from": "CN", "to": "US", "ths": 10}]}
    with httpx.Client(base_url=live.base_url, cookies={COOKIE_NAME: cookie}) as client:
        assert client.post("/api/v1/supply-chain/scenarios", json=body).status_code == 403
        cross = client.post(
            "/api/v1/supply-chain/scenarios", json=body, headers={"Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        same = client.post("/api/v1/supply-chain/scenarios", json=body, headers={"Origin": live.base_url})
        assert same.status_code == 200, same.text
    with live.client(live.keys["procurement"]) as client:  # the header needs no Origin: not ambient
        assert client.post("/api/v1/supply-chain/scenarios", json=body).status_code == 200


def test_revoking_the_key_ends_its_sessions_and_logout_clears_the_cookie(live: LiveService) -> None:
    engine = make_engine(live.db_url)
    try:
        info, key = create_key(engine, Role.VIEWER, "short-lived")
        cookie = session_cookie(login(live, key))
        with httpx.Client(base_url=live.base_url, cookies={COOKIE_NAME: cookie}) as client:
            assert client.get("/api/v1/fleet/summary").status_code == 200
            out = client.post("/logout")
            assert out.status_code == 303 and f'{COOKIE_NAME}=""' in out.headers["set-cookie"]
            assert "Max-Age=0" in out.headers["set-cookie"]
            revoke_key(engine, info.id)
            assert client.get("/api/v1/fleet/summary").status_code == 401
    finally:
        engine.dispose()


def test_demo_prints_a_one_time_login_link_that_works_once(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetmon.cli.main", "demo", "--devices", "8", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the demo has polled and is about to serve
        match = re.search(r"open the dashboard\s+(http://\S+/login\?once=\S+)", first)
        assert match, first
        link = match.group(1)
        with httpx.Client(timeout=10) as client, httpx.Client(timeout=10) as browser:
            deadline = time.monotonic() + DEMO_DEADLINE_S
            while time.monotonic() < deadline:
                try:
                    client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            used = browser.get(link)
            assert used.status_code == 303 and used.headers["location"] == "/"
            assert COOKIE_NAME in used.headers["set-cookie"]
            summary = browser.get(f"http://127.0.0.1:{port}/api/v1/fleet/summary")
            assert summary.status_code == 200 and summary.json()["devices"] == 8
            again = client.get(link)
            assert again.status_code == 401 and "set-cookie" not in again.headers
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.stdout is not None
        output = proc.stdout.read()  # not communicate(): readline() left the banner in the buffer
        proc.wait(60)
    assert proc.returncode == 0, output
    banner, log = output.split("Ctrl-C stops the demo.", 1)
    key = re.search(r"admin key (fm_\S+)", banner)
    assert key and key.group(1) not in log, "the key must stay out of the server log"
    assert "/login?once=" in log  # the used link is logged, and worthless: it was refused the second time


def test_openapi_and_docs_need_a_key(live: LiveService) -> None:
    with live.client() as client:
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/docs").status_code == 303
    with live.client(live.keys["viewer"]) as client:
        assert "/api/v1/fleet/racks" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200


def test_rack_heat_map_covers_every_device_once(live: LiveService) -> None:
    with live.client(live.keys["viewer"]) as client:
        racks = client.get("/api/v1/fleet/racks").json()
        devices = client.get("/api/v1/devices?limit=1000").json()["items"]
    assert sum(r["devices"] for r in racks["racks"]) == len(devices)
    for rack in racks["racks"]:
        members = [d for d in devices if derived_rack(d["ip"]) == rack["rack"]]
        temps = [d["temp_max_c"] for d in members if d["temp_max_c"] is not None]
        assert rack["devices"] == len(members)
        assert rack["temp_max_c"] == (max(temps) if temps else None)
        assert rack["hashrate_ths"] == pytest.approx(sum(d["hashrate_ths"] or 0 for d in members))


def test_derived_racks_are_32_address_blocks() -> None:
    assert derived_rack("10.1.2.31") == "10.1.2.0/27"
    assert derived_rack("10.1.2.32") == "10.1.2.32/27"
    assert derived_rack("miner-17.farm") == "unracked"

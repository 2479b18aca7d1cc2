"""`fleetmon demo` as a user runs it (a subprocess, SIGINT to stop) and `fleetmon keys`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import fleet_samples
import httpx
from service_harness import free_port
from sqlalchemy import select

from fleetmon.cli.main import main
from fleetmon.service.auth import verify_token
from fleetmon.storage.engine import make_engine
from fleetmon.storage.keys import API_KEYS

DEMO_DEADLINE_S = 60.0


def test_demo_serves_the_whole_fleet_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    key_file = tmp_path / "demo.key"
    args = ["demo", "--devices", "100", "--port", str(port), "--api-key-file", str(key_file), "--seed", "5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetmon.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + DEMO_DEADLINE_S
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                healthy = False
            if healthy:
                break
            time.sleep(0.25)
        assert healthy, f"the demo did not serve /healthz within {DEMO_DEADLINE_S:.0f} s"
        key = key_file.read_text().strip()
        assert (key_file.stat().st_mode & 0o777) == 0o600
        page = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/devices", headers={"Authorization": f"Bearer {key}"}, timeout=10
        ).json()
        assert page["total"] == 100
        assert {item["site"] for item in page["items"]} <= {"north", "south", "east", "west"}
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    text = output.decode()
    assert proc.returncode == 0, text
    assert f"http://127.0.0.1:{port}/docs" in text and "admin key fm_" in text
    assert "fleetmon demo: stopped" in text


def test_keys_create_list_revoke_round_trip(tmp_path: Path, capsys) -> None:
    url = fleet_samples.sqlite_url(tmp_path)
    assert main(["keys", "create", "--role", "operator", "--name", "ops laptop", "--db", url]) == 0
    token = capsys.readouterr().out.strip()
    key_id = token.split("_")[1]
    engine = make_engine(url)
    principal = verify_token(engine, token)
    assert principal is not None and principal.role.value == "operator"
    with engine.connect() as conn:
        stored = conn.execute(select(API_KEYS)).one()
    assert token.split("_", 2)[2] not in str(tuple(stored)), "the secret itself must not be stored"

    assert main(["keys", "list", "--db", url]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "operator" in listing and "ops laptop" in listing
    assert token not in listing

    assert main(["keys", "revoke", key_id, "--db", url]) == 0
    assert verify_token(engine, token) is None
    assert main(["keys", "revoke", "000000000000", "--db", url]) == 1
    engine.dispose()


def test_a_token_with_a_wrong_secret_is_rejected(tmp_path: Path, capsys) -> None:
    url = fleet_samples.sqlite_url(tmp_path)
    assert main(["keys", "create", "--role", "admin", "--db", url]) == 0
    token = capsys.readouterr().out.strip()
    engine = make_engine(url)
    assert verify_token(engine, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert verify_token(engine, "fm_" + token.split("_")[1]) is None
    engine.dispose()

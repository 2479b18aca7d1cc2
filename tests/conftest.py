"""Shared fixtures: the reference captures and the real services (PostgreSQL, Mosquitto).

A test that needs a service skips where the service is absent, unless FLEETMON_REQUIRE_SERVICES=1
(as in CI), where it fails instead: CI must never count a skipped service test as a pass.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Real device replies copied into the repository (provenance in tests/captures/device-responses/SOURCES.md).
CAPTURES = ROOT / "tests" / "captures" / "device-responses"

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def services_required() -> bool:
    """True where a missing service must fail the run rather than skip."""
    return os.environ.get("FLEETMON_REQUIRE_SERVICES") == "1"


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or fail, in CI) the calling test when the service is not listening."""
    if tcp_open(host, port):
        return
    message = f"{name} is not listening on {host}:{port}"
    if services_required():
        pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """The folder of real captured device replies shipped with the tests (tests/captures/device-responses)."""
    return CAPTURES


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the real PostgreSQL test database."""
    need_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    return os.environ.get(
        "FLEETMON_TEST_POSTGRES", f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"
    )


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """URL of the real Mosquitto broker."""
    need_service("Mosquitto", MQTT_HOST, MQTT_PORT)
    return f"mqtt://{MQTT_HOST}:{MQTT_PORT}"

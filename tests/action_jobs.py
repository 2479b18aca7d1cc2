"""What the action tests share: following a job through the API to its end, and waiting for poll cycles
of a collecting service (tests/service_harness.py `live_service(collecting=True)`)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from service_harness import LiveService

ENDED = {"succeeded", "failed", "partial", "cancelled"}
WAIT_LIMIT_S = 120.0
"""How long a helper waits for something that must happen before it calls the test failed (a bound on
a hang, not a speed assertion)."""


def job_end(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """The job as it ended (GET /api/v1/actions/{id} until its state is final); fails on a stuck job."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while job["state"] not in ENDED:
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.05)
        job = client.get(f"/api/v1/actions/{job['id']}").json()
    return job


def act(client: httpx.Client, device_id: int, action: str, **params: Any) -> dict[str, Any]:
    """POST one device's action (202 expected) and return the job as it ended."""
    response = client.post(f"/api/v1/devices/{device_id}/actions", json={"action": action, "params": params})
    assert response.status_code == 202, response.text
    return job_end(client, response.json())


def cycles(live: LiveService) -> int:
    """Poll cycles the collecting service has applied so far."""
    assert live.runtime is not None
    return sum(stats.cycles for stats in live.runtime.stats.values())


def after_cycles(live: LiveService, n: int) -> None:
    """Return once `n` more poll cycles have been applied."""
    start = cycles(live)
    deadline = time.monotonic() + WAIT_LIMIT_S
    while cycles(live) < start + n:
        assert time.monotonic() < deadline, "the service stopped polling"
        time.sleep(0.05)

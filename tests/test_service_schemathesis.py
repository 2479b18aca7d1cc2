"""schemathesis against /openapi.json of a live service with a simulated fleet's data, as admin:
no server error, and every response matches its documented status, content type and schema.

schemathesis' pytest plugin (`from_fixture`) does not run under pytest 9 (it reads a private
attribute pytest removed), so the test drives the Python API: one Hypothesis run per operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import fleet_samples
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from service_harness import LiveService, live_service

MAX_EXAMPLES = 100  # per operation (Hypothesis default); the run takes seconds, far under two minutes


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    with live_service(fleet_samples.sqlite_url(tmp), tmp, devices=12) as service:
        yield service


def test_api_answers_every_generated_request_as_documented(live: LiveService) -> None:
    headers = {"Authorization": f"Bearer {live.keys['admin']}"}
    schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json", headers=headers)
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        check()
    assert {"GET /api/v1/devices", "GET /api/v1/devices/{device_id}", "GET /metrics", "GET /probe"} <= set(
        labels
    )

"""schemathesis over the action routes of a collecting service, as an operator: every generated request
(actions, dry runs, ramps, cancels, the audit log) gets a 2xx or a documented 4xx, and every answer
matches its schema. The generated jobs really run against the simulated fleet.

Test addresses: 127.40.0.0/16 only.
"""

from __future__ import annotations

from collections.abc import Iterator

import fleet_samples
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from service_harness import LiveService, live_service

from fleetmon.config import ActionSettings

MAX_EXAMPLES = 60  # per operation
ACTION_PATHS = ("/api/v1/actions", "/api/v1/audit", "/api/v1/devices/{device_id}/actions")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("actions-schemathesis")
    with live_service(
        fleet_samples.sqlite_url(tmp),
        tmp,
        devices=6,
        mix="luxos:3,avalon:3,antminer:0,whatsminer:0,braiins:0,vnish:0",
        subnet="127.40.3.0/24",
        collecting=True,
        interval_s=2.0,
        actions=ActionSettings(connect_timeout_s=0.5, read_timeout_s=0.5, timeout_s=1.5),
    ) as service:
        yield service


def test_action_routes_answer_every_generated_request_as_documented(live: LiveService) -> None:
    headers = {"Authorization": f"Bearer {live.keys['operator']}"}
    schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json", headers=headers)
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(ACTION_PATHS):
            continue
        labels.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        check()
    assert {
        "POST /api/v1/devices/{device_id}/actions",
        "POST /api/v1/actions",
        "GET /api/v1/actions",
        "GET /api/v1/actions/{job_id}",
        "POST /api/v1/actions/{job_id}/cancel",
        "GET /api/v1/audit",
    } <= set(labels)

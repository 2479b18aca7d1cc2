"""The HTTP API over a live uvicorn on a free port, with a simulated fleet polled into SQLite and into
the real PostgreSQL: the auth matrix generated from the app's routes, list/summary/detail contents,
/metrics caching and promtool, /probe and /healthz."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import fleet_samples
import pytest
from conftest import services_required
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families
from service_harness import LiveService, live_service
from sqlalchemy import func, select
from starlette.routing import Route

from fleetmon.service.app import PUBLIC_DOC_PATHS, create_app
from fleetmon.service.auth import PageRequirement, PublicAccess, Requirement, Role, allows
from fleetmon.storage.engine import make_engine
from fleetmon.storage.writer import DEVICES

ROLES = [role.value for role in Role]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("service")
    if request.param == "sqlite":
        with live_service(fleet_samples.sqlite_url(tmp), tmp) as live:
            yield live
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    schema, url = fleet_samples.create_schema(postgres_url)
    try:
        with live_service(url, tmp) as live:
            yield live
    finally:
        fleet_samples.drop_schema(postgres_url, schema)


@dataclass(frozen=True)
class ApiRoute:
    """One mounted API route: its full path, methods and resolved dependency tree."""

    path: str
    methods: frozenset[str]
    dependant: Dependant


def _access(route: ApiRoute) -> list[Requirement | PublicAccess]:
    found: list[Requirement | PublicAccess] = []
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Requirement | PublicAccess):
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def _routes(service: LiveService) -> list[ApiRoute]:
    """Every route of the app as served (routers included at any depth)."""
    assert service.runtime is not None
    app = create_app(service.runtime, manage_runtime=False)
    routes = []
    for route in app.routes:
        if isinstance(route, APIRoute):  # FastAPI before 0.160 flattens included routers
            routes.append(ApiRoute(route.path, frozenset(route.methods), route.dependant))
        elif hasattr(route, "effective_route_contexts"):  # an included router (FastAPI >= 0.160)
            for ctx in route.effective_route_contexts():
                assert ctx.dependant is not None, ctx.path
                routes.append(ApiRoute(ctx.path, frozenset(ctx.methods), ctx.dependant))
        else:
            assert isinstance(route, Route) and route.path in PUBLIC_DOC_PATHS, (
                f"{route!r}: a route outside the API routers has no permission dependency"
            )
    assert {"/healthz", "/metrics", "/api/v1/devices"} <= {r.path for r in routes}
    return routes


def test_every_route_declares_exactly_one_access_rule(service: LiveService) -> None:
    for route in _routes(service):
        rules = _access(route)
        assert len(rules) == 1, f"{route.path} declares {rules or 'no'} access rule (use require(...))"


def _example_url(route: ApiRoute, service: LiveService) -> str:
    """A URL that a permitted caller can GET successfully; a new route needs an entry here."""
    device_id = service.runtime.live.snapshot.devices[0].device_id if service.runtime else None
    ip = service.fleet[0].device.ip
    examples = {
        "/probe": f"/probe?target={ip}",
        "/api/v1/devices/{device_id}": f"/api/v1/devices/{device_id}",
        "/devices/{device_id}": f"/devices/{device_id}",
        "/static/{name}": "/static/app.js",
        "/static/swagger/{name}": "/static/swagger/swagger-ui.css",
        "/api/v1/tariffs/rate": "/api/v1/tariffs/rate?origin=CN&hts=8543.70.9960&date=2025-06-01",
        "/api/v1/devices/{device_id}/actions": f"/api/v1/devices/{device_id}/actions",
        "/api/v1/actions/{job_id}": "/api/v1/actions/0000000000000000",
        "/api/v1/actions/{job_id}/cancel": "/api/v1/actions/0000000000000000/cancel",
    }
    if route.path in examples:
        return examples[route.path]
    params = route.dependant.query_params + route.dependant.path_params
    required = [p.name for p in params if p.field_info.is_required()]
    assert not required, f"add an example URL for {route.path} (required parameters {required})"
    return route.path


EXAMPLE_BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/api/v1/supply-chain/scenarios"): {"json": {"name": "auth matrix"}},
    ("POST", "/api/v1/inventory"): {  # a header and no lines: accepted, stores nothing
        "content": b"serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date\n",
        "headers": {"Content-Type": "text/csv"},
    },
    ("POST", "/api/v1/actions"): {
        "json": {"action": "sleep", "selector": {"state": "mining"}, "dry_run": True}
    },
    ("POST", "/api/v1/devices/{device_id}/actions"): {"json": {"action": "locate", "params": {"on": True}}},
}
"""Bodies a permitted caller's request needs; a new route with a required body needs an entry here."""


def _example_body(route: ApiRoute, method: str) -> dict[str, object]:
    if (method, route.path) in EXAMPLE_BODIES:
        return EXAMPLE_BODIES[(method, route.path)]
    assert route.dependant.body_params == [], f"add an example body for {method} {route.path}"
    return {}


PERMITTED_STATUS = {
    (
        "POST",
        "/api/v1/devices/{device_id}/actions",
    ): 409,  # this service is a reader: actions need a collector
    ("GET", "/api/v1/actions/{job_id}"): 404,  # no such job: the permission check passed
    ("POST", "/api/v1/actions/{job_id}/cancel"): 404,
}
"""Routes whose permitted caller gets an answer other than 200 from this (reader-mode) service."""

PUBLIC_STATUS = {("POST", "/login"): 401, ("POST", "/logout"): 303}
"""Public routes that do not answer 200 to a bare request: the login form without a key says so (401),
logout always redirects to the form (303)."""


def test_auth_matrix_every_route_every_role_no_key_and_revoked_key(service: LiveService) -> None:
    problems = []
    for route in _routes(service):
        (rule,) = _access(route)
        url = _example_url(route, service)
        for method in route.methods - {"HEAD"}:
            callers: dict[str, str | None] = {"no key": None, "revoked": service.keys["revoked"]}
            callers["malformed"] = "fm_nothex_x"
            callers.update({role: service.keys[role] for role in ROLES})
            for caller, key in callers.items():
                with service.client(key) as client:
                    response = client.request(method, url, **_example_body(route, method))  # type: ignore[arg-type]
                if rule.permission is None:
                    expected = PUBLIC_STATUS.get((method, route.path), 200)
                elif caller in ROLES:
                    permitted = PERMITTED_STATUS.get((method, route.path), 200)
                    expected = permitted if allows(Role(caller), rule.permission) else 403
                else:
                    expected = 303 if isinstance(rule, PageRequirement) else 401
                if response.status_code != expected:
                    problems.append(
                        f"{method} {url} as {caller}: {response.status_code}, expected {expected}"
                    )
                needs_key = rule.permission is not None  # the login form's own 401 is a page, not a challenge
                if needs_key and expected == 401 and response.headers.get("www-authenticate") != "Bearer":
                    problems.append(f"{method} {url} as {caller}: 401 without WWW-Authenticate: Bearer")
                if expected == 303 and rule.permission is not None:
                    location = response.headers.get("location", "")
                    if not location.startswith("/login?next="):
                        problems.append(f"{method} {url} as {caller}: redirects to {location!r}, not /login")
    assert not problems, "\n".join(problems)


def test_device_list_pages_cover_the_fleet_once_each(service: LiveService) -> None:
    key = service.keys["viewer"]
    with service.client(key) as client:
        pages = [
            client.get("/api/v1/devices", params={"limit": 5, "offset": o}).json() for o in range(0, 30, 5)
        ]
    ips = [item["ip"] for page in pages for item in page["items"]]
    assert all(page["total"] == len(service.fleet) for page in pages)
    assert sorted(ips) == sorted(item.device.ip for item in service.fleet)
    assert len(set(ips)) == len(ips)
    engine = make_engine(service.db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DEVICES)).scalar_one() == len(ips)
    engine.dispose()


def test_device_list_filters_match_an_independent_count(service: LiveService) -> None:
    with service.client(service.keys["viewer"]) as client:
        everything = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
        for field in ("make", "model", "state", "firmware_vendor", "assembly_country", "site"):
            value = next(item[field] for item in everything if item[field] is not None)
            page = client.get("/api/v1/devices", params={field: value.upper(), "limit": 1000}).json()
            expected = [
                item["ip"] for item in everything if (item[field] or "").casefold() == value.casefold()
            ]
            if field == "state":  # an enum: exact value only
                page = client.get("/api/v1/devices", params={field: value, "limit": 1000}).json()
            assert [item["ip"] for item in page["items"]] == expected, field
            assert page["total"] == len(expected)
        unknown = client.get("/api/v1/devices", params={"assembly_country": "unknown", "limit": 1000}).json()
        assert unknown["total"] == sum(1 for item in everything if item["assembly_country"] is None)
        assert client.get("/api/v1/devices", params={"state": "exploded"}).status_code == 422


def test_device_items_carry_identity_and_supply_chain(service: LiveService) -> None:
    by_ip = {item.device.ip: item for item in service.fleet}
    with service.client(service.keys["viewer"]) as client:
        items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    for item in items:
        truth = by_ip[item["ip"]]
        assert item["model"].startswith(truth.device.spec.name)  # Whatsminers add a revision tag
        assert item["manufacturer"] in {"Bitmain", "MicroBT", "Canaan"}
        if truth.in_inventory and item["serial"] == truth.device.serial:
            assert item["assembly_country"] == truth.assembly_country
            assert item["origin_source"] == "inventory"
    assert any(item["origin_source"] == "inventory" for item in items)


def test_summary_totals_equal_the_sums_of_the_device_list(service: LiveService) -> None:
    with service.client(service.keys["viewer"]) as client:
        items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
        summary = client.get("/api/v1/fleet/summary").json()
    assert summary["devices"] == len(items)
    assert sum(summary["devices_by_state"].values()) == len(items)
    assert summary["hashrate_ths"] == pytest.approx(sum(i["hashrate_ths"] or 0 for i in items))
    assert summary["expected_hashrate_ths"] == pytest.approx(
        sum(i["expected_hashrate_ths"] or 0 for i in items)
    )
    assert summary["power_w"] == pytest.approx(sum(i["power_w"] or 0 for i in items))
    temps = sorted((i["temp_max_c"] for i in items if i["temp_max_c"] is not None), reverse=True)
    assert [d["temp_max_c"] for d in summary["hottest"]] == temps[: len(summary["hottest"])]
    ratios = [d["performance_ratio"] for d in summary["worst_performers"]]
    assert ratios == sorted(ratios) and all(r < 1 for r in ratios)


def test_device_detail_has_recent_samples_and_hourly_history(service: LiveService) -> None:
    with service.client(service.keys["viewer"]) as client:
        first = client.get("/api/v1/devices", params={"limit": 1}).json()["items"][0]
        detail = client.get(f"/api/v1/devices/{first['id']}").json()
        missing = client.get("/api/v1/devices/999999")
    assert detail["device"]["ip"] == first["ip"]
    assert detail["recent_samples"][0]["ip"] == first["ip"]
    assert detail["recent_samples"][0]["ts"] == first["last_seen"]
    assert len(detail["history"]) == 1 and detail["history"][0]["samples"] == 1
    assert missing.status_code == 404


def test_metrics_are_rendered_once_per_snapshot_version(service: LiveService) -> None:
    assert service.runtime is not None
    with service.client(service.keys["viewer"]) as client:
        first = client.get("/metrics")
        renders = service.runtime.live.renders
        second = client.get("/metrics")
        assert service.runtime.live.renders == renders
        # The fleet part is the same bytes; the process's own families (process_*, python_*) are
        # rendered at every scrape and may differ.
        assert _without_runtime(first.content) == _without_runtime(second.content)
        assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(first.text)}
    up = [s for s in families["fleetmon_miner_up"].samples]
    assert len(up) == len(service.fleet)
    assert "fleetmon_fleet_hash_share_ratio" in families


def _without_runtime(body: bytes) -> bytes:
    """A /metrics body without the serving process's runtime families."""
    lines = body.decode().splitlines(keepends=True)
    fleet = [
        line
        for line in lines
        if not line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith(("process_", "python_"))
    ]
    return "".join(fleet).encode()


def test_promtool_accepts_the_live_metrics(service: LiveService) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if services_required():
            pytest.fail("promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool is not installed")
    with service.client(service.keys["viewer"]) as client:
        body = client.get("/metrics").content
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_probe_reads_one_known_device_now(service: LiveService) -> None:
    ip = service.fleet[0].device.ip
    with service.client(service.keys["operator"]) as client:
        body = client.get("/probe", params={"target": ip}).text
        unknown = client.get("/probe", params={"target": "192.0.2.1"})
        garbage = client.get("/probe", params={"target": "not-an-ip"})
    lines = [line for line in body.splitlines() if not line.startswith("#")]
    assert re.search(rf'^fleetmon_miner_up\{{site="test-site",ip="{re.escape(ip)}"\}} 1\.0$', body, re.M)
    assert all(f'ip="{ip}"' in line for line in lines)
    assert "fleetmon_fleet_" not in body
    assert (unknown.status_code, garbage.status_code) == (404, 422)
    assert client_status(service, "/probe?target=1.2.3") == 404


def client_status(service: LiveService, url: str) -> int:
    with service.client(service.keys["operator"]) as client:
        return client.get(url).status_code


def test_healthz_answers_without_a_key(service: LiveService) -> None:
    with service.client() as client:
        health = client.get("/healthz").json()
    assert health["database"] == "ok" and health["devices"] == len(service.fleet)
    assert health["mode"] == "reader"


def test_metrics_public_opens_only_metrics(tmp_path) -> None:
    url = fleet_samples.sqlite_url(tmp_path)
    with live_service(url, tmp_path, devices=4, metrics_public=True) as svc, svc.client() as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/v1/devices").status_code == 401

"""Security findings stored, served, exported and counted, and the firmware-origin supply-chain figures,
over a live service polling a simulated fleet with a known mix of open APIs, factory web passwords and
old builds (and aftermarket firmware whose publisher or its country is unknown).

What the counts are checked against is the simulator's manifest, through the same protocol reasoning
tests/test_posture.py uses (`expected_codes`), never against a number written down here.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fleet_samples
import pytest
from service_harness import LiveService, live_service
from test_posture import MIX, expected_codes

from collectors.posture import DEFAULT_FIRMWARE_MAX_AGE_DAYS
from collectors.sample import SecurityFinding
from collectors.simulator.fleet import manifest_rows
from fleetmon.config import CollectorSettings, CredentialProfile, Settings
from fleetmon.service.security import FindingFilter, findings_csv, security_report
from fleetmon.service.snapshot import DeviceView
from fleetmon.storage.engine import make_engine
from fleetmon.storage.export import iter_samples
from fleetmon.storage.writer import SampleStore, SiteSample

blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url

ROOT = Path(__file__).resolve().parent.parent
FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]
SUBNET = "127.88.1.0/24"
PASSWORD_ENVS = {"FLEETMON_I18_ANTMINER_PW": "root", "FLEETMON_I18_VNISH_PW": "admin"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """60 miners of every family, 30% of APIs open to writes, 40% of web passwords changed."""
    saved = {name: os.environ.get(name) for name in PASSWORD_ENVS}
    os.environ.update(PASSWORD_ENVS)
    base = Settings(
        collector=CollectorSettings(credential_profile="antminer", vnish_credential_profile="vnish"),
        credentials={
            "antminer": CredentialProfile(username="root", password_env="FLEETMON_I18_ANTMINER_PW"),
            "vnish": CredentialProfile(username="admin", password_env="FLEETMON_I18_VNISH_PW"),
        },
    )
    tmp = tmp_path_factory.mktemp("security")
    try:
        with live_service(
            fleet_samples.sqlite_url(tmp),
            tmp,
            devices=60,
            seed=18,
            mix=MIX,
            subnet=SUBNET,
            settings_base=base,
            api_open=0.3,
            changed_passwords=0.4,
        ) as live:
            yield live
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def manifest(service: LiveService) -> list[dict[str, object]]:
    return manifest_rows(service.fleet)


@pytest.fixture(scope="module")
def expected(manifest: list[dict[str, object]]) -> dict[str, set[str]]:
    """ip -> the finding codes the manifest implies (the service polled today, default max age)."""
    today = dt.datetime.now(dt.UTC).date()
    return {str(r["ip"]): expected_codes(r, DEFAULT_FIRMWARE_MAX_AGE_DAYS, today) for r in manifest}


def _by_code(expected: dict[str, set[str]]) -> dict[str, int]:
    return dict(collections.Counter(code for codes in expected.values() for code in codes))


def test_findings_api_counts_exactly_what_the_manifest_holds(
    service: LiveService, expected: dict[str, set[str]]
) -> None:
    # The fleet is a real mix: each code occurs, and some devices are locked down.
    by_code = _by_code(expected)
    assert all(by_code.get(c, 0) > 0 for c in ("api_write_open", "default_credentials", "firmware_outdated"))
    locked = {ip for ip, codes in expected.items() if not codes}
    assert locked
    with service.client(service.keys["operator"]) as client:
        response = client.get("/api/v1/security/findings")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["counts"]["by_code"] == by_code
    assert body["devices_checked"] == len(expected)
    listed = {d["ip"]: {f["code"] for f in d["findings"]} for d in body["devices"]}
    assert listed == {ip: codes for ip, codes in expected.items() if codes}
    assert not locked & set(listed)  # a locked-down device has no finding
    total = sum(by_code.values())
    assert body["findings_total"] == total
    for name in ("by_severity", "by_maker", "by_firmware", "by_site"):
        assert sum(body["counts"][name].values()) == total, name
    assert body["counts"]["by_site"] == {service.site: total}
    # Severities are the ones docs/security.md gives each code.
    severity = {"api_write_open": "critical", "default_credentials": "high", "firmware_outdated": "medium"}
    for device in body["devices"]:
        assert all(f["severity"] == severity[f["code"]] for f in device["findings"])


def test_findings_filter_by_code_and_export_as_csv(
    service: LiveService, expected: dict[str, set[str]]
) -> None:
    with service.client(service.keys["admin"]) as client:
        only = client.get("/api/v1/security/findings", params={"code": "api_write_open"}).json()
        exported = client.get("/api/v1/security/findings", params={"format": "csv"})
    open_ips = {ip for ip, codes in expected.items() if "api_write_open" in codes}
    assert {d["ip"] for d in only["devices"]} == open_ips
    assert only["counts"]["by_code"] == {"api_write_open": len(open_ips)}
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    got = collections.Counter((row["ip"], row["code"]) for row in rows)
    assert got == collections.Counter((ip, code) for ip, codes in expected.items() for code in codes)


def test_findings_are_for_admin_operator_and_procurement_not_viewers_nor_anonymous(
    service: LiveService,
) -> None:
    for role, status in (("admin", 200), ("operator", 200), ("procurement", 200), ("viewer", 403)):
        with service.client(service.keys[role]) as client:
            assert client.get("/api/v1/security/findings").status_code == status, role
    with service.client() as anonymous:
        assert anonymous.get("/api/v1/security/findings").status_code == 401
    with service.client(service.keys["revoked"]) as revoked:
        assert revoked.get("/api/v1/security/findings").status_code == 401


def test_report_security_cli_counts_what_the_api_counts(
    service: LiveService, expected: dict[str, set[str]]
) -> None:
    result = subprocess.run(
        [*FLEETMON, "report", "security", "--format", "json", "--db", service.db_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["counts"]["by_code"] == _by_code(expected)
    listed = {d["ip"]: {f["code"] for f in d["findings"]} for d in body["devices"]}
    assert listed == {ip: codes for ip, codes in expected.items() if codes}
    # Read back from the database: every listed device has its stored id.
    assert all(isinstance(d["id"], int) for d in body["devices"])


def test_metrics_export_one_series_per_finding_with_the_miner_labels(
    service: LiveService, expected: dict[str, set[str]]
) -> None:
    with service.client(service.keys["viewer"]) as client:
        text = client.get("/metrics").text
    series = [line for line in text.splitlines() if line.startswith("fleetmon_miner_security_finding{")]
    got = collections.Counter()
    for line in series:
        labels = dict(part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(","))
        assert labels["site"] == f'"{service.site}"' and line.endswith(" 1.0")
        got[(labels["ip"].strip('"'), labels["code"].strip('"'))] += 1
    assert got == collections.Counter((ip, code) for ip, codes in expected.items() for code in codes)


def test_device_detail_carries_the_stored_findings(
    service: LiveService, expected: dict[str, set[str]]
) -> None:
    with service.client(service.keys["operator"]) as client:
        findings = client.get("/api/v1/security/findings").json()["devices"]
        device = findings[0]
        detail = client.get(f"/api/v1/devices/{device['id']}", params={"samples": 1}).json()
    stored = detail["recent_samples"][0]["security"]
    assert {f["code"] for f in stored} == expected[device["ip"]]
    # A viewer key reads the device but not which doors it leaves open.
    with service.client(service.keys["viewer"]) as client:
        seen = client.get(f"/api/v1/devices/{device['id']}", params={"samples": 1}).json()
    assert seen["recent_samples"][0]["security"] == []
    assert seen["recent_samples"][0]["serial"] == detail["recent_samples"][0]["serial"]


def test_hash_share_by_firmware_publisher_country_sums_to_one_with_unknown_shown(
    service: LiveService, manifest: list[dict[str, object]]
) -> None:
    with service.client(service.keys["procurement"]) as client:
        share = client.get(
            "/api/v1/supply-chain/hash-share", params={"by": "firmware_publisher_country", "basis": "nominal"}
        ).json()
        by_publisher = client.get(
            "/api/v1/supply-chain/hash-share", params={"by": "firmware_publisher", "basis": "nominal"}
        ).json()
    assert sum(g["share"] for g in share["groups"]) == pytest.approx(1.0)
    groups = {g["key"]: g for g in share["groups"]}
    # VNish names no publisher and LuxOS's publisher names no country in the catalog: unknown, not guessed.
    assert "unknown" in groups
    assert {"CN", "CZ"} <= set(groups)
    assert sum(g["share"] for g in by_publisher["groups"]) == pytest.approx(1.0)
    publishers = {g["key"] for g in by_publisher["groups"]}
    assert {"Bitmain", "Braiins", "Luxor Technology", "unknown"} <= publishers
    # Every device is counted in exactly one group.
    assert sum(g["devices"] for g in share["groups"]) == share["devices_counted"]


def test_china_dependency_shows_its_software_line(service: LiveService) -> None:
    with service.client(service.keys["procurement"]) as client:
        report = client.get("/api/v1/supply-chain/report", params={"as_of": "2026-03-01"}).json()
        share = client.get(
            "/api/v1/supply-chain/hash-share", params={"by": "firmware_publisher_country", "basis": "nominal"}
        ).json()
    china = report["china_dependency"]["nominal"]
    groups = {g["key"]: g["hashrate_ths"] for g in share["groups"]}
    assert china["firmware_china_hq_ths"] == pytest.approx(groups["CN"])
    assert china["firmware_unknown_ths"] == pytest.approx(groups["unknown"])
    assert 0 < china["firmware_china_hq_ths"] < china["total_ths"]


# ---- storage: the column round-trips on both dialects -------------------------------------------------


def test_export_round_trips_the_findings_exactly(db_url: str) -> None:
    produced = []
    for i, sample in enumerate(fleet_samples.fleet_cycle(40, 0)):
        findings = [
            SecurityFinding(code="api_write_open", severity="critical", message=f'open é {i} "quoted"'),
            SecurityFinding(code="firmware_advisory", severity="high", message="CVE-2099-1 ⟨x⟩"),
        ]
        produced.append(sample.model_copy(update={"security": findings[: i % 3]}))
    SampleStore(make_engine(db_url)).write([SiteSample("north", s) for s in produced])
    exported = list(iter_samples(make_engine(db_url)))
    assert sorted(s.to_json() for s in exported) == sorted(s.to_json() for s in produced)
    assert any(len(s.security) == 2 for s in exported)


# ---- the CSV export is safe to open in a spreadsheet --------------------------------------------------


def test_findings_csv_quotes_device_strings_that_look_like_formulas() -> None:
    sample = fleet_samples.make_sample(1, fleet_samples.T0).model_copy(
        update={
            "model": '=HYPERLINK("http://evil","x")',
            "serial": "+1234",
            "security": [SecurityFinding(code="api_write_open", severity="critical", message="m")],
        }
    )
    report = security_report([DeviceView(site="s", sample=sample)], FindingFilter(), None)
    row = next(csv.DictReader(io.StringIO(findings_csv(report))))
    assert row["model"] == "'" + '=HYPERLINK("http://evil","x")'
    assert row["serial"] == "'+1234"
    assert row["code"] == "api_write_open"

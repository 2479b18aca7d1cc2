"""The Prometheus configuration and alert rules in deploy/prometheus/, checked by the real promtool.

promtool comes from Debian's `prometheus` package (installed by .ci/run). Where it is missing these tests
skip, unless FLEETMON_REQUIRE_SERVICES=1, where they fail: CI must never count them as passed unrun.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, services_required

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "fleetmon.rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
PROMETHEUS_CONFIGS = sorted((ROOT / "deploy").rglob("prometheus.yml"))
ALERTS_DOC = ROOT / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/fleetmon/fleetmon/blob/main/docs/alerts.md#"


def promtool() -> str:
    """Path of promtool; skips the test (fails it in CI) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if services_required():
            pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return path


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool with args and return the finished process (output captured as text)."""
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def load_rule_groups() -> list[dict[str, Any]]:
    """The rule groups of fleetmon.rules.yml as plain data."""
    document = yaml.safe_load(RULES_FILE.read_text())
    groups: list[dict[str, Any]] = document["groups"]
    return groups


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule, in file order."""
    return [rule for group in load_rule_groups() for rule in group["rules"] if "alert" in rule]


def test_prometheus_config_is_valid_with_its_rules(tmp_path: Path) -> None:
    # The config reads its API key from secrets/ next to it, which is never committed: lay out a copy the
    # way a Prometheus host holds it, with a token file, so the check covers the rule files too.
    layout = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, layout, ignore=shutil.ignore_patterns("tests"))
    (layout / "secrets").mkdir()
    (layout / "secrets" / "fleetmon-token").write_text("fleetmon-test-key\n")
    result = run_promtool("check", "config", str(layout / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fleetmon.rules.yml" in result.stdout, "the config must load the fleetmon rules"


def test_prometheus_config_without_its_token_file_is_rejected(tmp_path: Path) -> None:
    layout = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, layout, ignore=shutil.ignore_patterns("tests"))
    result = run_promtool("check", "config", str(layout / "prometheus.yml"))
    assert result.returncode != 0
    assert "fleetmon-token" in result.stdout + result.stderr


def test_rules_pass_promtool_check_and_lint() -> None:
    result = run_promtool("check", "rules", "--lint=all", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "deploy/prometheus/tests/ holds no rule tests"
    result = run_promtool("test", "rules", *(path.name for path in RULE_TESTS), cwd=PROMETHEUS_DIR / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_a_broken_expectation_makes_promtool_test_fail(tmp_path: Path) -> None:
    # Guards the test above against a promtool that reports success whatever happens.
    source = PROMETHEUS_DIR / "tests" / "miner-availability.yml"
    broken = source.read_text().replace(
        "severity: warning, site: tx1, ip: 10.1.0.11", "severity: page, site: tx1, ip: 10.1.0.11", 1
    )
    assert broken != source.read_text()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / source.name).write_text(broken)
    (tmp_path / "rules").mkdir()
    shutil.copy(RULES_FILE, tmp_path / "rules" / RULES_FILE.name)
    result = run_promtool("test", "rules", source.name, cwd=tmp_path / "tests")
    assert result.returncode != 0


def test_every_alert_has_for_severity_summary_and_description() -> None:
    alerts = alert_rules()
    assert alerts
    for rule in alerts:
        name = rule["alert"]
        assert rule.get("for"), f"{name} has no for:"
        labels = rule.get("labels") or {}
        assert labels.get("severity") in {"critical", "warning", "info"}, name
        annotations = rule.get("annotations") or {}
        assert annotations.get("summary") and annotations.get("description"), name


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_must_not() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names - fires == set(), f"alerts never shown firing: {sorted(names - fires)}"
    assert names - silent == set(), f"alerts never shown silent: {sorted(names - silent)}"


def test_every_alert_is_documented_in_alerts_md() -> None:
    text = (ROOT / "docs" / "alerts.md").read_text()
    documented = set(re.findall(r"^## (\w+)", text, flags=re.MULTILINE))
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names - documented == set(), f"alerts missing from docs/alerts.md: {sorted(names - documented)}"


def test_every_threshold_the_alerts_read_is_recorded() -> None:
    recorded = {
        rule["labels"]["threshold"]
        for group in load_rule_groups()
        for rule in group["rules"]
        if rule.get("record") == "fleetmon:alert_threshold"
    }
    used = {
        name
        for rule in alert_rules()
        for name in re.findall(r'threshold=["\'](\w+)["\']', str(rule["expr"]) + str(rule["annotations"]))
    }
    assert used, "no alert reads a recorded threshold"
    assert used - recorded == set(), f"thresholds read but never recorded: {sorted(used - recorded)}"


# ---- every shipped prometheus.yml, and where alerts go -------------------------------------------------


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "deploy")))
def test_every_shipped_prometheus_config_is_valid_and_sends_alerts_to_alertmanager(
    config: Path, tmp_path: Path
) -> None:
    # Laid out as on a Prometheus host: the config, the shared rules beside it, and a token file.
    layout = tmp_path / "prometheus"
    layout.mkdir()
    shutil.copy(config, layout / "prometheus.yml")
    shutil.copytree(PROMETHEUS_DIR / "rules", layout / "rules")
    (layout / "secrets").mkdir()
    (layout / "secrets" / "fleetmon-token").write_text("fleetmon-test-key\n")
    result = run_promtool("check", "config", str(layout / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fleetmon.rules.yml" in result.stdout
    document = yaml.safe_load(config.read_text())
    (manager,) = document["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    jobs = {job["job_name"] for job in document["scrape_configs"]}
    assert {"fleetmon", "fleetmon-collectors", "fleetmon-ingest"} <= jobs


def test_shipped_prometheus_configs_are_the_two_known_layouts() -> None:
    names = {str(p.relative_to(ROOT / "deploy")) for p in PROMETHEUS_CONFIGS}
    assert names == {"prometheus/prometheus.yml", "multisite/prometheus.yml"}


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the markdown's headings (lower case, spaces to dashes, punctuation dropped)."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}


def test_every_alert_links_its_runbook_section_in_alerts_md() -> None:
    anchors = _anchors(ALERTS_DOC.read_text())
    assert "minerdown" in anchors and "delivery-alertmanager" in anchors
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        assert url == RUNBOOK_BASE + str(rule["alert"]).lower(), rule["alert"]
        assert url.removeprefix(RUNBOOK_BASE) in anchors, rule["alert"]


def test_the_split_layouts_health_alerts_read_the_metrics_the_processes_export() -> None:
    by_name: dict[str, list[str]] = {}
    for rule in alert_rules():
        by_name.setdefault(str(rule["alert"]), []).append(str(rule["expr"]))
    assert any('up{job="fleetmon-collectors"' in expr for expr in by_name["CollectorDown"])
    assert any("fleetmon_collector_last_cycle_timestamp_seconds" in e for e in by_name["CollectorDown"])
    assert "fleetmon_site_collector_up" in by_name["CollectorStale"][0]
    assert "fleetmon_ingest_lag_seconds" in by_name["IngestLagging"][0]
    assert "fleetmon_ingest_rejected_total" in by_name["IngestRejecting"][0]

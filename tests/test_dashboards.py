"""Static checks of the Grafana dashboards in dashboards/ (provisioning layout).

Every dashboard loads, every panel reads the provisioned Prometheus datasource by uid, every query parses as
PromQL (promtool parses them as recording rules) and names only metrics that docs/metrics.md or the
recording rules define. `dashboard_queries()` and `substitute()` are meant for reuse by the live test that
runs each query against a real Prometheus scraping a simulated fleet.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, services_required

DASHBOARDS = ROOT / "dashboards"
DASHBOARD_JSON = DASHBOARDS / "json"
DATASOURCES_FILE = DASHBOARDS / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS_FILE = DASHBOARDS / "provisioning" / "dashboards" / "fleetmon.yml"
METRICS_DOC = ROOT / "docs" / "metrics.md"
RULES_FILE = ROOT / "deploy" / "prometheus" / "rules" / "fleetmon.rules.yml"

# What Grafana puts in place of its own variables when it sends a query; the durations suit a 30 s scrape.
GRAFANA_BUILTINS = {
    "__rate_interval": "2m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# Series Prometheus makes itself, which a dashboard may read beside fleetmon's own.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}

_PROMQL_WORDS = {
    # operators and modifiers
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    # aggregations, which may be followed by `by (...)` before their parenthesis
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile",
    # literals
    "inf", "nan",
}  # fmt: skip
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON under dashboards/json, by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARD_JSON.glob("*.json"))}


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """All panels of a dashboard, rows' nested panels included, rows themselves excluded."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file stem, panel title, PromQL expr) of every panel query, template variables unfilled."""
    return [
        (name, panel["title"], target["expr"])
        for name, dashboard in load_dashboards().items()
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard file stem, variable name, query) of every query-type template variable."""
    found = []
    for name, dashboard in load_dashboards().items():
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]
                found.append((name, variable["name"], query["query"] if isinstance(query, dict) else query))
    return found


def substitute(expr: str, values: Mapping[str, str] | None = None, default: str = ".*") -> str:
    """expr with Grafana's variables replaced: built-ins by durations, template variables by `values`.

    A template variable missing from `values` becomes `default`; the dashboards only use template variables
    in regex matchers (`site=~"$site"`), so `.*` selects everything and a concrete value selects one.
    """
    given = dict(values or {})

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        return given.get(name, default)

    return _VARIABLE.sub(replace, expr)


def metric_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects (a lexical scan, enough for the dashboards)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', substitute(expr))
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def known_metrics() -> set[str]:
    """Metric names a dashboard may read: docs/metrics.md, the recording rules and Prometheus' own."""
    known = set(PROMETHEUS_SERIES)
    for row in re.finditer(r"^\| `(\w+)` \| (\w+)", METRICS_DOC.read_text(), flags=re.MULTILINE):
        name, kind = row.groups()
        known.add(name)
        if kind == "histogram":
            known.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    for group in yaml.safe_load(RULES_FILE.read_text())["groups"]:
        known.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return known


def datasource_uids() -> set[str]:
    """uids of the datasources Grafana is provisioned with."""
    document = yaml.safe_load(DATASOURCES_FILE.read_text())
    return {source["uid"] for source in document["datasources"]}


def promtool_parse(queries: list[tuple[str, str, str]], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run `promtool check rules` over the queries written as recording rules, one group per query."""
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if services_required():
            pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
        pytest.skip(message)
    groups = [
        {
            "name": f"{dashboard} / {title} / {index}",
            "rules": [{"record": f"dashboard:query_{index}", "expr": expr}],
        }
        for index, (dashboard, title, expr) in enumerate(queries)
    ]
    rules = workdir / "dashboard-queries.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=300, check=False
    )


# ---- the dashboards and their provisioning ------------------------------------------------------------


def test_the_three_dashboards_load_with_unique_uids() -> None:
    dashboards = load_dashboards()
    assert set(dashboards) == {"fleet-overview", "device-drilldown", "supply-chain"}
    uids = [dashboard["uid"] for dashboard in dashboards.values()]
    assert len(set(uids)) == len(uids)
    for name, dashboard in dashboards.items():
        assert dashboard.get("id") is None, f"{name}: a fixed numeric id collides across Grafana instances"
        assert 36 <= dashboard["schemaVersion"] <= 41, name
        assert dashboard["title"].startswith("fleetmon / "), name


def test_panel_ids_are_unique_and_panels_fit_the_grid() -> None:
    for name, dashboard in load_dashboards().items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        ids += [nested["id"] for panel in dashboard["panels"] for nested in panel.get("panels", [])]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, (name, panel["title"])


def resolved_uid(dashboard: Mapping[str, Any], uid: str) -> str:
    """The datasource uid a panel's `uid` means: `${datasource}` is the datasource variable's default."""
    match = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", uid)
    if match is None:
        return uid
    name = match.group(1) or match.group(2)
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    assert variable["type"] == "datasource", name
    return str(variable["current"]["value"])


def test_every_panel_and_query_uses_the_provisioned_datasource_by_uid() -> None:
    uids = datasource_uids()
    assert uids == {"fleetmon-prometheus"}
    for name, dashboard in load_dashboards().items():
        panels = list(iter_panels(dashboard))
        assert panels, name
        for panel in panels:
            assert resolved_uid(dashboard, panel["datasource"]["uid"]) in uids, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), (name, panel["title"])
            for target in panel["targets"]:
                uid = resolved_uid(dashboard, target["datasource"]["uid"])
                assert uid in uids, (name, panel["title"], target["refId"])
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert resolved_uid(dashboard, variable["datasource"]["uid"]) in uids, (
                    name,
                    variable["name"],
                )


def test_dashboards_take_their_datasource_as_a_variable_not_a_wired_uid() -> None:
    for name, dashboard in load_dashboards().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        source = variables["datasource"]
        assert source["type"] == "datasource" and source["query"] == "prometheus", name
        assert source["current"]["value"] in datasource_uids(), name  # the provisioned one by default
        assert dashboard["templating"]["list"][0] is source, f"{name}: the other variables query through it"
        references = [panel["datasource"] for panel in iter_panels(dashboard)]
        references += [
            target["datasource"] for panel in iter_panels(dashboard) for target in panel["targets"]
        ]
        references += [v["datasource"] for v in variables.values() if v["type"] == "query"]
        assert references, name
        for reference in references:
            assert reference == {"type": "prometheus", "uid": "${datasource}"}, (name, reference)
        # Nothing else in the file names a Prometheus uid (annotations use Grafana's built-in source).
        text = json.dumps({k: v for k, v in dashboard.items() if k != "templating"})
        assert "fleetmon-prometheus" not in text, name


def test_datasource_url_comes_from_the_environment() -> None:
    (source,) = yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "${FLEETMON_PROMETHEUS_URL}"


def test_dashboard_provider_reads_a_folder_of_json_files() -> None:
    (provider,) = yaml.safe_load(PROVIDERS_FILE.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    assert provider["allowUiUpdates"] is False


def test_template_variables_are_all_defined() -> None:
    for name, dashboard in load_dashboards().items():
        defined = {variable["name"] for variable in dashboard["templating"]["list"]}
        for _, title, expr in (query for query in dashboard_queries() if query[0] == name):
            used = {m.group(1) or m.group(2) or m.group(3) for m in _VARIABLE.finditer(expr)}
            assert used - defined - set(GRAFANA_BUILTINS) == set(), (name, title, expr)


def test_drilldown_selects_one_miner_by_site_and_ip() -> None:
    variables = {v["name"]: v for v in load_dashboards()["device-drilldown"]["templating"]["list"]}
    assert variables["ip"]["query"]["query"] == 'label_values(fleetmon_miner_up{site=~"$site"}, ip)'
    assert not variables["ip"]["multi"]
    power = [
        expr
        for d, title, expr in dashboard_queries()
        if d == "device-drilldown" and title.startswith("Power")
    ]
    assert any("fleetmon_pdu_outlet_power_watts" in expr for expr in power)
    assert any("fleetmon_miner_power_watts" in expr for expr in power)


# ---- the queries --------------------------------------------------------------------------------------


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    queries = [(d, title, substitute(expr)) for d, title, expr in dashboard_queries()]
    # label_values(selector, label) is Grafana's; its selector is PromQL.
    for d, variable, query in variable_queries():
        selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        assert selector, (d, variable, query)
        queries.append((d, f"variable {variable}", substitute(selector.group(1))))
    assert len(queries) > 50
    result = promtool_parse(queries, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_promtool_parse_check_rejects_a_broken_query(tmp_path: Path) -> None:
    result = promtool_parse([("x", "broken", "sum by (site (fleetmon_miner_up)")], tmp_path)
    assert result.returncode != 0
    assert "x / broken / 0" in result.stdout + result.stderr


def test_every_metric_a_query_reads_is_documented_or_recorded() -> None:
    known = known_metrics()
    used: set[str] = set()
    for dashboard, title, expr in dashboard_queries():
        names = metric_names(expr)
        assert names, (dashboard, title, expr)
        assert names - known == set(), (dashboard, title, sorted(names - known))
        used |= names
    # The dashboards cover what the issue asks for.
    for needed in (
        "fleetmon_pdu_outlet_power_watts",
        "fleetmon_fleet_hhi",
        "fleetmon_fleet_china_dependency_ratio",
        "fleetmon_fleet_tariff_exposure_score",
        "fleetmon_fleet_unverified_origin_ratio",
        "fleetmon_miner_fan_speed_rpm",
        "fleetmon_collector_last_cycle_timestamp_seconds",
    ):
        assert needed in used, needed


def test_metric_names_finds_series_and_skips_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (site) (rate(fleetmon_miner_pool_accepted_shares_total{site=~"$site", url="a:b"}'
        "[$__rate_interval]))"
        " / on (site) group_left (model) max without (instance) (fleetmon:miner_model:info offset 5m)"
        " and histogram_quantile(0.95, sum by (le) (fleetmon_collector_cycle_duration_seconds_bucket))"
        " > bool 1e12"
    )
    assert metric_names(expr) == {
        "fleetmon_miner_pool_accepted_shares_total",
        "fleetmon:miner_model:info",
        "fleetmon_collector_cycle_duration_seconds_bucket",
    }


def test_an_undocumented_metric_is_caught() -> None:
    assert "fleetmon_miner_hashrate_ths" not in known_metrics()
    assert "fleetmon_miner_hashrate_ths" in metric_names('max(fleetmon_miner_hashrate_ths{ip=~"$ip"})')


def test_substitute_fills_template_variables_and_grafana_builtins() -> None:
    expr = 'rate(x{site=~"$site", ip=~"${ip}"}[$__rate_interval])'
    assert substitute(expr) == 'rate(x{site=~".*", ip=~".*"}[2m])'
    assert substitute(expr, {"site": "tx1", "ip": "10.1.0.11"}) == 'rate(x{site=~"tx1", ip=~"10.1.0.11"}[2m])'
    for _, _, query in dashboard_queries():
        assert "$" not in substitute(query)

"""Every Grafana panel query returns data from the real Prometheus scraping fleetmon over a simulated fleet.

What runs, all as real processes on loopback:
- `fleetmon simulate` (a mixed fleet with a few transport faults, so the failed-poll panels have
  reasons to show) and snmpsim serving the APC, Raritan and ServerTech recordings (tests/snmpsim_agent.py);
- `fleetmon serve` in collector mode over that fleet every 2 s, with the three PDUs configured and their
  outlets mapped to healthy miners, an inventory imported and a viewer API key in a file;
- the Debian package's Prometheus (/usr/bin/prometheus) with a configuration derived from
  deploy/prometheus/prometheus.yml: the same rule files, the same jobs, the bearer key read from the key
  file, the target moved to the test's service, and scrape and rule-evaluation intervals of 1 s.

Then every (dashboard, panel, expr) of tests/test_dashboards.py's dashboard_queries(), with the template
variables substituted (`$site` by the fleet's site; `$ip` by a real miner: a PDU-fed one first, and
where that miner's firmware does not report a panel's figure, the next miner of the fleet that does), is
sent to /api/v1/query and must return a non-empty result. No panel is skipped. All queries are evaluated
at one instant chosen after a run of successful scrapes.

Long windows are not rewritten. The recording rules and panels use `[1h]` (median hashrate),
`[15m]` (rejected-share ratio) and `[5m]` (failed polls, cycle p95) windows; Prometheus evaluates a
range function over the samples the window holds, so with about 20 s of history `quantile_over_time(
...[1h])` is the median of those samples and `rate(...[15m])` the rate over them (it needs two). The
test therefore proves that each query is well-formed, names series fleetmon exports under those label
sets, and joins correctly; the values over full-length windows are what the promtool unit tests in
tests/test_prometheus_rules.py check against synthetic series.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ROOT, services_required
from service_harness import free_port
from snmpsim_agent import Agent, start_agent
from test_dashboards import dashboard_queries, metric_names, substitute

from fleetmon.service.auth import Role, create_key
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.inventory import store_inventory
from fleetmon.supplychain.origin import parse_inventory_csv

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SITE = "live"
DEVICES = 40
SUBNET = "127.23.40.0/24"
SCRAPES_WANTED = 12  # of the service, after the first complete rule evaluation
# The simulator's factory credentials (the web CGI gives Antminer serials, which the inventory joins on).
PASSWORDS = {"FLEETMON_LIVE_ANTMINER_PW": "root", "FLEETMON_LIVE_VNISH_PW": "admin"}
RULES_PRESENT = "site:fleetmon_miner_power_watts:sum and on () fleetmon:miner_model:info"
PDU_OUTLETS = {"apc": 6, "raritan": 8, "servertech": 6}  # outlets in each recording


@dataclass
class Stack:
    prometheus_url: str
    service_url: str
    key: str
    fleet: list[dict[str, Any]]
    mapped_ips: list[str]
    logs: dict[str, Path]
    at: float | None = None  # evaluation time of every query once set (None: now)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant query's result vector (or scalar as a one-element list); fails on a query error."""
        params = {"query": expr} if self.at is None else {"query": expr, "time": f"{self.at:.3f}"}
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params=params, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [data["result"]]
        result: list[dict[str, Any]] = data["result"]
        return result

    def tail(self) -> str:
        return "\n".join(
            f"--- {name}\n{path.read_text(errors='replace')[-2500:]}" for name, path in self.logs.items()
        )


def _require_prometheus() -> None:
    if not Path(PROMETHEUS).exists():
        if services_required():
            pytest.fail("the prometheus binary is not installed and FLEETMON_REQUIRE_SERVICES=1")
        pytest.skip("the prometheus binary is not installed (Debian package `prometheus`)")


def _wait(predicate: Any, timeout: float, what: str, stack: Stack | None = None, step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(step)
    pytest.fail(f"{what} within {timeout:.0f} s" + (f"\n{stack.tail()}" if stack else ""))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _service_config(
    workdir: Path, agent: Agent, port: int, db_url: str, fleet: list[dict[str, Any]]
) -> tuple[Path, list[str]]:
    """The serve TOML: the simulated fleet, factory credentials by variable, the three PDUs."""
    healthy = [row["ip"] for row in fleet if row["fault"] is None and row["state"] == "mining"]
    lines = [
        "[storage]",
        f'url = "{db_url}"',
        "[service]",
        f"port = {port}",
        "snapshot_interval_s = 2",
        "[collector]",
        f'site = "{SITE}"',
        f'targets = ["@{workdir / "manifest.json"}"]',
        "interval_s = 2",
        "timeout_s = 3",
        'credential_profile = "antminer"',
        'vnish_credential_profile = "vnish"',
        "[credentials.antminer]",
        'username = "root"',
        'password_env = "FLEETMON_LIVE_ANTMINER_PW"',
        "[credentials.vnish]",
        'username = "admin"',
        'password_env = "FLEETMON_LIVE_VNISH_PW"',
        "[snmp]",
        "timeout_s = 1",
        "retries = 1",
    ]
    mapped: list[str] = []
    remaining = iter(healthy)
    for community, outlets in PDU_OUTLETS.items():
        lines += [
            "[[pdus]]",
            f'name = "live-{community}"',
            f'host = "{agent.host}"',
            f"port = {agent.port}",
            f'community_env = "FLEETMON_LIVE_PDU_{community.upper()}"',
        ]
        bindings = []
        for outlet in range(1, outlets + 1):
            ip = next(remaining, None)
            if ip is None:
                break
            bindings.append(f'{{ outlet = {outlet}, miner = "{ip}" }}')
            mapped.append(ip)
        lines.append(f"outlets = [{', '.join(bindings)}]")
    path = workdir / "fleetmon.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, mapped


def _prometheus_config(workdir: Path, service_port: int, key_file: Path) -> Path:
    """deploy/prometheus/prometheus.yml with the test's target, key file, rule paths and 1 s intervals."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:  # a job may set its own; the test's intervals win
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / pattern) for pattern in config["rule_files"]]
    (workdir / "targets").mkdir()
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(key_file)
        if job["job_name"] == "fleetmon":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{service_port}"]}]
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(workdir / "targets" / "*.yml")]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_prometheus()
    workdir = tmp_path_factory.mktemp("dashboards-live")
    env = {**os.environ, **PASSWORDS}
    env.update({f"FLEETMON_LIVE_PDU_{c.upper()}": c for c in PDU_OUTLETS})
    logs = {name: workdir / f"{name}.log" for name in ("simulate", "serve", "prometheus")}
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with logs[name].open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    with start_agent() as agent:
        try:
            manifest, inventory = workdir / "manifest.json", workdir / "inventory.csv"
            simulate = start("simulate", [*FLEETMON, "simulate", "--devices", str(DEVICES), "--seed", "3",
                                          "--subnet", SUBNET, "--faults", "0.1", "--manifest", str(manifest),
                                          "--inventory", str(inventory)])  # fmt: skip
            _wait(lambda: manifest.exists() or simulate.poll() is not None, 60, "simulate wrote no manifest")
            assert simulate.poll() is None, logs["simulate"].read_text()
            fleet = json.loads(manifest.read_text())

            db_url = f"sqlite:///{workdir / 'fleetmon.db'}"
            engine = make_engine(db_url)
            upgrade(engine)
            store_inventory(
                engine, parse_inventory_csv(inventory.read_text(), inventory.name).records, inventory.name
            )
            _info, key = create_key(engine, Role.VIEWER, "prometheus")
            engine.dispose()
            key_file = workdir / "fleetmon-token"
            key_file.write_text(key + "\n")
            key_file.chmod(0o600)

            service_port, prometheus_port = free_port(), free_port()
            config, mapped = _service_config(workdir, agent, service_port, db_url, fleet)
            start("serve", [*FLEETMON, "serve", "--config", str(config)])
            prometheus_config = _prometheus_config(workdir, service_port, key_file)
            start("prometheus", [PROMETHEUS, f"--config.file={prometheus_config}",
                                 f"--storage.tsdb.path={workdir / 'tsdb'}", "--log.level=warn",
                                 f"--web.listen-address=127.0.0.1:{prometheus_port}"])  # fmt: skip
            yield Stack(
                f"http://127.0.0.1:{prometheus_port}",
                f"http://127.0.0.1:{service_port}",
                key,
                fleet,
                mapped,
                logs,
            )
        finally:
            for process in reversed(processes):
                _stop(process)


@pytest.fixture(scope="module")
def scraped(stack: Stack) -> Stack:
    """The stack once Prometheus has scraped the whole fleet and its PDUs SCRAPES_WANTED times."""
    _wait(
        lambda: httpx.get(f"{stack.prometheus_url}/-/ready", timeout=2).status_code == 200,
        60,
        "Prometheus was not ready",
        stack,
    )

    def fleet_and_pdus_seen() -> bool:
        miners = stack.query("count(fleetmon_miner_up)")
        pdus = stack.query("count(fleetmon_pdu_up == 1)")
        rules = stack.query("count(fleetmon:miner_model:info)")
        return (
            bool(miners and pdus and rules)
            and float(miners[0]["value"][1]) == len(stack.fleet)
            and float(pdus[0]["value"][1]) == len(PDU_OUTLETS)
        )

    _wait(fleet_and_pdus_seen, 90, "Prometheus did not see the whole fleet and every PDU", stack)
    started = time.time()

    def enough_scrapes() -> bool:
        result = stack.query(f'count_over_time(up{{job="fleetmon"}}[{int(time.time() - started) + 1}s])')
        return bool(result) and float(result[0]["value"][1]) >= SCRAPES_WANTED

    _wait(enough_scrapes, 90, f"fewer than {SCRAPES_WANTED} scrapes of the service", stack)

    # A scrape that times out on this busy 2-core machine marks every series stale until the next one,
    # so all queries are evaluated at one instant after a run of successful scrapes and rule runs.
    def settled() -> bool:
        result = stack.query('min_over_time(up{job="fleetmon"}[5s])')
        return bool(result) and float(result[0]["value"][1]) == 1 and bool(stack.query(RULES_PRESENT))

    _wait(settled, 60, "no 5 s run of successful scrapes", stack, step=0.2)
    stack.at = time.time() - 0.5
    return stack


def _device_ips(stack: Stack) -> list[str]:
    """Real miners for `$ip`, best first: PDU-fed miners (outlet on) by how many drill-down families
    they report, then every other miner of the fleet."""
    families = {
        name
        for _dashboard, _panel, expr in dashboard_queries()
        if '$ip"' in expr
        for name in metric_names(expr)
        if name.startswith("fleetmon_miner_")
    }
    reported: dict[str, int] = {}
    for family in families:
        for series in stack.query(f'{family}{{site="{SITE}"}}'):
            reported[series["metric"]["ip"]] = reported.get(series["metric"]["ip"], 0) + 1
    fed = {s["metric"].get("miner_ip") for s in stack.query("fleetmon_pdu_outlet_power_watts > 0")}
    mapped = sorted((ip for ip in stack.mapped_ips if ip in fed), key=lambda ip: -reported.get(ip, 0))
    assert mapped, "no PDU-fed miner with its outlet switched on"
    return mapped + sorted(set(reported) - set(mapped), key=lambda ip: -reported[ip])


def test_every_dashboard_query_returns_data(scraped: Stack) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 40, "the dashboards lost their queries"
    devices = _device_ips(scraped)
    empty, used = [], set()
    for dashboard, panel, expr in queries:
        # A drill-down panel shows one miner; a firmware that lacks a figure (stock Antminer power,
        # say) leaves its panel empty by design, so each `$ip` panel needs data for some real miner.
        for ip in devices if '$ip"' in expr else devices[:1]:
            concrete = substitute(expr, {"site": SITE, "ip": ip})
            if scraped.query(concrete):
                used.add(ip)
                break
        else:
            empty.append(f"{dashboard} / {panel}: {substitute(expr, {'site': SITE, 'ip': devices[0]})}")
    assert not empty, "queries without data:\n" + "\n".join(empty)
    assert devices[0] in used  # the PDU-fed miner filled panels itself, not only the fallbacks


def test_pdu_outlet_power_sits_beside_miner_power_in_prometheus(scraped: Stack) -> None:
    outlets = {
        s["metric"]["miner_ip"]: float(s["value"][1])
        for s in scraped.query("fleetmon_pdu_outlet_power_watts")
        if "miner_ip" in s["metric"]
    }
    miners = {s["metric"]["ip"]: float(s["value"][1]) for s in scraped.query("fleetmon_miner_power_watts")}
    assert set(outlets) == set(scraped.mapped_ips)  # every mapped outlet, whatever its miner reports
    both = {ip: (outlets[ip], miners[ip]) for ip in outlets if ip in miners}
    assert both, "no PDU-fed miner reports its own power"
    assert all(miner > 0 for _outlet, miner in both.values())


def test_prometheus_scrapes_the_gzipped_metrics_with_the_service_process_figures(scraped: Stack) -> None:
    # Prometheus asks for gzip at every scrape (Accept-Encoding: gzip); the service answers it so.
    response = httpx.get(
        f"{scraped.service_url}/metrics",
        headers={"Authorization": f"Bearer {scraped.key}", "Accept-Encoding": "gzip"},
        timeout=30,
    )
    assert response.headers["content-encoding"] == "gzip"
    # What Prometheus stored from those gzipped scrapes: the fleet and the serving process's own figures.
    job = '{job="fleetmon"}'
    for name in (
        "fleetmon_miner_up",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "python_info",
    ):
        assert scraped.query(f"{name}{job}"), f"Prometheus has no {name} from the service"
    assert float(scraped.query(f"process_resident_memory_bytes{job}")[0]["value"][1]) > 0

"""The multi-site production path end to end, every engine real (issue 16).

    simulated fleets ─► collector tx1 ─┐                     ┌─► ingest-1 ─┐
    (127.86/16)                        ├─► Mosquitto (shipped├─► ingest-2 ─┴─► PostgreSQL (throwaway)
    simulated fleet  ─► collector ga2 ─┘   config, ACL, TLS) │                     │
    (127.87/16)                                              │      serve-1, serve-2 (reader mode)
                                                             │               ▲ haproxy (shipped config)
                        webhook ◄── Alertmanager ◄── Prometheus (shipped rules, `for:` shortened)

The module starts everything once (tests/e2e_stack.py) and its tests then run in file order, each
changing the world a little: refused publishes, a login shared by the replicas, a block of miners going
silent, an ingester killed with SIGKILL, the database stopped and started, a collector stopped; the last
test stops the collectors cleanly and checks that every sample they produced (their --out files) is
stored exactly once. The PostgreSQL cluster is the test's own (initdb in a temporary directory), so
stopping it is safe. Features still missing on this branch are asserted all the same and reported as
expected failures that name what is missing, never skipped.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from e2e_stack import (
    HOST,
    Postgres,
    Processes,
    SecureBroker,
    Webhook,
    alertmanager_config,
    haproxy_config,
    prometheus_config,
    rules_copy,
    start_secure_broker,
    tool,
    wait_until,
)
from service_harness import free_port
from test_mosquitto_acl import PASSWORDS

from fleetmon.service.auth import Role, create_key
from fleetmon.storage.engine import make_engine, upgrade

pytestmark = [pytest.mark.slow, pytest.mark.services]

FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]
SITES = ("tx1", "ga2")
# Simulated fleets: (name, site, subnet, devices, seed). `tx1-block` is the block that goes silent.
FLEETS = (
    ("tx1-main", "tx1", "127.86.1.0/24", 5, 11),
    ("tx1-block", "tx1", "127.86.2.0/24", 3, 12),
    ("ga2-main", "ga2", "127.87.1.0/24", 5, 13),
)
INTERVAL_S = 2  # collectors' cycle
ALERT_FOR_S = 4  # every rule's `for:` in the test copy
COLLECTOR_STALE_S = 15  # the CollectorDown staleness threshold in the test copy (300 s shipped)
SESSION_SECRET = "e2e-shared-session-secret-0123456789abcdef"


@dataclass
class Stack:
    processes: Processes
    postgres: Postgres
    broker: SecureBroker
    webhook: Webhook
    workdir: Path
    api_url: str  # haproxy's frontend
    replica_urls: list[str]
    prometheus_url: str
    key: str
    fleets: dict[str, list[dict[str, Any]]]
    ready_path: str  # what haproxy checks: /readyz where serve has it
    features: dict[str, bool] = field(default_factory=dict)

    def site_ips(self, site: str) -> set[str]:
        return {row["ip"] for name, s, *_ in FLEETS if s == site for row in self.fleets[name]}

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        url = self.postgres.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=5) as conn:
            return list(conn.execute(statement, params).fetchall())  # type: ignore[arg-type]

    def stored(self) -> list[tuple[str, str, int, datetime]]:
        return [
            (site, ip, port, ts)
            for site, ip, port, ts in self.sql(
                "SELECT s.name, d.ip, d.port, x.ts FROM samples x JOIN devices d ON d.id = x.device_id "
                "JOIN sites s ON s.id = d.site_id"
            )
        ]

    def fail(self, message: str) -> str:
        return f"{message}\n{self.processes.logs()}"


def _serve_supports(flag: str) -> bool:
    """Whether this branch's fleetmon knows a CLI flag or configuration key (a feature of i16-ops)."""
    sources = Path(__file__).resolve().parent.parent / "fleetmon"
    return any(flag in path.read_text() for path in sources.rglob("*.py"))


def _replica_config(workdir: Path, n: int, port: int, db_url: str, broker: SecureBroker) -> Path:
    lines = [
        "[storage]",
        f'url = "{db_url}"',
        "[service]",
        f'host = "{HOST}"',
        f"port = {port}",
        "snapshot_interval_s = 1",
    ]
    if _serve_supports("session_secret_env"):
        lines.append('session_secret_env = "E2E_SESSION_SECRET"')
    lines += [
        "[mqtt]",
        f'url = "mqtt://{HOST}:{broker.plain_port}"',
        'credential_profile = "broker"',
        "[credentials.broker]",
        'username = "fleetmon-api"',
        'password_env = "E2E_MQTT_API_PASSWORD"',
    ]
    path = workdir / f"serve-{n}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_collector(stack_processes: Processes, workdir: Path, site: str, broker: SecureBroker) -> None:
    manifests = [f"@{workdir / name / 'manifest.json'}" for name, s, *_ in FLEETS if s == site]
    argv = [*FLEETMON, "collect", *manifests, "--mqtt", broker.url(site), "--site", site,
            "--collector-id", f"collector-{site}", "--interval", str(INTERVAL_S), "--timeout", "1.5",
            "--no-web", "--workers", "1", "--spool-dir", str(workdir / f"spool-{site}"),
            "--out", str(workdir / f"produced-{site}.jsonl")]  # fmt: skip
    stack_processes.start(f"collect-{site}", argv)


def _start_ingester(processes: Processes, n: int, broker: SecureBroker, db_url: str) -> None:
    processes.start(
        f"ingest-{n}",
        [*FLEETMON, "ingest", "--mqtt", broker.url("ingest"), "--db", db_url, "--group", "fleetmon",
         "--client-id", f"e2e-ingest-{n}", "--flush-interval", "0.2"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus, alertmanager, haproxy = tool("prometheus"), tool("prometheus-alertmanager"), tool("haproxy")
    workdir = tmp_path_factory.mktemp("e2e-multisite")
    env = {
        **os.environ,
        "E2E_MQTT_API_PASSWORD": PASSWORDS["fleetmon-api"],
        "E2E_SESSION_SECRET": SESSION_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    processes = Processes(workdir, env)
    postgres = Postgres()
    webhook = Webhook()
    try:
        # Devices first: each fleet in its own `fleetmon simulate`, so one block can be silenced alone.
        for name, _site, subnet, devices, seed in FLEETS:
            (workdir / name).mkdir()
            manifest = workdir / name / "manifest.json"
            processes.start(name, [*FLEETMON, "simulate", "--devices", str(devices), "--subnet", subnet,
                                   "--seed", str(seed), "--manifest", str(manifest)])  # fmt: skip
        engine = make_engine(postgres.url)
        upgrade(engine)
        _info, key = create_key(engine, Role.VIEWER, "prometheus")
        engine.dispose()
        key_file = workdir / "fleetmon-token"
        key_file.write_text(key + "\n")

        broker = start_secure_broker(workdir / "mosquitto", processes)
        for n in (1, 2):
            _start_ingester(processes, n, broker, postgres.url)
        fleets = {}
        for name, *_ in FLEETS:
            manifest = workdir / name / "manifest.json"
            wait_until(manifest.exists, 60, f"simulate {name} wrote its manifest")
            fleets[name] = json.loads(manifest.read_text())
        for site in SITES:
            _start_collector(processes, workdir, site, broker)

        replica_ports = [free_port(), free_port()]
        for n, port in enumerate(replica_ports, start=1):
            config = _replica_config(workdir, n, port, postgres.url, broker)
            processes.start(f"serve-{n}", [*FLEETMON, "serve", "--config", str(config)])
        replica_urls = [f"http://{HOST}:{port}" for port in replica_ports]
        for url in replica_urls:
            wait_until(lambda url=url: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 60,
                       f"{url} answered /healthz")  # fmt: skip
        has_readyz = httpx.get(f"{replica_urls[0]}/readyz", timeout=2).status_code != 404
        ready_path = "/readyz" if has_readyz else "/healthz"

        api_port = free_port()
        (workdir / "haproxy.cfg").write_text(haproxy_config(api_port, replica_ports, ready_path))
        processes.start("haproxy", [haproxy, "-db", "-f", str(workdir / "haproxy.cfg")])

        am_port = free_port()
        (workdir / "alertmanager.yml").write_text(alertmanager_config(webhook.url))
        processes.start("alertmanager", [alertmanager, f"--config.file={workdir / 'alertmanager.yml'}",
                                         f"--storage.path={workdir / 'am-data'}",
                                         f"--web.listen-address={HOST}:{am_port}",
                                         "--cluster.listen-address="])  # fmt: skip
        (workdir / "rules.yml").write_text(rules_copy(ALERT_FOR_S, COLLECTOR_STALE_S))
        prometheus_port = free_port()
        (workdir / "prometheus.yml").write_text(
            prometheus_config(workdir, f"{HOST}:{api_port}", am_port, key_file, workdir / "rules.yml")
        )
        processes.start("prometheus", [prometheus, f"--config.file={workdir / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={workdir / 'tsdb'}", "--log.level=warn",
                                       f"--web.listen-address={HOST}:{prometheus_port}"])  # fmt: skip
        stack = Stack(
            processes,
            postgres,
            broker,
            webhook,
            workdir,
            f"http://{HOST}:{api_port}",
            replica_urls,
            f"http://{HOST}:{prometheus_port}",
            key,
            fleets,
            ready_path,
        )
        yield stack
    finally:
        processes.stop_all()
        webhook.close()
        postgres.close()


def _stored_sites(stack: Stack) -> set[str]:
    return {site for site, *_ in stack.stored()}


def test_samples_of_both_sites_reach_the_database_the_api_and_prometheus(stack: Stack) -> None:
    wait_until(lambda: _stored_sites(stack) == set(SITES), 90, stack.fail("samples of both sites stored"))
    every_ip = stack.site_ips("tx1") | stack.site_ips("ga2")

    def api_sees_every_miner() -> bool:
        with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}) as api:
            body = api.get("/api/v1/devices", params={"limit": 1000}, timeout=10).json()
        items = body["items"] if isinstance(body, dict) else body
        return {item["ip"] for item in items} == every_ip

    wait_until(api_sees_every_miner, 60, stack.fail("the API behind haproxy listed every miner"))

    def prometheus_sees_every_miner() -> bool:
        series = stack.query('max by (site, ip) (fleetmon_miner_up{job="fleetmon"})')
        return {s["metric"]["ip"] for s in series} == every_ip

    wait_until(prometheus_sees_every_miner, 60, stack.fail("Prometheus scraped every miner through haproxy"))

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

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psycopg
import pytest
import yaml
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
SITE_STALE_S = 8  # the replicas' service.site_stale_s (300 s by default)


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
    ingest_ports: dict[int, int]

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

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> Any:
        """wait_until, and on failure the end of every process's log."""
        try:
            return wait_until(predicate, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.processes.logs()}") from None


def _replica_config(workdir: Path, n: int, port: int, db_url: str, broker: SecureBroker) -> Path:
    lines = [
        "[storage]",
        f'url = "{db_url}"',
        "[service]",
        f'host = "{HOST}"',
        f"port = {port}",
        "snapshot_interval_s = 1",
    ]
    # Both replicas sign dashboard sessions with one secret; a site silent for 8 s shows stale.
    lines += ['session_secret_env = "E2E_SESSION_SECRET"', f"site_stale_s = {SITE_STALE_S}"]
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


def _start_collector(processes: Processes, workdir: Path, site: str, broker: SecureBroker, port: int) -> None:
    """The site's collector as deploy/multisite/site.yml runs it: TLS to the broker as the site's user,
    the password from the environment, its own metrics on `port`."""
    manifests = [f"@{workdir / name / 'manifest.json'}" for name, s, *_ in FLEETS if s == site]
    argv = [*FLEETMON, "collect", *manifests, "--mqtt", broker.url(None, tls=True), "--mqtt-username", site,
            "--mqtt-password-env", "E2E_MQTT_PASSWORD", "--mqtt-ca-file", str(broker.ca_file),
            "--site", site, "--collector-id", f"collector-{site}", "--interval", str(INTERVAL_S),
            "--timeout", "1.5", "--no-web", "--workers", "1", "--metrics-listen", f"{HOST}:{port}",
            "--spool-dir", str(workdir / f"spool-{site}"),
            "--out", str(workdir / f"produced-{site}.jsonl")]  # fmt: skip
    processes.start(f"collect-{site}", argv, env={"E2E_MQTT_PASSWORD": PASSWORDS[site]})


def _start_ingester(processes: Processes, n: int, broker: SecureBroker, db_url: str, port: int) -> None:
    """Ingester `n` as deploy/multisite/core.yml runs it: the core's listener, user `ingest`, a stable
    client id (its persistent session outlives a crash), its metrics on `port`."""
    processes.start(
        f"ingest-{n}",
        [*FLEETMON, "ingest", "--mqtt", broker.url(None), "--mqtt-username", "ingest",
         "--mqtt-password-env", "E2E_MQTT_PASSWORD", "--db", db_url, "--group", "fleetmon",
         "--client-id", f"e2e-ingest-{n}", "--flush-interval", "0.2", "--metrics-listen", f"{HOST}:{port}"],
        env={"E2E_MQTT_PASSWORD": PASSWORDS["ingest"]},
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
        ingest_ports = {n: free_port() for n in (1, 2)}
        for n, port in ingest_ports.items():
            _start_ingester(processes, n, broker, postgres.url, port)
        fleets = {}
        for name, *_ in FLEETS:
            manifest = workdir / name / "manifest.json"
            wait_until(manifest.exists, 60, f"simulate {name} wrote its manifest")
            fleets[name] = json.loads(manifest.read_text())
        collector_ports = {site: free_port() for site in SITES}
        for site, port in collector_ports.items():
            _start_collector(processes, workdir, site, broker, port)

        replica_ports = [free_port(), free_port()]
        for n, port in enumerate(replica_ports, start=1):
            config = _replica_config(workdir, n, port, postgres.url, broker)
            processes.start(f"serve-{n}", [*FLEETMON, "serve", "--config", str(config)])
        replica_urls = [f"http://{HOST}:{port}" for port in replica_ports]
        for url in replica_urls:
            wait_until(lambda url=url: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 60,
                       f"{url} answered /healthz")  # fmt: skip

        api_port = free_port()
        (workdir / "haproxy.cfg").write_text(haproxy_config(api_port, replica_ports))
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
        # What the README has operators list: each site's collector with its `site` label, the ingesters.
        for site, port in collector_ports.items():
            targets = [{"targets": [f"{HOST}:{port}"], "labels": {"site": site}}]
            (workdir / "targets" / f"{site}.yml").write_text(yaml.safe_dump(targets))
        ingest_targets = [{"targets": [f"{HOST}:{port}" for port in ingest_ports.values()]}]
        (workdir / "targets" / "ingest" / "core.yml").write_text(yaml.safe_dump(ingest_targets))
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
            ingest_ports,
        )
        yield stack
    finally:
        processes.stop_all()
        webhook.close()
        postgres.close()


def _stored_sites(stack: Stack) -> set[str]:
    return {site for site, *_ in stack.stored()}


def test_samples_of_both_sites_reach_the_database_the_api_and_prometheus(stack: Stack) -> None:
    stack.wait(lambda: _stored_sites(stack) == set(SITES), 90, "samples of both sites stored")
    every_ip = stack.site_ips("tx1") | stack.site_ips("ga2")

    def api_sees_every_miner() -> bool:
        with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}) as api:
            body = api.get("/api/v1/devices", params={"limit": 1000}, timeout=10).json()
        items = body["items"] if isinstance(body, dict) else body
        return {item["ip"] for item in items} == every_ip

    stack.wait(api_sees_every_miner, 60, "the API behind haproxy listed every miner")

    def prometheus_sees_every_miner() -> bool:
        series = stack.query('max by (site, ip) (fleetmon_miner_up{job="fleetmon"})')
        return {s["metric"]["ip"] for s in series} == every_ip

    stack.wait(prometheus_sees_every_miner, 60, "Prometheus scraped every miner through haproxy")


# ---- what arrives from outside the ACL ----------------------------------------------------------------

FORGED_IP = "127.87.9.9"  # an address of ga2's range that no collector polls
CONTROL_IP = "127.86.9.9"  # tx1's range: published by tx1's collector user under tx1, which the ACL allows


def _sample_json(ip: str) -> bytes:
    return json.dumps({"ip": ip, "port": 4028, "ts": datetime.now(UTC).isoformat(), "state": "mining",
                       "hashrate_ths": 100.0}).encode()  # fmt: skip


async def _publish_from_outside(broker: SecureBroker) -> str:
    """An anonymous client tries to connect; tx1's user publishes under ga2, then (control) under tx1.
    Returns the anonymous client's error."""
    tls = aiomqtt.TLSParameters(ca_certs=str(broker.ca_file))
    anonymous = aiomqtt.Client(HOST, broker.tls_port, protocol=aiomqtt.ProtocolVersion.V5, tls_params=tls)
    with pytest.raises(aiomqtt.MqttError) as refused:
        async with anonymous:
            await anonymous.publish(
                f"fleetmon/v1/ga2/{FORGED_IP}_4028/sample", _sample_json(FORGED_IP), qos=1
            )
    tx1 = aiomqtt.Client(HOST, broker.tls_port, username="tx1", password=PASSWORDS["tx1"],
                         protocol=aiomqtt.ProtocolVersion.V5, tls_params=tls)  # fmt: skip
    async with tx1:
        await tx1.publish(f"fleetmon/v1/ga2/{FORGED_IP}_4028/sample", _sample_json(FORGED_IP), qos=1)
        await tx1.publish(f"fleetmon/v1/tx1/{CONTROL_IP}_4028/sample", _sample_json(CONTROL_IP), qos=1)
    return str(refused.value)


def _rows_mentioning(stack: Stack, ip: str) -> int:
    samples = stack.sql(
        "SELECT count(*) FROM samples x JOIN devices d ON d.id = x.device_id WHERE d.ip = %s", ip
    )
    rejected = stack.sql("SELECT count(*) FROM rejected_samples WHERE position(%s::bytea in payload) > 0",
                         ip.encode())  # fmt: skip
    return int(samples[0][0]) + int(rejected[0][0])


def test_an_anonymous_client_and_a_collector_publishing_under_another_site_store_nothing(
    stack: Stack,
) -> None:
    error = asyncio.run(_publish_from_outside(stack.broker))
    assert "authori" in error.lower(), error
    # The control publish went through the same broker, ingesters and database: once it is stored, the
    # forged one, published before it on the same connection, would have been too.
    stack.wait(lambda: _rows_mentioning(stack, CONTROL_IP) == 1, 30, "the control sample stored")
    assert _rows_mentioning(stack, FORGED_IP) == 0


# ---- the dashboard behind the load balancer -------------------------------------------------------------


def test_a_dashboard_login_made_through_one_replica_is_accepted_by_the_other(stack: Stack) -> None:
    first, second = stack.replica_urls
    with httpx.Client(base_url=first, timeout=10) as browser:
        login = browser.post("/login", data={"key": stack.key, "next": "/"})
        assert login.status_code == 303, login.text
        cookies = dict(browser.cookies)
    assert cookies
    with httpx.Client(base_url=second, cookies=cookies, timeout=10) as browser:
        page = browser.get("/")
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    # The control: without the cookie the same page sends the browser to the login form.
    assert httpx.get(f"{second}/", timeout=10).status_code == 303


# ---- alerts ---------------------------------------------------------------------------------------------


def test_a_silent_block_of_miners_raises_miner_down_at_the_sites_floor_webhook(stack: Stack) -> None:
    block = {row["ip"] for row in stack.fleets["tx1-block"]}
    stack.processes.stop("tx1-block", signal.SIGINT)

    def block_paged() -> bool:
        paged = {labels["ip"] for _path, labels in stack.webhook.firing("MinerDown")}
        return block <= paged

    stack.wait(block_paged, 120, f"MinerDown for {sorted(block)} at the webhook")
    firing = stack.webhook.firing("MinerDown")
    assert {labels["ip"] for _path, labels in firing} == block  # only the silent ones
    # Routed as the shipped configuration says: a warning at tx1 goes to tx1's floor team.
    assert {(path, labels["site"], labels["severity"]) for path, labels in firing} == {
        ("/fleetmon/floor-tx1", "tx1", "warning")
    }


# ---- crashes and outages ------------------------------------------------------------------------------


def _ingest_counter(stack: Stack, n: int, name: str) -> float:
    """A counter of ingester `n`, read from its --metrics-listen endpoint."""
    text = httpx.get(f"http://{HOST}:{stack.ingest_ports[n]}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def _stored_count(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM samples")[0][0])


def test_an_ingester_killed_with_sigkill_mid_run_is_replaced_and_the_flow_goes_on(stack: Stack) -> None:
    before = _stored_count(stack)
    stack.wait(lambda: _stored_count(stack) > before, 30, "samples being stored")
    assert stack.processes.stop("ingest-1", signal.SIGKILL) == -signal.SIGKILL
    time.sleep(2 * INTERVAL_S)  # cycles published while one ingester is dead, its session still held
    _start_ingester(stack.processes, 1, stack.broker, stack.postgres.url, stack.ingest_ports[1])
    # The replacement resumes the killed one's persistent session: it commits what was queued for it.
    stack.wait(lambda: _ingest_counter(stack, 1, "fleetmon_ingest_batches_total") > 0, 60,
               "the restarted ingester committed a batch")  # fmt: skip
    # That nothing was lost or stored twice is checked over the whole run by the last test.


def _status(url: str, path: str) -> int:
    return httpx.get(f"{url}{path}", timeout=5).status_code


def test_with_the_database_stopped_replicas_stay_live_and_not_ready_and_no_sample_is_lost(
    stack: Stack,
) -> None:
    stack.postgres.stop()
    try:
        outage_started = datetime.now(UTC)
        for url in stack.replica_urls:
            wait_until(lambda url=url: _status(url, "/healthz") == 503, 30, f"{url}/healthz said 503")
        time.sleep(3 * INTERVAL_S)  # cycles polled and published while nothing can be stored
        ingesters_alive = [stack.processes.alive(f"ingest-{n}") for n in (1, 2)]
        replicas = {url: (_status(url, "/livez"), _status(url, "/readyz")) for url in stack.replica_urls}
    finally:
        stack.postgres.start()
    outage_ended = datetime.now(UTC)
    assert ingesters_alive == [True, True], "an ingester exited while the database was down"
    # Every sample polled during the outage is stored once the database is back.
    during = {key for key in _produced(stack) if outage_started <= key[3] <= outage_ended}
    assert during, "no sample was produced during the outage"
    stack.wait(lambda: during <= set(stack.stored()), 60, "the outage's samples stored after it")
    assert replicas == {url: (200, 503) for url in stack.replica_urls}


def _site_states(stack: Stack, url: str) -> dict[str, tuple[bool, str]]:
    body = httpx.get(f"{url}/api/v1/sites", headers={"Authorization": f"Bearer {stack.key}"}, timeout=5)
    return {site["site"]: (site["up"], site["state"]) for site in body.json()}


def _badges(stack: Stack, url: str) -> str:
    """The overview page's site badges, as a browser logged in with the key sees them."""
    with httpx.Client(base_url=url, timeout=10) as browser:
        assert browser.post("/login", data={"key": stack.key, "next": "/"}).status_code == 303
        page = browser.get("/").text
    return page[page.index('<ul class="site-badges"') :].split("</ul>", 1)[0]


def test_a_stopped_collector_raises_collector_down_and_shows_its_site_stale(stack: Stack) -> None:
    # SIGSTOP: the process hangs with its broker connection open, so nothing says goodbye for it; the
    # replicas must notice the silence themselves (SIGCONT in the last test lets it deliver what it holds).
    stack.processes.running["collect-ga2"].send_signal(signal.SIGSTOP)

    def ga2_paged() -> list[tuple[str, dict[str, str]]]:
        return [(p, lab) for p, lab in stack.webhook.firing("CollectorDown") if lab.get("site") == "ga2"]

    paged = stack.wait(ga2_paged, 120, "CollectorDown for ga2 at the webhook")
    assert {path for path, _labels in paged} == {"/fleetmon/oncall"}  # critical: pages
    assert not [lab for _p, lab in stack.webhook.firing("CollectorDown") if lab.get("site") == "tx1"]

    def ga2_stale_everywhere() -> bool:
        series = stack.query('max by (site) (fleetmon_site_collector_up{site="ga2"})')
        api = [_site_states(stack, url) for url in stack.replica_urls]
        return (
            bool(series) and series[0]["value"][1] == "0" and all(s["ga2"] == (False, "stale") for s in api)
        )

    stack.wait(ga2_stale_everywhere, 60, "ga2 shown stale by both replicas' API and by Prometheus")
    assert all(_site_states(stack, url)["tx1"] == (True, "ok") for url in stack.replica_urls)
    badges = _badges(stack, stack.api_url)
    assert 'class="badge site-stale" data-site="ga2"' in badges, badges
    assert 'class="badge site-ok" data-site="tx1"' in badges, badges


# ---- the whole run ------------------------------------------------------------------------------------


def _produced(stack: Stack) -> set[tuple[str, str, int, datetime]]:
    """(site, ip, port, ts) of every sample the collectors produced (their --out files)."""
    keys = set()
    for site in SITES:
        path = stack.workdir / f"produced-{site}.jsonl"
        for line in path.read_text().splitlines():
            if line.strip():
                sample = json.loads(line)
                keys.add((site, sample["ip"], int(sample["port"]), datetime.fromisoformat(sample["ts"])))
    return keys


def test_every_sample_produced_in_the_run_is_stored_exactly_once(stack: Stack) -> None:
    stack.processes.running["collect-ga2"].send_signal(signal.SIGCONT)
    for site in SITES:  # a clean stop delivers the cycle in progress
        if stack.processes.alive(f"collect-{site}"):
            assert stack.processes.stop(f"collect-{site}", signal.SIGTERM) == 0
    produced = _produced(stack)
    stack.wait(lambda: produced <= set(stack.stored()), 60, "every produced sample stored")
    stored = stack.stored()
    assert len(stored) == len(set(stored))
    assert {key[1] for key in set(stored) - produced} == {CONTROL_IP}

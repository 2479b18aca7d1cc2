"""The service across replicas and outages: shared session secrets, /livez apart from /readyz, `serve`
starting while its database is down, and each site's collector health in reader mode.

- Sessions: a cookie from one app instance is accepted by a second one with the same secret and by one
  holding it as the previous secret (a rotation), and refused by one with another secret.
- Readiness: `fleetmon serve` pointed at a PostgreSQL port where nothing listens starts, answers
  /livez 200 and /readyz 503 with the reason; once a throwaway PostgreSQL (initdb + pg_ctl in a temp
  directory, run as the postgres user) starts on that port, serve creates the schema and /readyz turns
  200; when it stops, /readyz is 503 again while /livez stays 200.
- Reader mode with MQTT: a site's retained status shows in GET /api/v1/sites, on the overview badge,
  and in /metrics as fleetmon_site_collector_*.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import mqtt_broker
import pytest
from fleet_process import FLEETMON, ROOT, stop_process, wait_for
from fleet_samples import wait_until
from mqtt_broker import private_broker  # noqa: F401  (fixture)
from pydantic import SecretStr
from starlette.testclient import TestClient

from fleetmon.config import (
    ConfigError,
    MqttSettings,
    ServiceSettings,
    Settings,
    StorageSettings,
    load_settings,
)
from fleetmon.service.app import create_app
from fleetmon.service.auth import Role, create_key
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.status import SiteStatus
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.web.session import COOKIE_NAME

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SECRET_A = "a" * 40
SECRET_B = "b" * 40


# ---- sessions across replicas -----------------------------------------------------------------------


@pytest.fixture
def key_db(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return url, create_key(engine, Role.VIEWER, "replica test")[1]


def _replica(
    db_url: str, monkeypatch: pytest.MonkeyPatch, current: str, previous: str | None = None
) -> TestClient:
    name = f"FLEETMON_TEST_SESSION_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(name, current)
    service = ServiceSettings(session_secret_env=name)
    if previous is not None:
        monkeypatch.setenv(name + "_PREV", previous)
        service = ServiceSettings(session_secret_env=name, session_previous_secret_env=name + "_PREV")
    settings = Settings(storage=StorageSettings(url=SecretStr(db_url)), service=service)
    runtime = ServiceRuntime.from_settings(settings, make_engine(db_url))
    return TestClient(create_app(runtime, manage_runtime=False), base_url="http://replica")


def test_a_session_from_one_replica_is_accepted_by_another_with_the_same_or_previous_secret(
    key_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url, key = key_db
    first = _replica(db_url, monkeypatch, SECRET_A)
    login = first.post("/login", data={"key": key, "next": "/"}, follow_redirects=False)
    assert login.status_code == 303
    cookie = login.cookies[COOKIE_NAME]

    def summary(replica: TestClient) -> int:
        return replica.get("/api/v1/fleet/summary", cookies={COOKIE_NAME: cookie}).status_code

    assert summary(first) == 200
    assert summary(_replica(db_url, monkeypatch, SECRET_A)) == 200
    assert summary(_replica(db_url, monkeypatch, SECRET_B, previous=SECRET_A)) == 200  # mid-rotation
    assert summary(_replica(db_url, monkeypatch, SECRET_B)) == 401
    # Without a configured secret each process signs with its own random one.
    random_a = TestClient(create_app(_runtime(db_url), manage_runtime=False))
    random_b = TestClient(create_app(_runtime(db_url), manage_runtime=False))
    own = random_a.post("/login", data={"key": key}, follow_redirects=False).cookies[COOKIE_NAME]
    assert random_b.get("/api/v1/fleet/summary", cookies={COOKIE_NAME: own}).status_code == 401


def _runtime(db_url: str) -> ServiceRuntime:
    settings = Settings(storage=StorageSettings(url=SecretStr(db_url)))
    return ServiceRuntime.from_settings(settings, make_engine(db_url))


def test_session_secrets_are_checked_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "fleetmon.toml"
    config.write_text('[service]\nsession_secret_env = "FLEETMON_TEST_UNSET_SECRET"\n')
    monkeypatch.delenv("FLEETMON_TEST_UNSET_SECRET", raising=False)
    with pytest.raises(ConfigError, match="FLEETMON_TEST_UNSET_SECRET is not set"):
        load_settings(config)
    monkeypatch.setenv("FLEETMON_TEST_UNSET_SECRET", "short")
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings(config)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET_A + "\n")
    config.write_text(f'[service]\nsession_previous_secret_file = "{secret_file}"\n')
    with pytest.raises(ConfigError, match="needs a current one"):
        load_settings(config)
    config.write_text(f'[service]\nsession_secret_file = "{secret_file}"\n')
    assert load_settings(config).session_secrets() == (SECRET_A.encode(), None)


def test_a_password_in_the_configured_broker_url_is_refused_naming_the_profile(tmp_path: Path) -> None:
    config = tmp_path / "fleetmon.toml"
    config.write_text('[mqtt]\nurl = "mqtts://fleetmon-api:hunter2@broker.example"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "credential profile" in str(caught.value) and "hunter2" not in str(caught.value)


# ---- readiness: a real PostgreSQL that is down, then up, then down --------------------------------------


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp directory on `port`, run as the postgres user."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.data = directory / "data"

    def _as_postgres(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        done = self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        done = self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.directory / "pg.log"),
            "-w", "start",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def throwaway_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayPostgres]:
    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    directory = Path("/tmp") / f"fleetmon-ops-pg-{uuid.uuid4().hex[:8]}"
    pg = ThrowawayPostgres(directory, mqtt_broker.free_port())
    pg.init()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_serve_starts_not_ready_while_its_database_is_down_and_becomes_ready_when_it_returns(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    port = mqtt_broker.free_port()
    config = tmp_path / "fleetmon.toml"
    pg_url = f"postgresql+psycopg://postgres@127.0.0.1:{throwaway_postgres.port}/postgres"
    config.write_text(f'[storage]\nurl = "{pg_url}"\n[service]\nport = {port}\nsnapshot_interval_s = 1\n')
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*FLEETMON, "serve", "--config", str(config)], cwd=ROOT, stdout=out, stderr=out,
            env={**os.environ, "FLEETMON_DATA_DIR": str(tmp_path)},
        )  # fmt: skip
    try:

        def answers(path: str) -> httpx.Response | None:
            try:
                return httpx.get(base + path, timeout=5)
            except httpx.HTTPError:
                return None

        assert wait_for(lambda: answers("/livez") is not None, 60), log.read_text()
        assert serve.poll() is None, log.read_text()
        live, ready = answers("/livez"), answers("/readyz")
        assert live is not None and live.status_code == 200 and live.json() == {"status": "ok"}
        assert ready is not None and ready.status_code == 503
        assert ready.json()["status"] == "not ready" and "database" in ready.json()["reason"]

        throwaway_postgres.start()

        # It answers now, with an empty database: not ready until the schema is migrated, which on
        # PostgreSQL is `fleetmon db upgrade`'s job (one migration, never racing replicas).
        def schema_reason() -> bool:
            response = answers("/readyz")
            return response is not None and "fleetmon db upgrade" in (response.json()["reason"] or "")

        assert wait_for(schema_reason, 30), log.read_text()
        upgrade = subprocess.run(
            [*FLEETMON, "db", "upgrade", "--db", pg_url], cwd=ROOT, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr

        def ready_now() -> bool:
            response = answers("/readyz")
            return response is not None and response.status_code == 200

        assert wait_for(ready_now, 60), log.read_text()
        body = answers("/readyz")
        assert body is not None and body.json()["reason"] is None
        healthz = answers("/healthz")
        assert healthz is not None and healthz.status_code == 200

        throwaway_postgres.stop()
        assert wait_for(lambda: (r := answers("/readyz")) is not None and r.status_code == 503, 30)
        live = answers("/livez")
        assert live is not None and live.status_code == 200
    finally:
        assert stop_process(serve) == 0, log.read_text()


# ---- reader mode: each site's collector ---------------------------------------------------------------


async def test_reader_mode_shows_each_sites_collector_in_the_api_the_badge_and_metrics(
    private_broker: mqtt_broker.Broker,  # noqa: F811
    key_db: tuple[str, str],
) -> None:
    db_url, key = key_db
    site = f"r{uuid.uuid4().hex[:6]}"
    settings = Settings(
        storage=StorageSettings(url=SecretStr(db_url)),
        service=ServiceSettings(metrics_public=True, site_stale_s=60),
        mqtt=MqttSettings(url=private_broker.url),
    )
    runtime = ServiceRuntime.from_settings(settings, make_engine(db_url))
    assert runtime.mode == "reader" and runtime.site_watch is not None
    await runtime.start()
    sink = MqttSink(private_broker.url, site, "c7")
    try:
        await asyncio.wait_for(runtime.site_watch.subscribed.wait(), 10)
        await sink.report(
            SiteStatus(site=site, online=True, collector_id="c7", devices_ok=5, devices_failed=2)
        )
        assert await wait_until(lambda: any(h.site == site for h in runtime.site_health()), timeout=10)
        transport = httpx.ASGITransport(app=create_app(runtime, manage_runtime=False))
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://reader", headers=headers
        ) as client:
            sites = (await client.get("/api/v1/sites")).json()
            row = next(s for s in sites if s["site"] == site)
            assert (row["state"], row["up"], row["devices_ok"], row["devices_failed"]) == ("ok", True, 5, 2)
            assert row["collector_id"] == "c7" and row["age_s"] < 30
            page = (await client.get("/")).text
            assert f'class="badge site-ok" data-site="{site}"' in page
            metrics = (await client.get("/metrics")).text
            assert f'fleetmon_site_collector_up{{site="{site}"}} 1.0' in metrics
            assert f'fleetmon_site_collector_last_seen_timestamp_seconds{{site="{site}"}}' in metrics
            await sink.close()  # a clean stop: the site says it is offline
            health = lambda: next(h for h in runtime.site_health() if h.site == site)  # noqa: E731
            assert await wait_until(lambda: not health().online, 10)
            row = next(s for s in (await client.get("/api/v1/sites")).json() if s["site"] == site)
            assert (row["state"], row["up"]) == ("offline", False)
            assert f'class="badge site-offline" data-site="{site}"' in (await client.get("/")).text
            assert f'fleetmon_site_collector_up{{site="{site}"}} 0.0' in (await client.get("/metrics")).text
    finally:
        await sink.close()
        await runtime.stop()

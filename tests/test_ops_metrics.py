"""`fleetmon collect` and `fleetmon ingest` watched: --metrics-listen, the retained site status, the will.

Real processes: a simulated fleet in its own process (127.82.1.0/24, plus one address where nothing
listens), `fleetmon collect --mqtt` into a private Mosquitto, then `fleetmon ingest` into SQLite. What an
operator's Prometheus would scrape is read over HTTP and parsed with client_python's own parser.

- Before any ingester subscribed, the broker acknowledges samples with "no matching subscribers": the
  collector keeps them in its spool, and its metrics say so (spool_samples > 0, nothing acknowledged).
- Once the ingester runs, the spool drains, acknowledged catches up with published, and the
  ingester's families count messages, batches and commits, with a lag of seconds.
- The site status retained on fleetmon/v1/<site>/status carries the last cycle's figures, and a
  collector killed with SIGKILL gets its site marked offline by its will.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import mqtt_broker
import pytest
from fleet_process import FLEETMON, ROOT, simulated_fleet_process, stop_process, wait_for
from mqtt_broker import private_broker  # noqa: F401  (fixture)
from prometheus_client.parser import text_string_to_metric_families

from fleetmon.sinks.status import SiteStatus

SUBNET = "127.82.1.0/24"
DEVICES = 12
NOBODY = "127.82.2.250"  # nothing listens here: one refused device in every cycle


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of http://127.0.0.1:port/metrics, keyed by (name, sorted labels)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """One sample's value; KeyError when the series is absent."""
    return metrics[(name, tuple(sorted(labels.items())))]


def try_scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        return scrape(port)
    except httpx.HTTPError:
        return {}


@pytest.fixture
def fleet_manifest(tmp_path: Path) -> Iterator[Path]:
    with simulated_fleet_process(tmp_path, DEVICES, SUBNET, seed=8) as manifest:
        yield manifest


async def _retained_status(url: str, site: str) -> SiteStatus:
    host, port = url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"fleetmon/v1/{site}/status", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return SiteStatus.parse(message.payload)
    raise AssertionError("no retained status")


def test_collect_and_ingest_export_their_figures_and_the_site_status_goes_offline_on_kill(
    fleet_manifest: Path,
    tmp_path: Path,
    private_broker: mqtt_broker.Broker,  # noqa: F811
) -> None:
    site = f"ops{uuid.uuid4().hex[:6]}"
    collect_port, ingest_port = mqtt_broker.free_port(), mqtt_broker.free_port()
    env = {**os.environ, "FLEETMON_DATA_DIR": str(tmp_path)}
    collect_log, ingest_log = tmp_path / "collect.log", tmp_path / "ingest.log"
    with collect_log.open("wb") as out:
        collector = subprocess.Popen(
            [*FLEETMON, "collect", f"@{fleet_manifest}", NOBODY, "--mqtt", private_broker.url,
             "--site", site, "--interval", "1", "--timeout", "3", "--collector-id", "c1",
             "--metrics-listen", f"127.0.0.1:{collect_port}"],
            cwd=ROOT, stdout=out, stderr=out, env=env,
        )  # fmt: skip
    ingester: subprocess.Popen[bytes] | None = None
    try:
        # No ingester yet: every cycle is spooled, and the metrics show it.
        def spooling() -> bool:
            m = try_scrape(collect_port)
            return m.get(("fleetmon_collector_spool_samples", (("site", site),)), 0) >= 2 * (DEVICES + 1)

        assert wait_for(spooling, 90), collect_log.read_text()
        m = scrape(collect_port)
        assert value(m, "fleetmon_collector_devices", site=site, result="ok", reason="") == DEVICES
        failed = {
            k: v
            for k, v in m.items()
            if k[0] == "fleetmon_collector_devices" and ("result", "failed") in k[1]
        }
        assert sum(failed.values()) == 1  # the address where nothing listens, with its reason
        assert value(m, "fleetmon_collector_acknowledged_total", site=site) == 0
        assert value(m, "fleetmon_collector_published_total", site=site) >= DEVICES + 1
        assert value(m, "fleetmon_collector_spool_bytes", site=site) > 0
        assert value(m, "fleetmon_collector_cycle_duration_seconds_count", site=site) >= 2
        assert value(m, "fleetmon_collector_last_cycle_timestamp_seconds", site=site) > 0

        # The ingester subscribes: the spool drains and everything published is acknowledged.
        db_url = f"sqlite:///{tmp_path / 'fleet.db'}"
        with ingest_log.open("wb") as out:
            ingester = subprocess.Popen(
                [*FLEETMON, "ingest", "--mqtt", private_broker.url, "--db", db_url, "--group", "ops",
                 "--client-id", "ops-1", "--metrics-listen", f"127.0.0.1:{ingest_port}"],
                cwd=ROOT, stdout=out, stderr=out, env=env,
            )  # fmt: skip

        def drained() -> bool:
            m = try_scrape(collect_port)
            key = ("fleetmon_collector_spool_samples", (("site", site),))
            acked = m.get(("fleetmon_collector_acknowledged_total", (("site", site),)), 0)
            return key in m and m[key] == 0 and acked > 0

        assert wait_for(drained, 90), collect_log.read_text() + ingest_log.read_text()
        assert wait_for(lambda: try_scrape(ingest_port).get(("fleetmon_ingest_batches_total", ()), 0) > 0, 60)
        im = scrape(ingest_port)
        assert value(im, "fleetmon_ingest_messages_total") >= 2 * (DEVICES + 1)
        assert value(im, "fleetmon_ingest_commit_seconds_count") == value(im, "fleetmon_ingest_batches_total")
        assert 0 <= value(im, "fleetmon_ingest_lag_seconds") < 60
        assert "process_cpu_seconds_total" in {k[0] for k in im}

        status = asyncio.run(_retained_status(private_broker.url, site))
        assert status.online and status.site == site and status.collector_id == "c1"
        assert (status.devices_ok, status.devices_failed) == (DEVICES, 1)
        assert status.last_cycle_end is not None and status.cycle_duration_s is not None

        # SIGKILL: no goodbye, so the broker publishes the will; a reader then sees the site offline.
        collector.send_signal(signal.SIGKILL)
        collector.wait(10)

        async def offline() -> bool:
            host, port = private_broker.url.removeprefix("mqtt://").split(":")
            async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V5) as client:
                await client.subscribe(f"fleetmon/v1/{site}/collector/c1/status", qos=1)
                async with asyncio.timeout(30):
                    async for message in client.messages:
                        if message.payload == b"offline":
                            return True
            return False

        assert asyncio.run(offline())
    finally:
        stop_process(collector)
        if ingester is not None:
            assert stop_process(ingester) == 0, ingest_log.read_text()


def test_collect_refuses_a_password_variable_that_is_not_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLEETMON_TEST_NO_SUCH"}
    env["FLEETMON_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [*FLEETMON, "collect", "127.82.3.1", "--mqtt", "mqtt://127.0.0.1:1", "--mqtt-username", "tx1",
         "--mqtt-password-env", "FLEETMON_TEST_NO_SUCH"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "FLEETMON_TEST_NO_SUCH is not set" in done.stderr


def test_a_password_in_the_broker_url_is_warned_about_naming_the_safe_ways(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fleetmon.sinks.topics import BrokerUrl

    with caplog.at_level("WARNING"):
        broker = BrokerUrl.parse("mqtts://tx1:pw-secret@broker.example")
    assert broker.tls and broker.port == 8883
    assert "--mqtt-password-env" in caplog.text and "pw-secret" not in caplog.text
    with caplog.at_level("WARNING"):
        caplog.clear()
        BrokerUrl.parse("mqtt://broker.example")
    assert caplog.text == ""

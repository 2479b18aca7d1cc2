"""MQTT secured: a site over TLS with its password by reference, an ingester refusing a sample of another
site than its topic, and a reader watching every site's collector status.

The TLS broker is the shipped deploy/mosquitto configuration started by test_mosquitto_acl's helper
(passwords, per-site ACL, a TLS listener with a test certificate); the other checks use a private
Mosquitto. Nothing is mocked: real brokers, real SQLite files.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import mqtt_broker
import pytest
import test_mosquitto_acl
from fleet_samples import T0, count_rows, make_sample, wait_until
from mqtt_broker import private_broker  # noqa: F401  (fixture)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from test_mosquitto_acl import PASSWORDS, Broker, start_broker, stop_broker

from fleetmon.ingest import Ingester
from fleetmon.service.sites import SiteWatch
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.status import SiteStatus
from fleetmon.sinks.topics import BrokerUrl
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.writer import SampleStore

HOST = "127.82.0.1"  # this module's address for the shipped-config broker (127.82/16 is ours)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The shipped configuration, its listeners (and certificate) on HOST for this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_mosquitto_acl, "HOST", HOST)
        started = start_broker(tmp_path_factory.mktemp("mosquitto-ops") / "shipped")
        yield started
        stop_broker(started)


def _tls_url(broker: Broker) -> BrokerUrl:
    return BrokerUrl.parse(f"mqtts://{HOST}:{broker.tls_port}")


async def test_a_site_publishes_over_tls_with_a_password_by_reference_and_retains_its_status(
    tls_broker: Broker,
) -> None:
    url = (
        _tls_url(tls_broker)
        .with_credentials("tx1", PASSWORDS["tx1"])
        .with_tls_files(ca_file=tls_broker.ca_file)
    )
    async with tls_broker.client("ingest", tls=True) as reader:
        await reader.subscribe("$share/ops/fleetmon/v1/+/+/sample", qos=1)
        await reader.subscribe("fleetmon/v1/tx1/status", qos=1)
        sink = MqttSink(url, "tx1", "c-tls")
        await sink.send([make_sample(1, T0)])
        await sink.report(
            SiteStatus(site="tx1", online=True, collector_id="c-tls", devices_ok=1, devices_failed=0)
        )
        seen: dict[str, bytes] = {}
        async with asyncio.timeout(10):
            async for message in reader.messages:
                assert isinstance(message.payload, bytes)
                seen[message.topic.value] = message.payload
                if "fleetmon/v1/tx1/status" in seen and any(t.endswith("/sample") for t in seen):
                    status = SiteStatus.parse(seen["fleetmon/v1/tx1/status"])
                    if status.devices_ok == 1:
                        break
        await sink.close()
    assert json.loads(seen["fleetmon/v1/tx1/10.0.0.1_4028/sample"])["ip"] == "10.0.0.1"


async def test_tls_refuses_a_broker_the_ca_does_not_vouch_for(tls_broker: Broker) -> None:
    # The system CA store does not know the test's self-signed certificate: no connection.
    url = _tls_url(tls_broker).with_credentials("tx1", PASSWORDS["tx1"])
    sink = MqttSink(url, "tx1", "c-untrusted", timeout=5)
    with pytest.raises(SinkUnavailableError):
        await sink.send([make_sample(1, T0)])


async def test_a_wrong_password_from_the_reference_is_refused(tls_broker: Broker) -> None:
    url = (
        _tls_url(tls_broker)
        .with_credentials("tx1", "not-the-password")
        .with_tls_files(ca_file=tls_broker.ca_file)
    )
    sink = MqttSink(url, "tx1", "c-wrong", timeout=5)
    with pytest.raises(SinkUnavailableError):
        await sink.send([make_sample(1, T0)])


def test_tls_files_need_an_mqtts_url_and_come_in_pairs(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValueError, match="mqtts"):
        BrokerUrl.parse("mqtt://h").with_tls_files(ca_file=cert)
    with pytest.raises(ValueError, match="together"):
        BrokerUrl.parse("mqtts://h").with_tls_files(cert_file=cert)
    with pytest.raises(ValueError, match="does not exist"):
        BrokerUrl.parse("mqtts://h").with_tls_files(ca_file=tmp_path / "missing.pem")


# ---- the ingester and the site of a sample ----------------------------------------------------------


async def test_an_ingester_refuses_and_counts_a_sample_whose_site_is_not_its_topics(
    private_broker: mqtt_broker.Broker,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'ingest.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    ingester = Ingester(
        BrokerUrl.parse(private_broker.url), SampleStore(engine), group="mm", client_id="mm-1"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    try:
        await asyncio.wait_for(ingester.subscribed.wait(), 10)
        other = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        other.UserProperty = [("site", "ga2")]
        async with aiomqtt.Client("127.0.0.1", private_broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
            topic = "fleetmon/v1/tx1/10.0.0.{}_4028/sample"
            # Claims ga2 in its MQTT properties, arrives on tx1's topic.
            await c.publish(topic.format(1), make_sample(1, T0).to_json(), qos=1, properties=other)
            # Names ga2 in its JSON.
            named = {**json.loads(make_sample(2, T0).to_json()), "site": "ga2"}
            await c.publish(topic.format(2), json.dumps(named), qos=1)
            # Names its own site in the JSON: fine, stored.
            own = {**json.loads(make_sample(3, T0).to_json()), "site": "tx1"}
            await c.publish(topic.format(3), json.dumps(own), qos=1)
        # And the collector's own sink, which sets the property to its site: stored.
        sink = MqttSink(private_broker.url, "tx1", "c1")
        await sink.send([make_sample(4, T0)])
        await sink.close()
        await wait_until(lambda: count_rows(db_url) >= 2, timeout=20)
        await wait_until(lambda: ingester.stats.acked >= 4, timeout=20)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert count_rows(db_url) == 2
    assert ingester.metrics.rejected_by_reason == {"site_mismatch": 2}
    assert ingester.stats.acked == 4  # refused ones are acknowledged, so the broker does not resend them
    assert "claiming site 'ga2' on topic fleetmon/v1/tx1/10.0.0.1_4028/sample" in caplog.text


# ---- a reader watching every site ------------------------------------------------------------------


async def test_a_reader_sees_each_sites_status_go_stale_and_offline_when_its_collector_dies(
    private_broker: mqtt_broker.Broker,  # noqa: F811
) -> None:
    site_a, site_b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    watch = SiteWatch(stale_after_s=2.0)
    stop = asyncio.Event()
    task = asyncio.create_task(watch.run(BrokerUrl.parse(private_broker.url), "reader-1", stop))
    sink_a = MqttSink(private_broker.url, site_a, "ca")
    sink_b = MqttSink(private_broker.url, site_b, "cb")
    try:
        await asyncio.wait_for(watch.subscribed.wait(), 10)
        for sink, site in ((sink_a, site_a), (sink_b, site_b)):
            await sink.report(
                SiteStatus(site=site, online=True, collector_id=sink.collector_id, devices_ok=3)
            )
        await wait_until(lambda: len([h for h in watch.sites() if h.up]) == 2, timeout=10)
        # b's collector dies without a goodbye: its will marks the site offline.
        assert sink_b._client is not None
        sink_b._client._client.socket().shutdown(socket.SHUT_RDWR)
        await wait_until(lambda: not _health(watch, site_b).online, timeout=20)
        assert not _health(watch, site_b).up and _health(watch, site_a).up
        # a says nothing more: after stale_after_s it is stale, though still online.
        await asyncio.sleep(2.5)
        health = _health(watch, site_a)
        assert health.online and not health.up and health.age_s is not None and health.age_s > 2.0
        families = {f.name: f for f in watch.collect()}
        up = {s.labels["site"]: s.value for s in families["fleetmon_site_collector_up"].samples}
        assert up[site_a] == 0 and up[site_b] == 0
        seen = families["fleetmon_site_collector_last_seen_timestamp_seconds"].samples
        assert {s.labels["site"] for s in seen} >= {site_a, site_b}
        assert all(time.time() - 30 < s.value <= time.time() for s in seen)
        # a reports again: up.
        await sink_a.report(SiteStatus(site=site_a, online=True, collector_id="ca", devices_ok=3))
        await wait_until(lambda: _health(watch, site_a).up, timeout=10)
    finally:
        stop.set()
        await sink_a.close()
        await asyncio.wait_for(task, 15)


def _health(watch: SiteWatch, site: str):  # type: ignore[no-untyped-def]
    return next(h for h in watch.sites() if h.site == site)


def test_a_status_published_under_another_sites_topic_is_ignored() -> None:
    watch = SiteWatch()
    forged = SiteStatus(site="tx1", online=False, collector_id="x").payload()
    watch.take("fleetmon/v1/ga2/status", forged)
    watch.take("fleetmon/v1/ga2/status", b"{not json")
    assert watch.sites() == []
    old = SiteStatus(site="ga2", online=True, collector_id="c", sent_at=T0)
    watch.take("fleetmon/v1/ga2/status", SiteStatus(site="ga2", online=True, collector_id="c").payload())
    watch.take("fleetmon/v1/ga2/status", old.payload())  # late and older: does not win
    assert watch.sites()[0].up

"""The MQTT path over the real Mosquitto: publish -> shared-subscription ingest -> database, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator

import aiomqtt
import fleet_samples
import mqtt_broker
import pytest
from fleet_samples import T0, count_rows, fleet_cycle, make_sample, wait_until

from collectors.sample import State
from fleetmon.ingest import Ingester
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.topics import (
    BrokerUrl,
    collector_of_status,
    sample_topic,
    site_of,
    site_of_status,
    site_status_topic,
    state_topic,
    status_topic,
)
from fleetmon.storage.engine import make_engine
from fleetmon.storage.export import iter_samples
from fleetmon.storage.writer import SampleStore

db_url = fleet_samples.db_url
blank_db_url = fleet_samples.blank_db_url
private_broker = mqtt_broker.private_broker


async def _wait_for_count(url: str, expected: int, timeout: float = 60.0) -> int:
    await wait_until(lambda: count_rows(url) >= expected, timeout=timeout, step=0.1)
    return count_rows(url)


@contextlib.asynccontextmanager
async def _ingesting(broker: str, url: str, *, group: str, client_id: str) -> AsyncIterator[Ingester]:
    ingester = Ingester(
        BrokerUrl.parse(broker),
        SampleStore(make_engine(url)),
        group=group,
        client_id=client_id,
        flush_interval=0.05,
        session_expiry_s=300,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    await asyncio.wait_for(ingester.subscribed.wait(), 10)
    try:
        yield ingester
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_topics_follow_the_documented_layout() -> None:
    assert sample_topic("north", "10.0.3.17", 4028) == "fleetmon/v1/north/10.0.3.17_4028/sample"
    assert state_topic("north", "10.0.3.17", 4028) == "fleetmon/v1/north/10.0.3.17_4028/state"
    assert status_topic("north", "c1") == "fleetmon/v1/north/collector/c1/status"
    assert site_of("fleetmon/v1/north/10.0.3.17_4028/sample") == "north"
    with pytest.raises(ValueError):
        site_of("other/v1/north/x/sample")
    with pytest.raises(ValueError):
        sample_topic("a/b", "10.0.0.1", 4028)


@pytest.mark.parametrize(
    "topic",
    [
        "fleetmon/v1/north/collector/c1",  # a level short
        "fleetmon/v1/north/collector/c1/status/x",  # a level long
        "fleetmon/v2/north/collector/c1/status",  # another layout version
        "fleetmon/v1/north/pdu/c1/status",
        "fleetmon/v1/no rth/collector/c1/status",  # not a site name
    ],
)
def test_status_topics_parse_back_and_refuse_anything_else(topic: str) -> None:
    assert collector_of_status(status_topic("north", "c1")) == ("north", "c1")
    assert site_of_status(site_status_topic("north")) == "north"
    with pytest.raises(ValueError):
        collector_of_status(topic)
    with pytest.raises(ValueError):
        site_of_status(topic)
    with pytest.raises(ValueError):
        site_of_status("fleetmon/v1/north/state")


def test_broker_url_never_shows_its_password() -> None:
    url = BrokerUrl.parse("mqtt://ingest:s3cret@broker.example:8883")
    assert (url.host, url.port, url.username, url.password) == ("broker.example", 8883, "ingest", "s3cret")
    assert "s3cret" not in repr(url) and "s3cret" not in str(url)


async def test_published_samples_are_stored_exactly_once_by_two_shared_ingesters(
    mqtt_url: str, db_url: str
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    site = f"s{uuid.uuid4().hex[:8]}"
    produced = fleet_cycle(60, 0) + fleet_cycle(60, 1)
    async with (
        _ingesting(mqtt_url, db_url, group=group, client_id=f"{group}-a") as first,
        _ingesting(mqtt_url, db_url, group=group, client_id=f"{group}-b") as second,
    ):
        sink = MqttSink(mqtt_url, site, "c1")
        await sink.send(produced)
        await sink.send(produced[:40])  # the collector re-sends after a lost PUBACK
        await sink.close()
        assert await _wait_for_count(db_url, 120) == 120
        # Wait for the re-sent 40 to pass through too, then make sure they added nothing.
        await wait_until(lambda: first.stats.acked + second.stats.acked >= 160)
    assert first.stats.acked + second.stats.acked == 160
    assert first.stats.received > 0 and second.stats.received > 0  # the shared subscription split the load
    assert count_rows(db_url) == 120
    exported = sorted(s.to_json() for s in iter_samples(make_engine(db_url), site=site))
    assert exported == sorted(s.to_json() for s in produced)


async def test_a_malformed_message_is_rejected_and_the_rest_stored(mqtt_url: str, db_url: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    site = f"s{uuid.uuid4().hex[:8]}"
    async with _ingesting(mqtt_url, db_url, group=group, client_id=f"{group}-a") as ingester:
        broker = BrokerUrl.parse(mqtt_url)
        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.publish(f"fleetmon/v1/{site}/10.9.9.9_4028/sample", b"{not json", qos=1)
            await client.publish(f"fleetmon/v1/{site}/10.9.9.9_4028/sample", b'{"ip": "10.9.9.9"}', qos=1)
        sink = MqttSink(mqtt_url, site, "c1")
        await sink.send([make_sample(1, T0)])
        await sink.close()
        assert await _wait_for_count(db_url, 1) == 1
        await wait_until(lambda: ingester.stats.rejected >= 2, timeout=10)
    assert ingester.stats.rejected == 2


async def test_device_state_is_retained_and_collector_status_has_a_last_will(mqtt_url: str) -> None:
    site = f"s{uuid.uuid4().hex[:8]}"
    sink = MqttSink(mqtt_url, site, "c9")
    await sink.send([make_sample(5, T0), make_sample(6, T0, state=State.UNREACHABLE)])
    broker = BrokerUrl.parse(mqtt_url)
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as watcher:
        await watcher.subscribe(f"fleetmon/v1/{site}/+/state", qos=1)
        await watcher.subscribe(status_topic(site, "c9"), qos=1)
        seen: dict[str, bytes] = {}
        async with asyncio.timeout(10):
            async for message in watcher.messages:
                seen[message.topic.value] = message.payload  # type: ignore[assignment]
                if len(seen) == 3:
                    break
        assert seen[status_topic(site, "c9")] == b"online"
        down = json.loads(seen[state_topic(site, "10.0.0.6", 4028)])
        assert down == {"state": "unreachable", "ts": "2026-11-24T12:00:00.123456Z"}
        # Cut the collector's TCP connection without a DISCONNECT: the broker must publish the will.
        assert sink._client is not None
        sink._client._client.socket().shutdown(socket.SHUT_RDWR)
        async with asyncio.timeout(15):
            async for message in watcher.messages:
                if message.topic.value == status_topic(site, "c9") and message.payload == b"offline":
                    break


async def test_mqtt_sink_reports_an_absent_broker_as_unavailable() -> None:
    sink = MqttSink(f"mqtt://127.0.0.1:{mqtt_broker.free_port()}", "north", "c1", timeout=3)
    with pytest.raises(SinkUnavailableError):
        await sink.send([make_sample(1, T0)])


async def test_a_restarted_ingester_gets_what_was_published_while_it_was_down(
    private_broker: mqtt_broker.Broker, db_url: str
) -> None:
    group = "restart"
    async with _ingesting(private_broker.url, db_url, group=group, client_id="only"):
        pass  # the persistent session and its shared subscription now exist at the broker
    sink = MqttSink(private_broker.url, "north", "c1")
    produced = fleet_cycle(50, 0)
    await sink.send(produced)
    await sink.close()
    assert count_rows(db_url) == 0
    async with _ingesting(private_broker.url, db_url, group=group, client_id="only"):
        assert await _wait_for_count(db_url, 50) == 50

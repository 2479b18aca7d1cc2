"""Over the real Mosquitto: forged messages are kept as dead letters, acknowledged, and stop nothing."""

from __future__ import annotations

import json
import uuid

import aiomqtt
import fleet_samples
from fleet_samples import T0, count_rows, make_sample, wait_until
from test_mqtt import _ingesting, _wait_for_count

from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.topics import BrokerUrl, sample_topic
from fleetmon.storage.engine import make_engine
from fleetmon.storage.rejected import REJECTED, iter_rejections

db_url = fleet_samples.db_url
blank_db_url = fleet_samples.blank_db_url


async def test_forged_messages_are_dead_lettered_acked_and_the_following_ones_stored(
    mqtt_url: str, db_url: str
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    site = f"s{uuid.uuid4().hex[:8]}"
    nul_url = json.loads(make_sample(7, T0).to_json())
    nul_url["pools"][0]["url"] = "stratum+tcp://pool\u0000.example:3333"
    huge = json.loads(make_sample(8, T0).to_json())
    huge["pools"][0]["accepted"] = 2**70
    forged = {
        sample_topic(site, "10.0.0.7", 4028): json.dumps(nul_url).encode(),
        sample_topic(site, "10.0.0.8", 4028): json.dumps(huge).encode(),
    }
    assert b"\\u0000" in forged[sample_topic(site, "10.0.0.7", 4028)]
    good = [make_sample(n, T0) for n in range(1, 4)]
    async with _ingesting(mqtt_url, db_url, group=group, client_id=f"{group}-a") as ingester:
        broker = BrokerUrl.parse(mqtt_url)
        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
            for topic, payload in forged.items():
                await client.publish(topic, payload, qos=1)
        sink = MqttSink(mqtt_url, site, "c1")
        await sink.send(good)
        await sink.close()
        assert await _wait_for_count(db_url, 3) == 3
        assert await wait_until(lambda: ingester.stats.acked >= 5, timeout=10)
    assert (ingester.stats.received, ingester.stats.rejected, ingester.stats.acked) == (5, 2, 5)
    kept = {item.source: item for item in iter_rejections(make_engine(db_url))}
    assert set(kept) == set(forged)
    for topic, item in kept.items():
        assert item.payload == forged[topic]  # kept exactly as published
        assert item.site == site and item.error.startswith("not a valid sample")
    assert "pools.0.url" in kept[sample_topic(site, "10.0.0.7", 4028)].error
    assert "pools.0.accepted" in kept[sample_topic(site, "10.0.0.8", 4028)].error

    # Acknowledged: the same persistent session gets only the next message, no redelivery.
    async with _ingesting(mqtt_url, db_url, group=group, client_id=f"{group}-a") as again:
        sink = MqttSink(mqtt_url, site, "c1")
        await sink.send([make_sample(4, T0)])
        await sink.close()
        assert await _wait_for_count(db_url, 4) == 4
        assert await wait_until(lambda: again.stats.acked >= 1, timeout=10)
    assert again.stats.received == 1
    assert (count_rows(db_url), count_rows(db_url, REJECTED)) == (4, 2)

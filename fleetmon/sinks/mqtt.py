"""MqttSink: the collector publishing its samples to the broker at QoS 1.

`send` returns only when the broker acknowledged (PUBACK) every sample of the batch AND routed it to
at least one subscription. Any failure (no connection, timeout, disconnect mid-batch, a PUBACK reason
code of 0x80 or above, or 0x10 "no matching subscribers") raises SinkUnavailableError and the caller
spools the whole batch. Some of it may have reached the broker: the ingesters' (device, ts) idempotency
absorbs the repeat.

Why 0x10 matters: with no ingester subscribed a QoS 1 message is acknowledged and then dropped. That
happens when every ingester is gone without a persistent session, and with Mosquitto 2.0 right after a
broker restart: the shared subscriptions of sessions that were connected at shutdown are not routed to
until their ingesters reconnect. Treating it as "not delivered" keeps those samples in the spool.

Liveness: the connection carries a last will `offline` (retained) on the collector's status topic,
and `online` (retained) is published on every connect; a clean close publishes `offline` itself.
Device state is published retained whenever it changes (and once per connection). The site's status
(fleetmon.sinks.status) is retained on `fleetmon/v1/<site>/status` on connect and by `report` after
every cycle. MQTT allows one will per connection and it stays on the collector's own topic: a reader
that sees `offline` there for the collector its site status names marks the site offline. A clean
close retains the site status with `online: false` as well.

Every sample is published with the MQTT 5 user property `site`, so an ingester can refuse a sample
whose site does not match the topic it arrived on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collectors.sample import Sample, format_ts
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.sinks.status import SiteStatus
from fleetmon.sinks.topics import (
    BrokerUrl,
    check_site,
    sample_topic,
    site_status_topic,
    state_topic,
    status_topic,
)

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10
ONLINE = b"online"
OFFLINE = b"offline"


class _PubackBatch:
    """The PUBACKs one `send` waits for."""

    __slots__ = ("done", "pending", "refused")

    def __init__(self) -> None:
        self.pending: set[int] = set()
        self.refused = 0
        self.done = asyncio.Event()


class MqttSink:
    """Publishes one collector's samples; reconnects on the next `send` after a failure."""

    def __init__(
        self,
        url: str | BrokerUrl,
        site: str,
        collector_id: str,
        *,
        timeout: float = 10.0,
        max_inflight: int = 256,
    ) -> None:
        self.broker = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
        self.site = check_site(site)
        self.collector_id = collector_id
        self.timeout = timeout
        self.max_inflight = max_inflight
        self.status_topic = status_topic(site, collector_id)
        self.site_status_topic = site_status_topic(site)
        self.site_status = SiteStatus(site=site, online=True, collector_id=collector_id)
        self._sample_properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        self._sample_properties.UserProperty = [("site", self.site)]
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._states: dict[tuple[str, int], tuple[str, str]] = {}
        self.published = 0
        self._batches: dict[int, _PubackBatch] = {}

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        client = aiomqtt.Client(
            **self.broker.client_options(),
            identifier=f"fleetmon-collector-{self.site}-{self.collector_id}",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(self.status_topic, OFFLINE, qos=1, retain=True),
            timeout=self.timeout,
            max_inflight_messages=self.max_inflight,
        )
        # A whole poll cycle is published at once; aiomqtt warns above 10 pending calls by default.
        client.pending_calls_threshold = 1_000_000
        self._watch_pubacks(client)
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(client)
            await client.publish(self.status_topic, ONLINE, qos=1, retain=True)
            await client.publish(self.site_status_topic, self.site_status.payload(), qos=1, retain=True)
        except (aiomqtt.MqttError, OSError) as exc:
            await _close_quietly(stack)
            raise SinkUnavailableError(f"broker {self.broker} unavailable: {exc}") from exc
        self._stack, self._client = stack, client
        self._batches.clear()
        self._states.clear()  # republish every state on a new connection
        log.info("connected to broker %s as collector %s/%s", self.broker, self.site, self.collector_id)
        return client

    async def _drop(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await _close_quietly(stack)

    async def send(self, samples: Sequence[Sample]) -> None:
        """Publish every sample at QoS 1 and wait for all PUBACKs; SinkUnavailableError otherwise."""
        if not samples:
            return
        client = await self._connect()
        messages = [(sample_topic(self.site, s.ip, s.port), s.to_json(), False) for s in samples]
        refused = await self._publish_all(client, messages, self._sample_properties)
        if refused:
            raise SinkUnavailableError(
                f"broker {self.broker} took {refused} of {len(samples)} samples without a subscriber "
                "to deliver them to (no ingester connected?)"
            )
        self.published += len(samples)
        # Retained state: nobody needs to be subscribed, so its PUBACK reason code is not checked.
        await self._publish_all(client, self._state_changes(samples))

    async def report(self, status: SiteStatus) -> None:
        """Retain the site's status now; SinkUnavailableError when the broker did not acknowledge it."""
        self.site_status = status
        client = await self._connect()
        refused = await self._publish_all(client, [(self.site_status_topic, status.payload().decode(), True)])
        if refused:
            raise SinkUnavailableError(f"broker {self.broker} refused the site status (not authorized?)")

    async def _publish_all(
        self,
        client: aiomqtt.Client,
        messages: Sequence[tuple[str, str, bool]],
        properties: Properties | None = None,
    ) -> int:
        """Queue all messages at QoS 1 and wait for their PUBACKs; returns how many the broker refused.

        Straight onto paho's queue, one waiter per batch: aiomqtt's `publish` costs an Event, a
        wait_for and a scan of every pending call per message, which held a 2,000-device cycle to about
        2,000 messages/s; this path runs at the broker's pace.
        """
        if not messages:
            return 0
        batch = _PubackBatch()
        paho = client._client
        for topic, payload, retain in messages:
            info = paho.publish(topic, payload, qos=1, retain=retain, properties=properties)
            if info.rc != 0:
                self._forget(batch)
                await self._drop()
                raise SinkUnavailableError(f"broker {self.broker}: publish refused locally (rc={info.rc})")
            batch.pending.add(info.mid)
            self._batches[info.mid] = batch
        done: asyncio.Future[Any] = asyncio.ensure_future(batch.done.wait())
        disconnected: asyncio.Future[Any] = client._disconnected
        waiters: list[asyncio.Future[Any]] = [done, disconnected]
        try:
            await asyncio.wait(waiters, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
        if disconnected.done() and not disconnected.cancelled():
            disconnected.exception()  # retrieved, so asyncio does not report it as never retrieved
        if batch.pending:
            self._forget(batch)
            await self._drop()
            raise SinkUnavailableError(
                f"{len(batch.pending)} of {len(messages)} publishes to {self.broker} got no PUBACK"
            )
        return batch.refused

    def _forget(self, batch: _PubackBatch) -> None:
        for mid in batch.pending:
            self._batches.pop(mid, None)

    def _watch_pubacks(self, client: aiomqtt.Client) -> None:
        """Route PUBACKs of our batches to their waiter, with the reason code aiomqtt would drop.

        aiomqtt 2.5 resolves `publish` on any PUBACK and drops the reason code, so this wraps its paho
        callback (the one place we reach under aiomqtt on the publishing side); PUBACKs of aiomqtt's
        own publishes (the status topic) are passed on to it.
        """
        paho = client._client
        forward: Any = paho.on_publish

        def on_publish(paho_client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            batch = self._batches.pop(mid, None)
            if batch is None:
                forward(paho_client, userdata, mid, reason, properties)
                return
            code = getattr(reason, "value", 0)
            if code == NO_MATCHING_SUBSCRIBERS or code >= 0x80:
                batch.refused += 1
            batch.pending.discard(mid)
            if not batch.pending:
                batch.done.set()

        paho.on_publish = on_publish

    def _state_changes(self, samples: Sequence[Sample]) -> list[tuple[str, str, bool]]:
        changes: list[tuple[str, str, bool]] = []
        newest: dict[tuple[str, int], Sample] = {}
        for sample in samples:
            key = (sample.ip, sample.port)
            if key not in newest or sample.ts >= newest[key].ts:
                newest[key] = sample
        for key, sample in newest.items():
            state, ts = sample.state.value, format_ts(sample.ts)
            known = self._states.get(key)
            if known is not None and (known[0] == state or known[1] > ts):
                continue
            self._states[key] = (state, ts)
            payload = json.dumps({"state": state, "ts": ts})
            topic = state_topic(self.site, sample.ip, sample.port)
            changes.append((topic, payload, True))
        return changes

    async def close(self) -> None:
        """Publish `offline` (collector and site status) and disconnect (no will on a clean disconnect)."""
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
                offline = self.site_status.offline().payload()
                await self._client.publish(self.site_status_topic, offline, qos=1, retain=True)
        await self._drop()


async def _close_quietly(stack: AsyncExitStack) -> None:
    with contextlib.suppress(aiomqtt.MqttError, OSError, asyncio.TimeoutError):
        await stack.aclose()

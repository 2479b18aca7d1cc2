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
Device state is published retained whenever it changes (and once per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import aiomqtt

from collectors.sample import Sample, format_ts
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.sinks.topics import BrokerUrl, check_site, sample_topic, state_topic, status_topic

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10
ONLINE = b"online"
OFFLINE = b"offline"


class MqttSink:
    """Publishes one collector's samples; reconnects on the next `send` after a failure."""

    def __init__(
        self,
        url: str | BrokerUrl,
        site: str,
        collector_id: str,
        *,
        timeout: float = 10.0,
        max_inflight: int = 1000,
    ) -> None:
        self.broker = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
        self.site = check_site(site)
        self.collector_id = collector_id
        self.timeout = timeout
        self.max_inflight = max_inflight
        self.status_topic = status_topic(site, collector_id)
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._states: dict[tuple[str, int], tuple[str, str]] = {}
        self.published = 0
        self._refused = 0

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
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
        except (aiomqtt.MqttError, OSError) as exc:
            await _close_quietly(stack)
            raise SinkUnavailableError(f"broker {self.broker} unavailable: {exc}") from exc
        self._stack, self._client = stack, client
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
        publishes: list[Awaitable[None]] = [
            client.publish(sample_topic(self.site, s.ip, s.port), s.to_json(), qos=1) for s in samples
        ]
        self._refused = 0
        await self._gather(publishes)
        if self._refused:
            raise SinkUnavailableError(
                f"broker {self.broker} took {self._refused} of {len(samples)} samples without a subscriber "
                "to deliver them to (no ingester connected?)"
            )
        self.published += len(samples)
        # Retained state: nobody needs to be subscribed, so its PUBACK reason code is not checked.
        await self._gather(self._state_changes(client, samples))

    async def _gather(self, publishes: Sequence[Awaitable[None]]) -> None:
        results = await asyncio.gather(*publishes, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await self._drop()
            raise SinkUnavailableError(
                f"{len(failures)} of {len(publishes)} publishes to {self.broker} failed: {failures[0]!r}"
            ) from failures[0]

    def _watch_pubacks(self, client: aiomqtt.Client) -> None:
        """Count PUBACKs whose reason code says the sample was not delivered.

        aiomqtt 2.5 resolves `publish` on any PUBACK and drops the reason code, so this wraps its paho
        callback (the one place we reach under aiomqtt on the publishing side).
        """
        paho = client._client
        forward: Any = paho.on_publish

        def on_publish(paho_client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            code = getattr(reason, "value", 0)
            if code == NO_MATCHING_SUBSCRIBERS or code >= 0x80:
                self._refused += 1
            forward(paho_client, userdata, mid, reason, properties)

        paho.on_publish = on_publish

    def _state_changes(self, client: aiomqtt.Client, samples: Sequence[Sample]) -> list[asyncio.Future[None]]:
        changes: list[asyncio.Future[None]] = []
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
            changes.append(asyncio.ensure_future(client.publish(topic, payload, qos=1, retain=True)))
        return changes

    async def close(self) -> None:
        """Publish `offline` and disconnect (the will is not sent on a clean disconnect)."""
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
        await self._drop()


async def _close_quietly(stack: AsyncExitStack) -> None:
    with contextlib.suppress(aiomqtt.MqttError, OSError, asyncio.TimeoutError):
        await stack.aclose()

"""The MQTT ingester: shared subscription in, batched idempotent writes out, acknowledged after commit.

Delivery guarantees, step by step:
- The session is persistent (MQTT 5 clean_start=False, a stable client id, a session expiry), so a
  restarted ingester receives the messages the broker queued for it while it was away.
- Several ingesters subscribe to `$share/<group>/fleetmon/v1/+/+/sample`; the broker hands each
  message to one of them.
- Messages are acknowledged by hand (PUBACK) only after the batch holding them committed. A crash or
  SIGKILL before commit leaves them unacknowledged, so the broker delivers them again; the (device, ts)
  key absorbs the ones that did get committed. PUBACKs go out in arrival order, as MQTT requires,
  because batches commit in arrival order.
- While the database is down the batch is retried; the bounded queue then stops intake and the broker
  holds the rest.
- A sample that names a site (the MQTT 5 user property `site` collectors set, or a `site` key in the
  JSON) other than the topic's is refused: counted (reason `site_mismatch`), logged, acknowledged in
  arrival order and not stored at all. The broker's ACL lets a site's user write under its own site
  only; this catches a collector configured for one site and publishing as another.
- A payload that is not a valid sample would fail on every redelivery: it goes through the batch writer
  as a dead letter (raw bytes, topic, validation error) into rejected_samples, and is acknowledged once
  that committed, in arrival order like the rest. A valid sample the database still refuses is kept
  there the same way by the writer (fleetmon.storage.rejected); neither stops the messages behind it.

aiomqtt 2.5 has no manual-ack option yet (empicano/aiomqtt#345); paho-mqtt, underneath, has
`manual_ack_set` and `ack`, used here through aiomqtt's client object, in `_ManualAcks` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from collectors.sample import Sample
from fleetmon.sinks.topics import BrokerUrl, shared_sample_subscription, site_of
from fleetmon.storage.batch import BatchWriter
from fleetmon.storage.rejected import Rejection
from fleetmon.storage.writer import SampleStore, SiteSample, WriteItem, WriteResult

log = logging.getLogger(__name__)

COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class IngestMetrics:
    """What `--metrics-listen` exports (fleetmon.exporter): plain numbers, updated as batches commit."""

    messages: int = 0
    batches: int = 0
    commit_bucket_counts: list[int] = field(default_factory=lambda: [0] * len(COMMIT_BUCKETS))
    commit_seconds_sum: float = 0.0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    newest_ts: float | None = None  # epoch seconds of the newest sample committed

    def reject(self, reason: str) -> None:
        """Count one refused message."""
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1

    def committed(self, batch: Sequence[WriteItem], result: WriteResult, seconds: float) -> None:
        """Count one committed batch (called from the writer's thread; the GIL keeps each += whole)."""
        self.batches += 1
        self.commit_seconds_sum += seconds
        for i, bound in enumerate(COMMIT_BUCKETS):
            if seconds <= bound:
                self.commit_bucket_counts[i] += 1
        dead_letters = sum(1 for item in batch if isinstance(item, Rejection))
        if result.rejected > dead_letters:
            self.rejected_by_reason["database"] = (
                self.rejected_by_reason.get("database", 0) + result.rejected - dead_letters
            )
        newest = max(
            (item.sample.ts.timestamp() for item in batch if isinstance(item, SiteSample)), default=None
        )
        if newest is not None and (self.newest_ts is None or newest > self.newest_ts):
            self.newest_ts = newest


class _MeteredStore(SampleStore):
    """The store the ingester's batch writer calls: the same writes, timed and counted."""

    def __init__(self, inner: SampleStore, metrics: IngestMetrics) -> None:  # no super(): a wrapper
        self.inner = inner
        self.metrics = metrics

    def write(self, batch: Sequence[WriteItem]) -> WriteResult:
        """Write through the wrapped store; count the batch once it committed."""
        started = time.perf_counter()
        result = self.inner.write(batch)
        self.metrics.committed(batch, result, time.perf_counter() - started)
        return result


def claimed_site(message: aiomqtt.Message) -> str | None:
    """The site a message says it belongs to: its `site` user property (MQTT 5), else None."""
    properties = message.properties
    for key, value in getattr(properties, "UserProperty", None) or ():
        if key == "site":
            return str(value)
    return None


class _ManualAcks:
    """PUBACK on our schedule, for one connection (a redelivery after reconnect gets a new mid)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho = client._client
        self._paho.manual_ack_set(True)
        self.open = True

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge one message, unless its connection is gone (then the broker redelivers it)."""
        if self.open and qos > 0:
            self._paho.ack(mid, qos)


@dataclass
class IngestStats:
    """Counters of one ingester process."""

    received: int = 0
    rejected: int = 0
    acked: int = 0
    connections: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def default_client_id(group: str) -> str:
    """A stable client id for one ingester per host and group; give each extra one its own id."""
    return f"fleetmon-ingest-{group}-{socket.gethostname()}"


class Ingester:
    """Consumes samples from the broker into the database until `stop` is set."""

    def __init__(
        self,
        broker: BrokerUrl,
        store: SampleStore,
        *,
        group: str = "fleetmon",
        client_id: str | None = None,
        session_expiry_s: int = 7 * 24 * 3600,
        max_batch: int = 2000,
        flush_interval: float = 0.25,
        receive_maximum: int = 10000,
        keepalive: int = 30,
    ) -> None:
        self.broker = broker
        self.store = store
        self.group = group
        self.client_id = client_id or default_client_id(group)
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.keepalive = keepalive
        self.metrics = IngestMetrics()
        self.writer = BatchWriter(
            _MeteredStore(store, self.metrics),
            max_batch=max_batch,
            flush_interval=flush_interval,
            max_queue=receive_maximum,
            retry=True,
        )
        self.stats = IngestStats()
        self.subscribed = asyncio.Event()

    def _client(self) -> aiomqtt.Client:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.session_expiry_s
        # Without this the broker stops at its default of 20 unacknowledged messages per client, and
        # we hold a whole batch unacknowledged until it commits.
        properties.ReceiveMaximum = self.receive_maximum
        client = aiomqtt.Client(
            **self.broker.client_options(),
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            keepalive=self.keepalive,
        )
        return client

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest until `stop` is set, reconnecting with backoff; commits and acks what it holds first."""
        self.writer.start()
        delay = 0.5
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                    delay = 0.5
                except aiomqtt.MqttError as exc:
                    self.subscribed.clear()
                    log.warning(
                        "broker %s connection lost (%s); reconnecting in %.1f s", self.broker, exc, delay
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    delay = min(delay * 2, 10.0)
        finally:
            await self.writer.close(timeout=30)

    async def _session(self, stop: asyncio.Event) -> None:
        client = self._client()
        acks = _ManualAcks(client)
        try:
            async with client:
                self.stats.connections += 1
                await client.subscribe(shared_sample_subscription(self.group), qos=1)
                self.subscribed.set()
                log.info("ingesting from %s as %s (group %s)", self.broker, self.client_id, self.group)
                consume = asyncio.create_task(self._consume(client, acks))
                stopped = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({consume, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if consume in done:
                    consume.result()  # re-raises the MqttError that ended the connection
                    return
                consume.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consume
                # Commit (and so acknowledge) what this connection delivered before leaving it.
                await self.writer.flush()
        finally:
            acks.open = False

    async def _consume(self, client: aiomqtt.Client, acks: _ManualAcks) -> None:
        last: asyncio.Future[None] | None = None  # the newest submitted message's commit
        async for message in client.messages:
            self.stats.received += 1
            self.metrics.messages += 1
            item = self._parse(message)
            if item is None:  # refused and not stored: acknowledged behind the messages before it
                self.stats.rejected += 1
                if last is None or last.done():
                    acks.ack(message.mid, message.qos)
                    self.stats.acked += 1
                else:
                    last.add_done_callback(self._acker(acks, message.mid, message.qos))
                continue
            if isinstance(item, Rejection):
                self.stats.rejected += 1
                self.metrics.reject("invalid")
            last = await self.writer.submit(item)
            last.add_done_callback(self._acker(acks, message.mid, message.qos))

    def _acker(self, acks: _ManualAcks, mid: int, qos: int) -> _AckOnCommit:
        return _AckOnCommit(self, acks, mid, qos)

    def _parse(self, message: aiomqtt.Message) -> SiteSample | Rejection | None:
        """The message's sample, its dead letter (logged by the writer once it is kept), or None for a
        sample of another site than its topic's (counted and logged here, never stored)."""
        topic = message.topic.value
        payload = message.payload
        raw = payload if isinstance(payload, bytes) else str(payload).encode()  # received: always bytes
        site: str | None = None
        try:
            site = site_of(topic)
            claimed = claimed_site(message)
            body = raw
            if b'"site"' in raw:  # a sample that names its site in the JSON: compare, then drop the key
                document = json.loads(raw)
                if isinstance(document, dict) and "site" in document:
                    named = str(document.pop("site"))
                    claimed = named if named != site else claimed
                    body = json.dumps(document).encode()
            if claimed is not None and claimed != site:
                self.metrics.reject("site_mismatch")
                log.warning(
                    "refused a sample claiming site %r on topic %s (site %r): not stored",
                    claimed[:64],
                    topic,
                    site,
                )
                return None
            sample = Sample.from_json(body)
        except (ValueError, ValidationError) as exc:
            return Rejection(source=topic, payload=raw, error=f"not a valid sample: {exc}", site=site)
        if sample.ts.tzinfo is None:
            error = f"not a valid sample: timestamp {sample.ts} has no timezone"
            return Rejection(source=topic, payload=raw, error=error, site=site)
        return SiteSample(site, sample)


class _AckOnCommit:
    """Done-callback of one message's write future: PUBACK when it committed, nothing when it failed."""

    __slots__ = ("acks", "ingester", "mid", "qos")

    def __init__(self, ingester: Ingester, acks: _ManualAcks, mid: int, qos: int) -> None:
        self.ingester, self.acks, self.mid, self.qos = ingester, acks, mid, qos

    def __call__(self, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # not committed: no ack, the broker redelivers after reconnect
        self.acks.ack(self.mid, self.qos)
        self.ingester.stats.acked += 1

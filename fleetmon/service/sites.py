"""Each site's collector health, as a reader-mode replica hears it from the broker.

Collectors retain their site's status on `fleetmon/v1/<site>/status` after every cycle and keep a last
will `offline` on `fleetmon/v1/<site>/collector/<id>/status` (fleetmon.sinks). A reader subscribes to
both with its read-only user; `SiteWatch` keeps the newest status of each site and derives, at the
moment it is asked:

- `last_seen`: when the collector last said the site is alive (the status' `sent_at`, never later
  than when it arrived: a retained message from yesterday is yesterday's news);
- `up`: the collector is online (no offline status, no will fired for the collector the status names)
  and was last seen less than `stale_after_s` ago.

Staleness moves with the clock, not with messages, so these figures are computed per request and per
scrape (`families`), outside the per-snapshot /metrics cache. In collector mode the process is its
own site's collector and reports from its loop counters instead (`collector_sites`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import aiomqtt
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fleetmon.service.snapshot import CollectorStats
from fleetmon.sinks.status import SiteStatus
from fleetmon.sinks.topics import (
    COLLECTOR_STATUS_SUBSCRIPTION,
    SITE_STATUS_SUBSCRIPTION,
    BrokerUrl,
    collector_of_status,
    site_of_status,
)

log = logging.getLogger(__name__)

OFFLINE = b"offline"


@dataclass(frozen=True)
class SiteHealth:
    """One site's collector as this replica sees it now."""

    site: str
    up: bool
    online: bool
    last_seen: float | None  # epoch seconds
    age_s: float | None
    status: SiteStatus | None  # the collector's own words (None in collector mode)

    @property
    def state(self) -> str:
        """`ok` (fresh), `stale` (its collector is online but its cycles are old) or `offline`."""
        return "ok" if self.up else ("stale" if self.online else "offline")


class SiteWatch(Collector):
    """The newest status of every site, and the `fleetmon_site_collector_*` families over it."""

    def __init__(self, stale_after_s: float = 300.0) -> None:
        self.stale_after_s = stale_after_s
        self._status: dict[str, SiteStatus] = {}
        self._seen: dict[str, float] = {}
        self._will_fired: dict[str, str] = {}  # site -> collector id whose will said offline
        self.subscribed = asyncio.Event()
        self.messages = 0

    # ---- input ------------------------------------------------------------------------------------

    def take(self, topic: str, payload: bytes, received: float | None = None) -> None:
        """Apply one message of either status topic; a bad one is logged and changes nothing."""
        now = time.time() if received is None else received
        self.messages += 1
        try:
            if topic.count("/") == 5:  # fleetmon/v1/<site>/collector/<id>/status
                site, collector_id = collector_of_status(topic)
                if payload == OFFLINE:
                    self._will_fired[site] = collector_id
                elif self._will_fired.get(site) == collector_id:
                    del self._will_fired[site]
                return
            site = site_of_status(topic)
            status = SiteStatus.parse(payload)
        except ValueError as exc:
            log.warning("ignored a status message on %s: %s", topic, exc)
            return
        if status.site != site:
            log.warning("ignored a status of site %r published on %s", status.site[:64], topic)
            return
        known = self._status.get(site)
        if known is not None and known.sent_at > status.sent_at:
            return  # an older status arriving late
        self._status[site] = status
        if status.online:
            self._seen[site] = min(status.sent_at.timestamp(), now)
            if self._will_fired.get(site) == status.collector_id:
                del self._will_fired[site]

    # ---- output -----------------------------------------------------------------------------------

    def sites(self, now: float | None = None) -> list[SiteHealth]:
        """Every site heard of, by name."""
        now = time.time() if now is None else now
        health = []
        for site in sorted(self._status):
            status = self._status[site]
            online = status.online and self._will_fired.get(site) != status.collector_id
            seen = self._seen.get(site)
            age = max(0.0, now - seen) if seen is not None else None
            up = online and age is not None and age <= self.stale_after_s
            health.append(SiteHealth(site, up, online, seen, age, status))
        return health

    def describe(self) -> list[Metric]:
        """Nothing up front: sites come and go."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The two per-site families, computed now."""
        yield from site_families(self.sites())

    # ---- the subscription -------------------------------------------------------------------------

    async def run(self, broker: BrokerUrl, client_id: str, stop: asyncio.Event) -> None:
        """Subscribe to every site's status until `stop`, reconnecting with backoff."""
        delay = 0.5
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    **broker.client_options(),
                    identifier=client_id,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    timeout=10,
                ) as client:
                    await client.subscribe(SITE_STATUS_SUBSCRIPTION, qos=1)
                    await client.subscribe(COLLECTOR_STATUS_SUBSCRIPTION, qos=1)
                    self.subscribed.set()
                    delay = 0.5
                    log.info("watching site status on %s", broker)
                    reading = asyncio.create_task(self._read(client))
                    stopped = asyncio.create_task(stop.wait())
                    done, _ = await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    stopped.cancel()
                    reading.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reading
                    if reading in done and not reading.cancelled():
                        reading.result()
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                log.warning("site status: broker %s unavailable (%s); again in %.1f s", broker, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 30.0)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            self.take(message.topic.value, payload if isinstance(payload, bytes) else str(payload).encode())


def collector_sites(
    stats: Iterable[CollectorStats], stale_after_s: float, now: float | None = None
) -> list[SiteHealth]:
    """The sites this process polls itself (collector mode), from its loop counters."""
    now = time.time() if now is None else now
    health = []
    for c in stats:
        age = max(0.0, now - c.last_cycle_end) if c.last_cycle_end is not None else None
        up = age is not None and age <= stale_after_s
        health.append(SiteHealth(c.site, up, True, c.last_cycle_end, age, None))
    return health


def site_families(sites: Iterable[SiteHealth]) -> Iterator[Metric]:
    """fleetmon_site_collector_last_seen_timestamp_seconds and fleetmon_site_collector_up, by site."""
    seen = GaugeMetricFamily(
        "fleetmon_site_collector_last_seen_timestamp_seconds",
        "When the site's collector last said it is alive (its retained status)",
        labels=["site"],
    )
    up = GaugeMetricFamily(
        "fleetmon_site_collector_up",
        "1 when the site's collector is online and was heard from recently, else 0",
        labels=["site"],
    )
    for health in sites:
        if health.last_seen is not None:
            seen.add_metric([health.site], health.last_seen)
        up.add_metric([health.site], 1.0 if health.up else 0.0)
    yield seen
    yield up
